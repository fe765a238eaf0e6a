"""The `fulfillment` command's entry point: Ctrl-C while the CLI's modules load is quiet too."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        # Loading them takes most of a second: an interrupt then must not print a traceback.
        from cli.main import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    run()
