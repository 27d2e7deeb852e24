#!/usr/bin/env bash
# store.sh: benchmark the store through mavctl against restic, borg and cp.
#
#   scripts/bench/store.sh [SECTION...]     (default: all three, in one run)
#
# Sections:
#   import    throughput of importing a generated dataset (v1), then of its
#             in-place mutation (v2), cold and warm page cache; stored bytes
#             after v1+v2. mav: init, import, snapshot; restic: init, backup;
#             borg: init -e none, create; plain copy: cp -a (v1), rsync (v2).
#   snapshot  `mavctl snapshot` latency with 10 changed files in a 100k-file
#             tree vs a 10k-file tree (median of repeated runs).
#   memory    peak RSS of `mavctl import` on a 200M and a BENCH_SIZE dataset.
#
# Environment:
#   BENCH_SIZE        dataset size (default 1.5G; 200M for a quick run)
#   BENCH_SMALL_SIZE  the small dataset of the memory section (default 200M)
#   BENCH_MEM_EXTRA   more dataset sizes for the memory section, e.g. "4G"
#   BENCH_SNAP_FILES  files in the big snapshot tree (default 100000)
#   BENCH_SNAP_BASE   files in the reference tree (default 10000)
#   BENCH_SNAP_RUNS   timed snapshots per tree (default 11)
#   BENCH_REPEAT      import passes per cache mode; the best is kept
#                     (default 3: other work on a shared machine only ever
#                     makes a run slower)
#   BENCH_TOOLS       compared tools (default "mav restic borg cp")
#   BENCH_DIR         where the scratch directory goes (default /var/tmp)
#   BENCH_KEEP=1      keep the scratch directory
#   BENCH_IDLE_WAIT   seconds to wait for an idle CPU before a timed job
#                     (default 30; 5 before each timed snapshot)
#   BENCH_RESULTS     also append KEY<TAB>VALUE lines to this file
#   MAVCTL            a mavctl binary to use instead of building one
#   BENCH_BUILD       build directory (default build-bench in the checkout)
#
# Cold runs drop the page cache before each timed job (needs root; skipped
# with a note otherwise). Warm runs read the source tree first. Every tool
# works on the same source path, so incremental runs (v2) find their parent.
# Needs restic, borgbackup and rsync: scripts/install-deps --bench.
set -euo pipefail

HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
# shellcheck source=scripts/bench/lib.sh
. "$HERE/lib.sh"

BENCH_SIZE=${BENCH_SIZE:-1.5G}
BENCH_SMALL_SIZE=${BENCH_SMALL_SIZE:-200M}
SNAP_FILES=${BENCH_SNAP_FILES:-100000}
SNAP_BASE=${BENCH_SNAP_BASE:-10000}
SNAP_RUNS=${BENCH_SNAP_RUNS:-11}
REPEAT=${BENCH_REPEAT:-3}
TOOLS=${BENCH_TOOLS:-mav restic borg cp}
row() { printf '%-7s %-3s %-9s %8s %8s %8s %8s %8s %8s %8s\n' "$@"; }
GEN=$ROOT/scripts/gen-dataset

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

sections=()
for a in "$@"; do
	case "$a" in
	import | snapshot | memory) sections+=("$a") ;;
	all) sections+=(import snapshot memory) ;;
	*) usage ;;
	esac
