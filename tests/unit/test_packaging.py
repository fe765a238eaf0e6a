"""The container image ships every package the project installs."""

from __future__ import annotations

import re
import tomllib

from config import project_root


def test_dockerfile_copies_every_package_of_the_project() -> None:
    root = project_root()
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    copied = set(
        re.findall(r"^COPY (\w+) \1$", (root / "Dockerfile").read_text(), flags=re.MULTILINE)
    )
    assert {name.rstrip("*") for name in packages} == copied


def test_compose_runs_kafka_mongodb_and_the_worker() -> None:
    compose = (project_root() / "docker-compose.yml").read_text()
    for service in ("  kafka:", "  mongodb:", "  worker:"):
        assert f"\n{service}\n" in compose
