#!/usr/bin/env bash
# Everything CI checks: install, start the local stack, lint, type-check, run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# The layout the tests expect, whatever `stack up` was last asked for (--secure, a cluster).
fulfillment stack up --brokers 1 --plaintext
ruff check .
ruff format --check .
mypy .
python -m pytest "$@"