done
((${#sections[@]})) || sections=(import snapshot memory)
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }
uses() { [[ " $TOOLS " == *" $1 "* ]]; }

# size_bytes 1.5G -> bytes (the same suffixes gen-dataset accepts).
size_bytes() {
	awk -v s="$1" 'BEGIN { m = 1; u = toupper(substr(s, length(s)));
		if (u == "K") m = 2^10; else if (u == "M") m = 2^20;
		else if (u == "G") m = 2^30; else if (u == "T") m = 2^40;
		if (m > 1) s = substr(s, 1, length(s) - 1);
		printf "%.0f\n", s * m }'
}

# ---------------------------------------------------------------- setup --

setup_tools() {
	local t missing=()
	bench_have python3 || missing+=(python3)
	uses restic && ! bench_have restic && missing+=(restic)
	uses borg && ! bench_have borg && missing+=(borg)
	uses cp && ! bench_have rsync && missing+=(rsync)
	((${#missing[@]} == 0)) ||
		bench_die "missing ${missing[*]}: run scripts/install-deps --bench" \
			"(or leave them out with BENCH_TOOLS)"
	for t in $TOOLS; do
		case "$t" in mav | restic | borg | cp) ;; *) bench_die "unknown tool $t" ;; esac
	done
	MAV_FROM="given by MAVCTL"
	if [[ -z ${MAVCTL:-} ]]; then
		local build=${BENCH_BUILD:-$ROOT/build-bench}
		MAV_FROM="built from git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
		bench_log "building mavctl (Release) in $build"
		cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
		cmake --build "$build" -j "$(nproc)" --target mavctl >/dev/null
		MAVCTL=$build/bin/mavctl
	fi
	[[ -x $MAVCTL ]] || bench_die "no mavctl at $MAVCTL"
	# A throwaway password for throwaway repositories: restic 0.14 (Debian
	# 12) has no --insecure-no-password, so it always encrypts.
	export RESTIC_PASSWORD=mav-bench
	export BORG_BASE_DIR=$BENCH_WORK/borg-home
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
	export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	export MAV_AUTHOR=bench
}

mav() { "$MAVCTL" "$@"; }

# dataset SIZE: path of a generated dataset of SIZE (seed 1), made once.
dataset() {
	local d=$BENCH_WORK/data-$1
	if [[ ! -d $d ]]; then
		bench_log "generating $1 dataset (seed 1)"
		"$GEN" generate "$d" --seed 1 --size "$1" >>"$BENCH_LOG"
	fi
	echo "$d"
}

# ---------------------------------------------------------------- import --

# prime MODE DIR: make the page cache cold or warm before a timed job.
prime() {
	if [[ $1 == cold ]]; then
		bench_drop_caches || bench_die "cannot drop caches"
	else
		sync
		bench_warm "$2"
	fi
	idle_or_note
}

# idle_or_note [SECS]: wait up to SECS (default $BENCH_IDLE_WAIT, 30) for
# the machine to be idle (other users' builds and tests skew a shared 2-core
# machine); log when it is not.
idle_or_note() {
	bench_wait_idle "${1:-${BENCH_IDLE_WAIT:-30}}" || bench_log "machine still busy, measuring anyway"
}

# init_repo TOOL: a fresh, empty repository for TOOL (not timed).
init_repo() {
	local r=$BENCH_WORK/repo-$1
	rm -rf -- "$r" "$BENCH_WORK/restic-cache" "$BORG_BASE_DIR"
	case "$1" in
	mav) mav -R "$r" init >>"$BENCH_LOG" ;;
	restic) restic -r "$r" init >>"$BENCH_LOG" 2>&1 ;;
	borg) borg init -e none "$r" >>"$BENCH_LOG" 2>&1 ;;
	cp) ;;
	esac
}

# job TOOL VERSION SRC: store SRC as VERSION (v1 or v2); sets JOB_S (the
# command time), JOB_SYNC_S (command + sync: until the data is on disk) and
# JOB_RSS_KIB (peak RSS of the process that reads the data), JOB_CPU (CPU
# seconds of the job's commands, all threads) and JOB_OTHERS (% of the CPU
# other processes used meanwhile, during the one that reads the data).
job() {
	local tool=$1 ver=$2 src=$3 r=$BENCH_WORK/repo-$1 t=0
	case "$tool" in
	mav)
		bench_measure "$MAVCTL" -R "$r" import "$src"
		t=$BENCH_WALL
		JOB_RSS_KIB=$BENCH_RSS_KIB
		JOB_CPU=$BENCH_CPU
		JOB_OTHERS=$BENCH_OTHERS
		bench_measure "$MAVCTL" -R "$r" snapshot -m "$ver"
		JOB_CPU=$(awk -v a="$JOB_CPU" -v b="$BENCH_CPU" \
			'BEGIN { printf "%.3f", a + b }')
		;;
	restic)
		bench_measure restic -r "$r" --cache-dir "$BENCH_WORK/restic-cache" \
			backup -q "$src"
		JOB_RSS_KIB=$BENCH_RSS_KIB
		JOB_CPU=$BENCH_CPU
		JOB_OTHERS=$BENCH_OTHERS
		;;
	borg)
		bench_measure borg create "$r::$ver" "$src"
		JOB_RSS_KIB=$BENCH_RSS_KIB
		JOB_CPU=$BENCH_CPU
		JOB_OTHERS=$BENCH_OTHERS
		;;
	cp)
		if [[ $ver == v1 ]]; then
			bench_measure cp -a "$src" "$r"
		else
			bench_measure rsync -a --delete "$src/" "$r/"
		fi
		JOB_RSS_KIB=$BENCH_RSS_KIB
		JOB_CPU=$BENCH_CPU
		JOB_OTHERS=$BENCH_OTHERS
		;;
	esac
	JOB_S=$(awk -v a="$t" -v b="$BENCH_WALL" 'BEGIN { printf "%.3f", a + b }')
	bench_measure sync
	JOB_SYNC_S=$(awk -v a="$JOB_S" -v b="$BENCH_WALL" \
		'BEGIN { printf "%.3f", a + b }')
}

