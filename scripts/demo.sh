#!/usr/bin/env bash
# The main job on a fresh machine: install, then run the end-to-end demo on the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
fulfillment demo "$@"
