# mount-lib.sh: helpers for the mount benchmarks (mount-read.sh,
# mount-write.sh); sourced after lib.sh.
#
#   mb_setup NAME NEED_BYTES   scratch dir, mav binaries, cleanup trap
#   mb_mount_mav REPO MNT [OPTS]     mavfs in the foreground, pid in MB_PID
#   mb_mount_pt SRC MNT [OPTS]       libfuse's passthrough_ll over SRC
#   mb_mount_restic REPO MNT         restic mount (pid in MB_PID)
#   mb_mount_borg REPO::ARCH MNT     borg mount -f
#   mb_umount MNT                    unmount and wait for its daemon to exit
#   mb_cold                          sync and drop the page cache (required)
#   mb_time CMD...                   run CMD, MB_T = wall seconds (dies on error)
#   mb_runs N VAR CMD...             N timed runs; VAR = median seconds
#   mb_result LABEL V NATIVE UNIT [OP LIMIT]  a result row with ratio, PASS/FAIL
#   mb_hwm PID                       peak RSS (VmHWM) of PID in KiB
#   mb_row ...                       one aligned result line
#
# Every daemon is started in the foreground (&) so its pid is known; the
# exit trap unmounts (lazily) everything under the scratch directory and
# kills exactly those pids. Nothing from libfuse's examples is kept in the
# repository: passthrough_ll.c is copied into the scratch directory and
# compiled there.
# shellcheck shell=bash

MB_PIDS=()
declare -A MB_MNT_PID=()
MB_PID=
MB_T=0
MB_OTHERS_MAX=0

mb_die() { bench_die "$@"; }

mb_setup() {
	local name=$1 need=$2
	bench_workdir "$name" "$need"
	bench_on_exit mb_cleanup
	BENCH_LOG=$BENCH_WORK/log
	: >"$BENCH_LOG"
	bench_can_drop_caches || mb_die "needs root (drop_caches, mounts)"
	[[ -e /dev/fuse ]] || mb_die "no /dev/fuse"
	bench_have fusermount3 || mb_die "fusermount3 missing (apt-get install fuse3)"
	if [[ -z ${MAVFS:-} || -z ${MAVCTL:-} ]]; then
		local build=${BENCH_BUILD:-$ROOT/build-bench}
		bench_log "building mavctl and mavfs (Release) in $build"
		cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
		cmake --build "$build" -j "$(nproc)" --target mavctl mavfs >/dev/null
		MAVCTL=$build/bin/mavctl
		MAVFS=$build/bin/mavfs
	fi
	[[ -x $MAVCTL && -x $MAVFS ]] || mb_die "no mavctl/mavfs binaries"
	export MAV_AUTHOR=${MAV_AUTHOR:-bench}
	export RESTIC_PASSWORD=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
	export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_PASSPHRASE=
	export BORG_BASE_DIR=$BENCH_WORK/borg-home
	export RESTIC_CACHE_DIR=$BENCH_WORK/restic-cache
}

