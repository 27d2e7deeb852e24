#!/usr/bin/env bash
# store-profile.sh: where `mavctl import` spends its time (perf record -g).
#
#   scripts/bench/store-profile.sh [TOP]   (TOP symbols to list, default 25)
#
# Imports a generated dataset (BENCH_SIZE, default 200M; warm cache) into a
# fresh repository under perf, then prints the share of samples per thread
# name, per shared object and per symbol (self time), with the callers of
# the hottest symbols. Environment as for store.sh: BENCH_SIZE, BENCH_DIR,
# BENCH_KEEP, MAVCTL, BENCH_BUILD; BENCH_PERF_CG=dwarf for full call
# chains through code built without frame pointers (default fp: cheaper,
# but user-space chains stop early). Needs perf (linux-perf).
set -euo pipefail

HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
# shellcheck source=scripts/bench/lib.sh
. "$HERE/lib.sh"

TOP=${1:-25}
SIZE=${BENCH_SIZE:-200M}
bench_have perf || bench_die "perf not found: apt-get install linux-perf"

bench_workdir profile
BENCH_LOG=$BENCH_WORK/bench.log
if [[ -z ${MAVCTL:-} ]]; then
	build=${BENCH_BUILD:-$ROOT/build-bench}
	bench_log "building mavctl (Release) in $build"
	cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" -j "$(nproc)" --target mavctl >/dev/null
	MAVCTL=$build/bin/mavctl
fi

data=$BENCH_WORK/data
repo=$BENCH_WORK/repo
bench_log "generating $SIZE dataset (seed 1)"
"$ROOT/scripts/gen-dataset" generate "$data" --seed 1 --size "$SIZE" >>"$BENCH_LOG"
"$MAVCTL" -R "$repo" init >>"$BENCH_LOG"
bench_warm "$data"
bench_wait_idle "${BENCH_IDLE_WAIT:-60}" || bench_log "machine busy"

perf record -F 999 --call-graph "${BENCH_PERF_CG:-fp}" -o "$BENCH_WORK/perf.data" -- \
	"$MAVCTL" -R "$repo" import "$data" 2>>"$BENCH_LOG"

report() {
	perf report -i "$BENCH_WORK/perf.data" --no-children --stdio "$@" \
		2>/dev/null | grep -v -e '^#' -e '^$' | sed 's/[ -]*$//' | cut -c1-120
}
# head closes the pipe early: that is not a failure.
set +o pipefail
echo "# perf profile of mavctl import, $SIZE dataset (warm), $(date -u +%F)"
echo "## by thread"
report --sort comm -g none | head -n 10
echo "## by object"
report --sort dso -g none | head -n 12
echo "## by thread and object"
report --sort comm,dso -g none | head -n 20
echo "## by symbol (self)"
report --sort dso,symbol -g none | head -n "$TOP"
echo "## callers of the top symbols"
report --sort symbol -G --percent-limit 5 | head -n 80
