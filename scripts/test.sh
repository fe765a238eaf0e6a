#!/usr/bin/env bash
# Everything CI checks: install, start the local stack, lint, type-check, run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
fulfillment stack up
ruff check .
ruff format --check .
mypy .
python -m pytest "$@"
