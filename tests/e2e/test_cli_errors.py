"""Network and input failures of the CLI: one line on stderr, a conventional exit code, fast."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.names import EventType
from tests.factories import envelope, placed_data

pytestmark = pytest.mark.e2e
FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")
# The commands give up on a silent broker after 4 s; generous for two loaded shared cores, and
# still well below aiokafka's own 40 s, which is what these tell apart.
QUICKLY = 25.0
# The demo first looks at the local stack, and probes each service for up to 3 s.
DEMO_QUICKLY = 30.0


def closed_port() -> int:
    """A port where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def hung_port() -> Iterator[int]:
    """A listener that accepts connections and never answers: a hung broker or store."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


@pytest.fixture(scope="module")
def event_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "placed.json"
    path.write_text(json.dumps(envelope(EventType.ORDER_PLACED, "ord-err", placed_data())))
    return path


def fulfillment(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [FULFILLMENT, *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


KAFKA_COMMANDS = [
    pytest.param(["publish", "order.placed", "--file", "{event}"], id="publish"),
    pytest.param(["dlq", "list", "orders.placed"], id="dlq-list"),
    pytest.param(["dlq", "replay", "orders.placed"], id="dlq-replay"),
    pytest.param(["topics", "create"], id="topics-create"),
    # Before it starts workers or sends anything.
    pytest.param(["demo"], id="demo"),
]


@pytest.mark.parametrize("args", KAFKA_COMMANDS)
@pytest.mark.parametrize("broker", ["refusing", "hung"])
def test_an_unreachable_or_hung_broker_is_one_stderr_line_and_exit_69_within_seconds(
    args: list[str], broker: str, hung_port: int, event_file: Path
) -> None:
    port = closed_port() if broker == "refusing" else hung_port
    argv = [arg.replace("{event}", str(event_file)) for arg in args]
    result, seconds = fulfillment(*argv, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert result.returncode == 69, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot reach Kafka at 127.0.0.1:{port}: "), lines[0]
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr
    assert seconds < (DEMO_QUICKLY if args == ["demo"] else QUICKLY)


@pytest.mark.parametrize("args", [["order", "show", "x"], ["demo"]], ids=["order-show", "demo"])
@pytest.mark.parametrize("store", ["refusing", "hung"])
def test_an_unreachable_or_hung_store_is_one_stderr_line_and_exit_69_within_seconds(
    args: list[str], store: str, hung_port: int
) -> None:
    port = closed_port() if store == "refusing" else hung_port
    result, seconds = fulfillment(*args, MONGODB_URI=f"mongodb://127.0.0.1:{port}")
    assert result.returncode == 69, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the store: "), lines
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr
    assert seconds < (DEMO_QUICKLY if args == ["demo"] else QUICKLY)


@pytest.mark.parametrize(
    ("content", "bad"),
    [(b'{"id": "caf\xe9"}', b"\xe9"), (b"\xff", b"\xff"), (b'\xef\xbb\xbf{"a": "\xc3"}', b"\xc3")],
    ids=["latin-1", "first-byte", "after-a-byte-order-mark"],
)
def test_a_non_utf8_file_is_named_with_the_offset_of_its_first_bad_byte(
    tmp_path: Path, content: bytes, bad: bytes
) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(content)
    offset = content.index(bad)  # counted from 0, the byte-order mark included
    result, _ = fulfillment("publish", "order.placed", "--file", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {path} is not UTF-8 text (byte {offset})"]


def test_non_utf8_stdin_is_named_stdin() -> None:
    result = subprocess.run(
        [FULFILLMENT, "publish", "order.placed", "--file", "-", "--order", "o"],
        input=b"{\x80}",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["error: stdin is not UTF-8 text (byte 1)"]


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path, event_file: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + event_file.read_bytes())
    result, _ = fulfillment("publish", "order.placed", "--file", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "valid order.placed" in result.stdout


def test_errors_and_messages_stay_whole_lines_on_a_narrow_terminal(event_file: Path) -> None:
    result, _ = fulfillment("topics", "create", KAFKA_BOOTSTRAP_SERVERS="h:notaport", COLUMNS="40")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: KAFKA_BOOTSTRAP_SERVERS must be host:port entries separated by commas,"
        " got 'h:notaport'"
    ]
    result, _ = fulfillment("publish", "order.placed", "--file", str(event_file), "--dry-run")
    wide = result.stdout
    result, _ = fulfillment(
        "publish", "order.placed", "--file", str(event_file), "--dry-run", COLUMNS="40"
    )
    assert result.returncode == 0 and len(wide) > 40
    assert result.stdout == wide and len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "is nested too deeply to read"),
        (b'{"a": ' + b"7" * 5000 + b"}", "cannot be read as JSON: Exceeds the limit"),
    ],
    ids=["nested_100000_deep", "a_5000_digit_number"],
)
def test_json_python_cannot_read_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    result, _ = fulfillment("publish", "order.placed", "--file", str(path), "--order", "o")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path} {said}")


def test_an_argument_that_is_not_utf8_is_a_usage_error() -> None:
    result = subprocess.run(
        [FULFILLMENT.encode(), b"order", b"show", b"\xff"], capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["error: argument 3 is not valid UTF-8"]


def test_an_empty_file_argument_is_named_as_such() -> None:
    result, _ = fulfillment("publish", "order.placed", "--file", "", "--order", "o")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: --file is empty: give a file's path, or - for stdin"
    ]


def test_a_subject_that_is_a_lone_surrogate_is_listed_as_a_validation_problem(
    tmp_path: Path,
) -> None:
    # JSON allows "\udc80"; no UTF-8 can carry it, as a key or in a value.
    event = envelope(EventType.ORDER_PLACED, "ord-1", placed_data())
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(event).replace('"ord-1"', '"\\udc80"', 1))
    result, _ = fulfillment("publish", "order.placed", "--file", str(path), "--dry-run")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "error: order.placed is not valid:"
    assert "Traceback" not in result.stderr and "UnicodeEncodeError" not in result.stderr


@pytest.mark.parametrize(
    ("option", "said"),
    [
        (["--timeout", "0"], "Invalid value for '--timeout'"),
        (["--timeout", "inf"], "error: --timeout must be a number of seconds, not inf"),
        (["--out", "{file}"], "cannot be a folder for the results"),
    ],
    ids=["zero timeout", "endless timeout", "out is a file"],
)
def test_bench_options_that_cannot_work_are_refused_before_anything_runs(
    tmp_path: Path, option: list[str], said: str
) -> None:
    taken = tmp_path / "results"
    taken.write_text("a file, not a folder")
    args = [part.replace("{file}", str(taken)) for part in option]
    result, seconds = fulfillment("bench", "--orders", "10", *args)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "stack" not in result.stdout  # refused before the stack was started
    assert seconds < QUICKLY


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["orders", "search", "--limit", "0"], "Invalid value for '--limit'"),
        (["publish"], "Missing argument 'TYPE'"),
        (["bogus"], "No such command 'bogus'"),
        (["publish", "order.placed", "--bogus"], "No such option: --bogus"),
        (["dlq", "list", "bogus"], "bogus is not an input topic"),
    ],
    ids=["out of range", "missing argument", "unknown command", "unknown option", "no such topic"],
)
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], said: str) -> None:
    result, _ = fulfillment(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], lines


def test_a_bare_command_shows_its_help_and_exits_2() -> None:
    result, _ = fulfillment("dlq")
    assert result.returncode == 2
    shown = result.stdout + result.stderr
    assert "list" in shown and "replay" in shown
    assert not result.stderr.strip() or "Usage" in result.stderr  # no stray error line


@pytest.mark.parametrize("after", [0.2, 0.4, 0.8])
def test_ctrl_c_while_the_cli_starts_prints_no_traceback(after: float, hung_port: int) -> None:
    # A broker that never answers: the command is still running whenever the signal lands.
    started = subprocess.Popen(
        [FULFILLMENT, "dlq", "list", "orders.placed"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{hung_port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    started.send_signal(signal.SIGINT)
    _, stderr = started.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert started.returncode in (130, -signal.SIGINT), stderr


def test_a_file_without_end_is_refused_after_16_mib_in_one_line() -> None:
    result, seconds = fulfillment("publish", "order.placed", "--dry-run", "--file", "/dev/zero")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: /dev/zero is larger than 16 MiB; an event may be at most 1 MiB"
    ]
    assert seconds < QUICKLY


@pytest.mark.parametrize(
    ("command", "report"),
    [(["chaos"], "latest.json"), (["soak"], "soak.json")],
    ids=["chaos", "soak"],
)
def test_a_results_folder_that_cannot_take_the_report_is_refused_before_the_run(
    tmp_path: Path, command: list[str], report: str
) -> None:
    (tmp_path / report).mkdir()  # where the report would be written at the run's end
    result, seconds = fulfillment(*command, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: --out {tmp_path} holds a folder named {report}, where the report goes"
    ]
    assert "stack" not in result.stdout  # refused before the stack was started
    assert seconds < QUICKLY


def test_the_demo_refuses_a_secret_key_its_workers_would_refuse_before_starting_anything() -> None:
    result, seconds = fulfillment("demo", FULFILLMENT_SECRET_KEY="not-a-fernet-key")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: FULFILLMENT_SECRET_KEY must be"), lines
    assert "stack" not in result.stdout and "not-a-fernet-key" not in result.stderr
    assert seconds < QUICKLY
