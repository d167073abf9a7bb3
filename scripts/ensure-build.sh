#!/usr/bin/env bash
# Install dependencies when missing or stale, then compile. Shared by the demo and test commands so that a
# fresh clone needs nothing typed first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "cutover: installing dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi
npx tsc -p tsconfig.json
