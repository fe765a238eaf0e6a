"""Worker processes started and stopped from Python: the supervisor, the demo, bench, chaos, tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from config import project_root

WORKER_MODULE = "consumers.worker"
Process = subprocess.Popen[bytes]


def spawn_worker(
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    module: str = WORKER_MODULE,
    args: Sequence[str] = (),
) -> Process:
    """Start one worker (or `module`, with `args`) with `env` (default: ours); output appended
    to `log`.

    Without `log` the child shares this process's stdout and stderr.
    """
    output = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=dict(env) if env is not None else dict(os.environ),
            cwd=project_root(),
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
    finally:
        if output is not None:
            output.close()  # the child holds its own copy of the descriptor


def stop_processes(processes: list[Process], timeout: float = 40) -> None:
    """SIGTERM every worker, wait for the batch in hand to finish, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
