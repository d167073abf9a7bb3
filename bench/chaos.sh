#!/usr/bin/env bash
# The chaos suite (test/engine/chaos.test.ts) at a larger size than the one every push runs: more documents,
# more writers, more kills, and the default 1 s freeze budget instead of the suite's 5 s. Never part of
# `npm test`. Any CUTOVER_CHAOS_* variable overrides a default here (the full list is at the top of the test):
#
#   bash bench/chaos.sh
#   CUTOVER_CHAOS_DOCS=200000 CUTOVER_CHAOS_WRITERS=32 bash bench/chaos.sh
#
# Passes only with 0 lost, 0 stale, 0 resurrected and 0 extra documents against the writers' log; the summary
# line per server ("# chaos es8: ...") carries the figures recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-build.sh
export CUTOVER_CHAOS_DOCS="${CUTOVER_CHAOS_DOCS:-40000}"
export CUTOVER_CHAOS_WRITERS="${CUTOVER_CHAOS_WRITERS:-16}"
export CUTOVER_CHAOS_RATE="${CUTOVER_CHAOS_RATE:-10}"
export CUTOVER_CHAOS_KILLS="${CUTOVER_CHAOS_KILLS:-5}"
export CUTOVER_CHAOS_COPY_RATE="${CUTOVER_CHAOS_COPY_RATE:-4000}"
export CUTOVER_CHAOS_FREEZE_BUDGET_MS="${CUTOVER_CHAOS_FREEZE_BUDGET_MS:-1000}"
kinds="${CUTOVER_CHAOS_KINDS:-es8,os3}"
export CUTOVER_CHAOS_KINDS="$kinds" CUTOVER_TEST_MATRIX="$kinds"
exec node --import tsx scripts/with-clusters.ts --kinds "$kinds" -- \
  node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout test/engine/chaos.test.ts
