"""Starting, finding and stopping the stack's background processes by recorded pid."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Check = Callable[[], bool]
_CAUSE = re.compile(r"\b(ERROR|FATAL)\b|Exception: |Error: ")


class StackError(Exception):
    """The stack cannot start or stop; the message is one line for the operator."""


@dataclass(frozen=True)
class Service:
    """One background process of the stack, known by the files it leaves in the stack folder."""

    name: str
    folder: Path
    # A string that appears in the process's command line, so a recycled pid is never ours.
    marker: str

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        return pid if self.marker in cmdline else None

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start the process detached from our session, logging to its log file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def started_process_alive(self) -> bool:
        """Whether the recorded pid still runs (its command line may change while it starts)."""
        try:
            return _alive(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our process (TERM, then KILL); True when one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 5) -> str:
        """Why the process stopped: its first error line when it logged one, else its last lines."""
        try:
            logged = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        # A JVM's last lines are its shutdown; the cause is the first error before them.
        cause = next((line.strip() for line in logged if _CAUSE.search(line)), None)
        shown = cause if cause is not None else " | ".join(line.strip() for line in logged[-lines:])
        return f"{shown} (log: {self.log_file})"


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    # A zombie still answers kill(0) but is gone for our purposes.
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_run(count: int, start: int = 20000) -> int:
    """The first port P >= start with P..P+count-1 free, below the kernel's ephemeral range.

    Ports in that range are handed to outgoing connections at any moment: one taken between
    this check and a slow server's bind (a JVM's seconds) would kill that server.
    """
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for base in range(start, ephemeral - count, count):
        if all(port_is_free("127.0.0.1", base + offset) for offset in range(count)):
            return base
    raise StackError(f"no {count} free ports in a row below {ephemeral}")


def require_free_port(host: str, port: int, what: str, instead: str) -> None:
    """Refuse to start on a taken port, saying how to go on (`instead`)."""
    if not port_is_free(host, port):
        raise StackError(
            f"port {host}:{port} for {what} is taken by another process"
            f" (another checkout's stack?); {instead}"
        )


def wait_until(check: Check, service: Service, what: str, timeout: float) -> None:
    """Poll `check` until it passes; fail fast with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not service.started_process_alive():
            raise StackError(f"{what} exited during start-up: {service.log_tail()}")
        time.sleep(0.5)
    raise StackError(
        f"{what} did not become ready within {timeout:.0f}s; see {service.log_file}, then run"
        " `fulfillment stack down` before starting it again"
    )


def run_step(
    argv: list[str], cwd: Path, log: Path, what: str, env: dict[str, str] | None = None
) -> None:
    """Run a build step to completion, its output in `log`; one-line error on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        result = subprocess.run(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    if result.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
        raise StackError(f"{what} failed (exit {result.returncode}); see {log}: {tail}")
