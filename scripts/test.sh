#!/usr/bin/env bash
# The whole test suite: lint, type-check, unit tests, then integration tests against real Elasticsearch and
# OpenSearch servers that scripts/with-clusters.ts downloads (Maven Central, cached) and starts.
# A cluster that cannot start fails the run: integration tests never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-build.sh
npx biome check src test scripts bench
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx scripts/with-clusters.ts -- \
  node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout "${files[@]}"
