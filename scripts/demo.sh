#!/usr/bin/env bash
# `cutover demo` from a fresh clone: install, build, run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-build.sh
exec node dist/src/cli/main.js demo "$@"
