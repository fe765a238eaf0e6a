"""Dependencies point inward: the import contracts in pyproject.toml hold (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config import project_root


def test_the_core_imports_no_io_and_the_sdk_imports_no_worker() -> None:
    # The interpreter's own environment, whatever PATH says.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is a dev dependency: pip install -e '.[dev]'"
    run = subprocess.run(
        [lint_imports, "--no-cache"], cwd=project_root(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-4000:]