# Lazily unmount everything below the scratch directory (deepest first),
# then end the daemons this run started, by pid.
mb_cleanup() {
	local m p
	[[ -n $BENCH_WORK ]] || return 0
	for m in $(awk -v t="$BENCH_WORK/" 'index($5, t) == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r); do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in "${MB_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${MB_PIDS[@]}"; do
		mb_wait_exit "$p" 10 || kill -9 "$p" 2>/dev/null
	done
	return 0
}

mb_wait_exit() { # PID [SECONDS]
	local i
	for ((i = 0; i < ${2:-60} * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# mb_wait_mounted MNT PID: until MNT is a mount point (or PID died).
mb_wait_mounted() {
	local i
	for ((i = 0; i < 600; i++)); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$BENCH_LOG" >&2
	mb_die "mount of $1 did not come up"
}

_mb_started() { # MNT PID
	MB_PID=$2
	MB_PIDS+=("$2")
	MB_MNT_PID[$1]=$2
	mb_wait_mounted "$1" "$2"
}

mb_mount_mav() {
	local repo=$1 mnt=$2 opts=${3:-}
	mkdir -p "$mnt"
	printf '$ mavfs %s %s -f %s\n' "$repo" "$mnt" "${opts:+-o $opts}" >>"$BENCH_LOG"
	"$MAVFS" "$repo" "$mnt" -f ${opts:+-o "$opts"} >>"$BENCH_LOG" 2>&1 &
	_mb_started "$mnt" $!
}

# The passthrough peer: libfuse's passthrough_ll example, built once per run
# from the copy libfuse3-dev installs, with its default options (1 s
# timeouts, page cache kept per open unless -o cache=always) plus
# $BENCH_PT_OPTS.
mb_build_pt() {
	local src=${BENCH_PT_SRC:-/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c}
	[[ -n ${MB_PT:-} ]] && return 0
	[[ -r $src ]] || mb_die "no $src (apt-get install libfuse3-dev)"
	mkdir -p "$BENCH_WORK/pt"
	cp "$src" "$BENCH_WORK/pt/passthrough_ll.c"
	cp "$(dirname "$src")/passthrough_helpers.h" "$BENCH_WORK/pt/" || true
	# shellcheck disable=SC2046
	gcc -O2 -w -o "$BENCH_WORK/pt/passthrough_ll" "$BENCH_WORK/pt/passthrough_ll.c" \
		$(pkg-config --cflags --libs fuse3) || mb_die "building passthrough_ll failed"
	MB_PT=$BENCH_WORK/pt/passthrough_ll
}

mb_mount_pt() {
	local src=$1 mnt=$2 opts=source=$1
	[[ -n ${3:-} ]] && opts+=",$3"
	[[ -n ${BENCH_PT_OPTS:-} ]] && opts+=",$BENCH_PT_OPTS"
	mb_build_pt
	mkdir -p "$mnt"
	"$MB_PT" -f -o "$opts" "$mnt" >>"$BENCH_LOG" 2>&1 &
	_mb_started "$mnt" $!
}

mb_mount_restic() {
	mkdir -p "$2"
	restic -r "$1" mount --allow-other=false "$2" >>"$BENCH_LOG" 2>&1 &
	_mb_started "$2" $!
}

mb_mount_borg() {
	mkdir -p "$2"
	borg mount -f "$1" "$2" >>"$BENCH_LOG" 2>&1 &
	_mb_started "$2" $!
}

mb_umount() {
	local mnt=$1 pid=${MB_MNT_PID[$1]:-}
	fusermount3 -u "$mnt" 2>>"$BENCH_LOG" || {
		sleep 1
		fusermount3 -u "$mnt" || mb_die "cannot unmount $mnt"
	}
	if [[ -n $pid ]]; then
		mb_wait_exit "$pid" 120 || mb_die "daemon $pid of $mnt did not exit"
		unset "MB_MNT_PID[$mnt]"
	fi
}

mb_cold() {
	bench_drop_caches || mb_die "cannot drop caches"
}

# mb_time CMD...: MB_T = wall seconds of CMD; the log gets the seconds and
# others% (CPU share other processes took meanwhile: noise on a shared box).
mb_time() {
	bench_measure "$@"
	MB_T=$BENCH_WALL
	printf '$ %.3f s, others %s%%\n' "$BENCH_WALL" "$BENCH_OTHERS" >>"$BENCH_LOG"
	# jobs under a second round too coarsely to count
	if [[ ${BENCH_WALL%%.*} -ge 1 ]] && ((BENCH_OTHERS > MB_OTHERS_MAX)); then
		MB_OTHERS_MAX=$BENCH_OTHERS
	fi
	return 0
}

# mb_runs N VAR CMD...: median wall seconds of N runs of CMD into VAR; the
# hook mb_before (if set with MB_BEFORE) runs before each timed run.
mb_runs() {
	local n=$1 var=$2 i ts=()
	shift 2
	for ((i = 0; i < n; i++)); do
		[[ -n ${MB_BEFORE:-} ]] && eval "$MB_BEFORE"
		mb_time "$@"
		ts+=("$MB_T")
	done
	printf -v "$var" '%s' "$(bench_median "${ts[@]}")"
	printf '$ runs: %s\n' "${ts[*]}" >>"$BENCH_LOG"
}

mb_hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
mb_rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

mb_row() { printf '%-34s %12s %12s %10s %s\n' "$@"; }

# mb_result LABEL VALUE NATIVE UNIT [TARGET_OP TARGET]: "value unit,
# ratio x native" plus PASS/FAIL when a target is given. Values are rates
# (bigger is better).
mb_result() {
	local label=$1 v=$2 nat=$3 unit=$4 op=${5:-} lim=${6:-} r chk=
	r=$(bench_ratio "$v" "$nat")
	[[ -n $op ]] && chk="target $op $lim: $(bench_check x "$r" "$op" "$lim")"
	mb_row "$label" "$v" "$unit" "${r}x" "$chk"
	bench_record "$label" "$v $unit ${r}x"
}

mb_size_bytes() {
	awk -v s="$1" 'BEGIN { m = 1; u = toupper(substr(s, length(s)));
		if (u == "K") m = 2^10; else if (u == "M") m = 2^20;
		else if (u == "G") m = 2^30; else if (u == "T") m = 2^40;
		if (m > 1) s = substr(s, 1, length(s) - 1);
		printf "%d\n", s * m }'
}

mb_versions() {
	bench_sysinfo
	echo "libfuse:  $(pkg-config --modversion fuse3)"
	echo "mav:      $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
	[[ -x /usr/bin/python3 ]] && echo "python:   $(/usr/bin/python3 --version 2>&1)"
	return 0
}