label() {
	case "$1/$2" in
	cp/v1) echo "cp -a" ;;
	cp/v2) echo "rsync -a" ;;
	mav/*) echo "mav" ;;
	*) echo "$1" ;;
	esac
}

# keep_min VAR VALUE / keep_max VAR VALUE: VAR = min/max(VAR, VALUE).
keep_min() {
	local cur=${!1:-}
	if [[ -z $cur ]] || awk -v a="$2" -v b="$cur" 'BEGIN { exit !(a < b) }'; then
		printf -v "$1" '%s' "$2"
	fi
}
keep_max() {
	local cur=${!1:-}
	if [[ -z $cur ]] || awk -v a="$2" -v b="$cur" 'BEGIN { exit !(a > b) }'; then
		printf -v "$1" '%s' "$2"
	fi
}

# import_pass MODE PASS SRC MASTER BYTES: v1 then v2 for every tool; keeps
# the best time of each job over the passes in R_MODE_VER_TOOL (command)
# and RS_MODE_VER_TOOL (to disk), the highest RSS in M_MODE_VER_TOOL.
import_pass() {
	local mode=$1 pass=$2 src=$3 master=$4 bytes=$5 ver tool
	rm -rf -- "$src"
	cp -a "$master" "$src"
	for tool in $TOOLS; do init_repo "$tool"; done
	for ver in v1 v2; do
		if [[ $ver == v2 ]]; then
			"$GEN" mutate "$src" --seed 2 >>"$BENCH_LOG"
		fi
		for tool in $TOOLS; do
			bench_log "$mode $ver: $(label "$tool" "$ver")"
			prime "$mode" "$src"
			job "$tool" "$ver" "$src"
			row "$mode/$pass" "$ver" \
				"$(label "$tool" "$ver")" "$JOB_S" \
				"$(bench_mibps "$bytes" "$JOB_S")" "$JOB_SYNC_S" \
				"$(bench_mibps "$bytes" "$JOB_SYNC_S")" \
				"$((JOB_RSS_KIB / 1024))" "$JOB_CPU" "$JOB_OTHERS"
			local k=import.$mode.$ver.$tool.pass$pass
			bench_record "$k.s" "$JOB_S"
			bench_record "$k.sync_s" "$JOB_SYNC_S"
			bench_record "$k.rss_kib" "$JOB_RSS_KIB"
			bench_record "$k.cpu_s" "$JOB_CPU"
			bench_record "$k.others_pct" "$JOB_OTHERS"
			keep_min "R_${mode}_${ver}_${tool}" "$JOB_S"
			keep_min "RS_${mode}_${ver}_${tool}" "$JOB_SYNC_S"
			keep_max "M_${mode}_${ver}_${tool}" "$JOB_RSS_KIB"
			keep_min "C_${mode}_${ver}_${tool}" "$JOB_CPU"
		done
	done
}

stored_bytes() {
	local tool b
	echo
	echo "Stored bytes after v1+v2 (du -sb of the repository):"
	for tool in $TOOLS; do
		b=$(bench_du "$BENCH_WORK/repo-$tool")
		eval "STORED_$tool=$b"
		bench_record "stored.$tool.bytes" "$b"
		printf '  %-9s %14d  %s\n' "$(label "$tool" v1)" "$b" "$(bench_human "$b")"
	done
	if uses mav; then
		echo
		echo "mavctl du:"
		mav -R "$BENCH_WORK/repo-mav" du | sed 's/^/  /'
	fi
	if uses restic; then
		echo "restic repository version:" \
			"$(restic -r "$BENCH_WORK/repo-restic" cat config 2>/dev/null |
				python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
	fi
}

# best_table BYTES MODE...: the best of the passes, per mode, version, tool.
best_table() {
	local bytes=$1 mode ver tool t ts m c
	shift
	echo
	echo "Best of $REPEAT passes (shortest time, +sync time and CPU time;" \
		"RSS: highest):"
	row mode ver tool "time s" "MiB/s" "+sync s" "MiB/s" "RSS MiB" "CPU s" "" |
		sed 's/ *$//'
	for mode in "$@"; do
		for ver in v1 v2; do
			for tool in $TOOLS; do
				t=R_${mode}_${ver}_${tool} ts=RS_${mode}_${ver}_${tool}
				m=M_${mode}_${ver}_${tool} c=C_${mode}_${ver}_${tool}
				row "$mode" "$ver" "$(label "$tool" "$ver")" "${!t}" \
					"$(bench_mibps "$bytes" "${!t}")" "${!ts}" \
					"$(bench_mibps "$bytes" "${!ts}")" "$((${!m} / 1024))" \
					"${!c}" "" | sed 's/ *$//'
				bench_record "import.$mode.$ver.$tool.best_cpu_s" "${!c}"
				bench_record "import.$mode.$ver.$tool.best_s" "${!t}"
				bench_record "import.$mode.$ver.$tool.best_sync_s" "${!ts}"
				bench_record "import.$mode.$ver.$tool.max_rss_kib" "${!m}"
			done
		done
	done
}

print_ratios() {
	local mode=$1 ver
	uses mav || return 0
	for ver in v1 v2; do
		local m=R_${mode}_${ver}_mav ms=RS_${mode}_${ver}_mav
		local mc=C_${mode}_${ver}_mav other
		for other in restic borg cp; do
			uses "$other" || continue
			local o=R_${mode}_${ver}_${other} os=RS_${mode}_${ver}_${other}
			local oc=C_${mode}_${ver}_${other}
			printf '  %s %s: mav is %sx %s (command), %sx (to disk), %sx (CPU time)\n' \
				"$mode" "$ver" "$(bench_ratio "${!o}" "${!m}")" \
				"$(label "$other" "$ver")" "$(bench_ratio "${!os}" "${!ms}")" \
				"$(bench_ratio "${!oc}" "${!mc}")"
		done
	done
}

section_import() {
	local master bytes src=$BENCH_WORK/src modes=(cold warm) mode pass
	echo
	echo "## Import throughput: $BENCH_SIZE dataset, v1 then v2 (in place)"
	master=$(dataset "$BENCH_SIZE")
	bytes=$(bench_file_bytes "$master")
	echo "dataset: $(find "$master" -type f | wc -l) files," \
		"$(bench_human "$bytes") ($bytes bytes); source path $src"
	if ! bench_can_drop_caches; then
		echo "NOTE: cannot write /proc/sys/vm/drop_caches (not root):" \
			"cold runs skipped"
		modes=(warm)
	fi
	echo "MiB/s = v1 file bytes / time (for v2 too, so v2 shows the speed-up)"
	echo "time = the command(s); +sync = until the data is on disk"
	echo "RSS: the process reading the data (mav: import); CPU s: user +" \
		"system time of the job's commands, all threads; others%: CPU used" \
		"by other processes meanwhile (noise)"
	echo "mode/N: pass N of $REPEAT; the modes alternate between passes"
	row mode ver tool "time s" "MiB/s" "+sync s" "MiB/s" "RSS MiB" \
		"CPU s" "others%"
	for ((pass = 1; pass <= REPEAT; pass++)); do
		for mode in "${modes[@]}"; do
			import_pass "$mode" "$pass" "$src" "$master" "$bytes"
			if ((pass == 1)) && [[ $mode == "${modes[0]}" ]]; then
				stored_bytes
				echo
			fi
			for tool in $TOOLS; do rm -rf -- "$BENCH_WORK/repo-$tool"; done
		done
	done
	best_table "$bytes" "${modes[@]}"
	echo
	echo "Speed ratios (other tool's time / mav's time; > 1: mav faster):"
	for mode in "${modes[@]}"; do print_ratios "$mode"; done
	rm -rf -- "$src"
}

# -------------------------------------------------------------- snapshot --

# change_files DIR N ITER: rewrite the first 512 bytes of 10 files of a
# `gen-dataset manyfiles` tree of N files (layout dDDD/fNNNNNN.dat, 1000 a
# directory), in 10 different directories, other files at each ITER.
change_files() {
	python3 - "$1" "$2" "$3" <<'EOF'
import os, random, sys
root, n, it = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(it)
for j in range(10):
    i = (j * (n // 10) + it) % n
    p = os.path.join(root, "d%03d" % (i // 1000), "f%06d.dat" % i)
    with open(p, "r+b") as f:
        f.write(rng.randbytes(512))
EOF
}

# snap_tree N: sets SNAP_MED (median seconds of `mavctl snapshot` with 10
# changed files) after printing the details for a tree of N files.
snap_tree() {
	local n=$1 dir=$BENCH_WORK/many-$1 r=$BENCH_WORK/repo-many-$1 i
	local snaps=() empties=() floors=() walks=() others=() changed
	bench_log "snapshot: $n-file tree"
	"$GEN" manyfiles "$dir" --files "$n" --seed 3 >>"$BENCH_LOG"
	mav -R "$r" init >>"$BENCH_LOG"
	sync
	idle_or_note
	bench_measure "$MAVCTL" -R "$r" import "$dir"
	local imp=$BENCH_WALL imp_rss=$BENCH_RSS_KIB
	bench_measure "$MAVCTL" -R "$r" snapshot -m base
	local first=$BENCH_WALL
	for ((i = 1; i <= SNAP_RUNS; i++)); do
		idle_or_note 5
		bench_measure "$MAVCTL" -R "$r" snapshot --allow-empty -m empty
		empties+=("$BENCH_WALL")
		bench_measure "$MAVCTL" -R "$r" log
		floors+=("$BENCH_WALL")
	done
	for ((i = 1; i <= SNAP_RUNS; i++)); do
		change_files "$dir" "$n" "$i"
		bench_measure "$MAVCTL" -R "$r" import "$dir"
		walks+=("$BENCH_WALL")
		if ((i == 1)); then
			changed=$(mav -R "$r" status | wc -l)
			((changed == 10)) ||
				bench_die "expected 10 changes after re-import, status lists $changed"
		fi
		sync
		idle_or_note 5
		bench_measure "$MAVCTL" -R "$r" snapshot -m "change $i"
		snaps+=("$BENCH_WALL")
		others+=("$BENCH_OTHERS")
	done
	SNAP_MED=$(bench_median "${snaps[@]}")
	local emed wmed fmed
	emed=$(bench_median "${empties[@]}")
	fmed=$(bench_median "${floors[@]}")
	wmed=$(bench_median "${walks[@]}")
	printf '%8d files: import %6.2f s (RSS %d MiB), first snapshot %7s ms\n' \
		"$n" "$imp" "$((imp_rss / 1024))" "$(bench_ms "$first")"
	printf '%15s snapshot, 10 changed: median %s ms (min %s, max %s, %d runs)\n' \
		"" "$(bench_ms "$SNAP_MED")" \
		"$(bench_ms "$(printf '%s\n' "${snaps[@]}" | sort -g | head -n1)")" \
		"$(bench_ms "$(printf '%s\n' "${snaps[@]}" | sort -g | tail -n1)")" \
		"$SNAP_RUNS"
	printf '%15s others%% (CPU of other processes meanwhile): median %s\n' \
		"" "$(bench_median "${others[@]}")"
	printf '%15s snapshot, nothing changed (--allow-empty): median %s ms\n' \
		"" "$(bench_ms "$emed")"
	printf '%15s mavctl log (open and close the repository): median %s ms\n' \
		"" "$(bench_ms "$fmed")"
	printf '%15s re-import to bring in the 10 changes: median %s ms\n' \
		"" "$(bench_ms "$wmed")"
	bench_record "snapshot.$n.import_s" "$imp"
	bench_record "snapshot.$n.import_rss_kib" "$imp_rss"
	bench_record "snapshot.$n.changed10_median_s" "$SNAP_MED"
	bench_record "snapshot.$n.empty_median_s" "$emed"
	bench_record "snapshot.$n.log_median_s" "$fmed"
	bench_record "snapshot.$n.reimport_median_s" "$wmed"
	rm -rf -- "$dir" "$r"
}

section_snapshot() {
	echo
	echo "## Snapshot latency: 10 changed files, $SNAP_FILES vs $SNAP_BASE files"
	echo "(each change: rewrite 512 bytes of 10 files, mavctl import of the"
	echo " whole tree (untimed: it re-walks every file), then the timed"
	echo " mavctl snapshot command, process start to exit)"
	snap_tree "$SNAP_BASE"
	SNAP_BASE_MED=$SNAP_MED
	snap_tree "$SNAP_FILES"
	SNAP_BIG_MED=$SNAP_MED
	SNAP_RATIO=$(bench_ratio "$SNAP_BIG_MED" "$SNAP_BASE_MED")
	echo "ratio ${SNAP_FILES}/${SNAP_BASE} files: ${SNAP_RATIO}x"
}

# ---------------------------------------------------------------- memory --

section_memory() {
	local size d r=$BENCH_WORK/repo-mem bytes
	echo
	echo "## Peak RSS of mavctl import (fresh repository, warm cache)"
	MEM_SIZES=()
	# shellcheck disable=SC2086 # BENCH_MEM_EXTRA is a list of sizes
	for size in "$BENCH_SMALL_SIZE" "$BENCH_SIZE" ${BENCH_MEM_EXTRA:-}; do
		[[ " ${MEM_SIZES[*]} " == *" $size "* ]] && continue
		MEM_SIZES+=("$size")
		d=$(dataset "$size")
		bytes=$(bench_file_bytes "$d")
		rm -rf -- "$r"
		mav -R "$r" init >>"$BENCH_LOG"
		bench_warm "$d"
		idle_or_note
		bench_measure "$MAVCTL" -R "$r" import "$d"
		eval "MEM_$(echo "$size" | tr -c 'A-Za-z0-9\n' _)=$BENCH_RSS_KIB"
		printf '  %-6s dataset (%s): peak RSS %d MiB, %s s\n' "$size" \
			"$(bench_human "$bytes")" "$((BENCH_RSS_KIB / 1024))" "$BENCH_WALL"
		bench_record "memory.$size.rss_kib" "$BENCH_RSS_KIB"
		rm -rf -- "$r"
	done
}

mem_of() {
	local v
	v=MEM_$(echo "$1" | tr -c 'A-Za-z0-9\n' _)
	echo "${!v:-}"
}

# --------------------------------------------------------------- summary --

summary() {
	local r
	echo
	echo "## Targets"
	if want import && uses mav; then
		local mode
		for mode in cold warm; do
			local m=R_${mode}_v1_mav
			[[ -n ${!m:-} ]] || continue
			if uses restic; then
				local o=R_${mode}_v1_restic
				r=$(bench_ratio "${!o}" "${!m}")
				echo "$(bench_check x "$r" '>=' 4) import v1 $mode: mav ${r}x restic (target >= 4)"
			fi
			if uses cp; then
				local c=R_${mode}_v1_cp
				r=$(bench_ratio "${!c}" "${!m}")
				echo "$(bench_check x "$r" '>=' 0.5) import v1 $mode: mav ${r}x cp -a (target >= 0.5)"
			fi
		done
		if uses restic && [[ -n ${STORED_mav:-} ]]; then
			r=$(bench_ratio "$STORED_mav" "${STORED_restic:-0}")
			echo "$(bench_check x "$r" '<=' 1) stored v1+v2: mav ${r}x restic (target <= 1)"
		fi
	fi
	if want snapshot; then
		local ms
		ms=$(bench_ms "$SNAP_BIG_MED")
		echo "$(bench_check x "$ms" '<' 50) snapshot, 10 changed of $SNAP_FILES: $ms ms (target < 50)"
		echo "$(bench_check x "$SNAP_RATIO" '<=' 1.5) snapshot $SNAP_FILES vs $SNAP_BASE files: ${SNAP_RATIO}x (target <= 1.5)"
	fi
	if want memory && ((${#MEM_SIZES[@]} >= 2)); then
		local a b i
		a=$(mem_of "${MEM_SIZES[0]}")
		for ((i = 1; i < ${#MEM_SIZES[@]}; i++)); do
			b=$(mem_of "${MEM_SIZES[i]}")
			r=$(bench_ratio "$b" "$a")
			echo "$(bench_check x "$r" '<=' 1.25) import peak RSS ${MEM_SIZES[i]} vs" \
				"${MEM_SIZES[0]}: $((b / 1024)) vs $((a / 1024)) MiB, ${r}x" \
				"(target: flat, <= 1.25)"
		done
	fi
}

# ------------------------------------------------------------------ main --

need=0
want import && need=$(($(size_bytes "$BENCH_SIZE") * 9))
for sz in ${BENCH_MEM_EXTRA:-}; do
	want memory && need=$((need + $(size_bytes "$sz") * 2))
done
bench_workdir store "$need"
BENCH_LOG=$BENCH_WORK/bench.log
: >"$BENCH_LOG"
setup_tools
echo "# mav store benchmark (scripts/bench/store.sh ${sections[*]})"
bench_sysinfo
echo "mavctl: $MAVCTL ($MAV_FROM)"
echo "tools: $TOOLS; BENCH_SIZE=$BENCH_SIZE; BENCH_REPEAT=$REPEAT"
want import && section_import
want snapshot && section_snapshot
want memory && section_memory
summary
