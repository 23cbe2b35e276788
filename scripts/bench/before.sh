#!/usr/bin/env bash
# Measures the code as it was before the speed work (issue 10) with today's
# benchmark, and keeps the results as bench/before.json, which make bench
# shows beside its own. CPU per command depends on the load the system
# gets (what batches), so the two are best measured on the same machine,
# equally quiet: run this there before the report run.
#
#   scripts/bench/before.sh               # BEFORE=cc4ca33, the harness's defaults
#   BENCH_DURATION=5s BENCH_CLIENTS="1 16 64" scripts/bench/before.sh
#
# Every BENCH_* variable (and REDIS_URL) reaches the benchmark as for make
# bench; BENCH_OUT is a scratch directory, and BENCH_BIN the old code's.
set -euo pipefail

before=${BEFORE:-cc4ca33}
root=$(git rev-parse --show-toplevel)
cd "$root"
tree=$(mktemp -d "${TMPDIR:-/tmp}/cart-before-XXXXXX")
out=$(mktemp -d "${TMPDIR:-/tmp}/cart-before-out-XXXXXX")
cleanup() { git worktree remove --force "$tree" || true; }
trap cleanup EXIT

git worktree add --detach "$tree" "$before"
(cd "$tree" && go build -trimpath -o bin/ ./services/command ./services/projector ./services/query)
# Today's load generator, raw read baseline, nats-server and benchmark.
go build -trimpath -o "$tree/bin/" ./scripts/loadgen ./scripts/rawread ./scripts/bench github.com/nats-io/nats-server/v2

export AUTH_HS256_SECRET=${AUTH_HS256_SECRET:-dev-only-secret-do-not-use-in-production}
export AUTH_ISSUER=${AUTH_ISSUER:-cart-cqrs-dev}
export AUTH_AUDIENCE=${AUTH_AUDIENCE:-cart-cqrs}
BENCH_BIN="$tree/bin" BENCH_OUT="$out" BENCH_BEFORE=/nonexistent BENCH_CODE="commit $before" "$tree/bin/bench"
cp "$out/results.json" bench/before.json
echo "bench/before.json: commit $before measured (report in $out)"
