# lib.sh: shared helpers for the benchmarks in scripts/bench/ (source it).
#
#   bench_workdir NAME        make the scratch directory $BENCH_WORK under
#                             $BENCH_DIR (default /var/tmp); removed on exit
#   bench_on_exit CMD...      run CMD at exit, before the scratch is removed
#   bench_measure CMD...      run CMD (output to $BENCH_LOG), set BENCH_WALL
#                             (seconds) and BENCH_RSS_KIB (peak RSS of CMD)
#   bench_wait_idle [SECS]    wait until no other process uses the CPU
#   bench_drop_caches         sync and drop the page cache (root only)
#   bench_warm DIR            read every file under DIR into the page cache
#   bench_median X...         median of numbers
#   bench_ratio A B           A/B with two decimals ("n/a" if B is 0)
#   bench_mibps BYTES SECS    throughput in MiB/s
#   bench_human BYTES         1.5 GiB, 200.0 MiB, ...
#   bench_record KEY VALUE    append to $BENCH_RESULTS (KEY<TAB>VALUE)
#   bench_sysinfo             date, machine, kernel, tool versions
#
# Timing and peak RSS both come from wait4(2) on the child, through a few
# lines of python3 (standard library), so no /usr/bin/time is needed. The
# clock starts just before the fork and stops when the child is reaped.
# shellcheck shell=bash

BENCH_LOG=${BENCH_LOG:-/dev/null}
# Measured commands run at this nice level: as root, -10 by default, so that
# other work on a shared machine takes less CPU from them (BENCH_NICE=0: off).
if ((EUID == 0)); then
	BENCH_NICE=${BENCH_NICE:--10}
else
	BENCH_NICE=${BENCH_NICE:-0}
fi
BENCH_WORK=
BENCH_WALL=0
BENCH_RSS_KIB=0
BENCH_CPU=0
BENCH_OTHERS=0
export BENCH_WALL BENCH_RSS_KIB BENCH_CPU BENCH_OTHERS
_bench_exit_cmds=()

bench_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}
bench_have() { command -v "$1" >/dev/null 2>&1; }

bench_on_exit() { _bench_exit_cmds+=("$*"); }

_bench_cleanup() {
	local rc=$? c
	trap - EXIT INT TERM
	for c in "${_bench_exit_cmds[@]}"; do
		eval "$c" || true
	done
	if [[ -n $BENCH_WORK && -d $BENCH_WORK ]]; then
		if [[ ${BENCH_KEEP:-0} == 1 ]]; then
			bench_log "kept scratch directory $BENCH_WORK"
		else
			rm -rf -- "$BENCH_WORK"
		fi
	fi
	exit "$rc"
}

# bench_workdir NAME [NEED_BYTES]: a fresh mkdtemp under $BENCH_DIR (default
# /var/tmp, which is on disk where /tmp may be a small tmpfs). Only that new
# directory is removed at exit (BENCH_KEEP=1 keeps it), never $BENCH_DIR.
bench_workdir() {
	local name=$1 need=${2:-0} parent=${BENCH_DIR:-/var/tmp} avail
	mkdir -p -- "$parent" || bench_die "cannot create BENCH_DIR $parent"
	BENCH_WORK=$(mktemp -d "$parent/mav-bench-$name.XXXXXX") ||
		bench_die "mktemp in $parent failed"
	trap _bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	avail=$(df -B1 --output=avail -- "$BENCH_WORK" | tail -n 1 | tr -d ' ')
	if ((need > 0 && avail < need)); then
		bench_die "$BENCH_WORK: $(bench_human "$avail") free," \
			"this run needs about $(bench_human "$need"); set BENCH_DIR"
	fi
	bench_log "scratch directory $BENCH_WORK ($(bench_human "$avail") free)"
}

# The measuring child: argv = RESULT_FILE LOG_FILE NICE CMD...; writes
# "WALL_SECONDS MAXRSS_KIB EXIT_CODE CPU_SECONDS OTHERS_PERCENT" to
# RESULT_FILE. OTHERS_PERCENT is the share of the machine's CPU time that
# went to other processes meanwhile (from /proc/stat): a noise indicator.
_BENCH_PY_MEASURE='
import os, subprocess, sys, time
def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
res, log, nice, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def prio():
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
with open(log, "ab") as lf:
    b0 = busy()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                         preexec_fn=prio)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    b1 = busy()
    p.returncode = os.waitstatus_to_exitcode(status)
cpu = ru.ru_utime + ru.ru_stime
others = max(0.0, (b1 - b0 - cpu) / (wall * os.cpu_count())) * 100
with open(res, "w") as f:
    f.write("%.6f %d %d %.3f %.0f\n" % (wall, ru.ru_maxrss, p.returncode,
                                        cpu, others))
'

# bench_wait_idle [MAX_SECONDS]: wait (default up to $BENCH_IDLE_WAIT, 60 s)
# until the machine is idle (< 10% busy over one second), so that other
# work on a shared machine disturbs the next measurement less. Returns 1 if
# it never became idle.
bench_wait_idle() {
	python3 -c "$_BENCH_PY_IDLE" "${1:-${BENCH_IDLE_WAIT:-60}}"
}
_BENCH_PY_IDLE='
import sys, time
def sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]
end = time.monotonic() + float(sys.argv[1])
while True:
    t0, i0 = sample()
    time.sleep(1)
    t1, i1 = sample()
    if t1 > t0 and 1 - (i1 - i0) / (t1 - t0) < 0.10:
        sys.exit(0)
    if time.monotonic() > end:
        sys.exit(1)
'

# bench_measure CMD...: run CMD with stdin from /dev/null and its output
# appended to $BENCH_LOG. Sets BENCH_WALL, BENCH_RSS_KIB, BENCH_CPU (user +
# system seconds of CMD) and BENCH_OTHERS (% of the machine used by other
# processes meanwhile); dies if CMD fails (showing the end of the log).
# CMD runs at nice level $BENCH_NICE.
bench_measure() {
	local res rc
	res=$(mktemp "${BENCH_WORK:-/tmp}/.measure.XXXXXX")
	printf '$ %s\n' "$*" >>"$BENCH_LOG"
	python3 -c "$_BENCH_PY_MEASURE" "$res" "$BENCH_LOG" "$BENCH_NICE" "$@" ||
		bench_die "measuring $1 failed"
	read -r BENCH_WALL BENCH_RSS_KIB rc BENCH_CPU BENCH_OTHERS <"$res"
	rm -f -- "$res"
	if ((rc != 0)); then
		[[ $BENCH_LOG != /dev/null ]] && tail -n 20 -- "$BENCH_LOG" >&2
		bench_die "command failed (exit $rc): $*"
	fi
}

# bench_drop_caches: flush dirty pages and drop the page cache, dentries and
# inodes. Returns 1 (and changes nothing) when not permitted.
bench_drop_caches() {
	sync
	[[ -w /proc/sys/vm/drop_caches ]] || return 1
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
}

bench_can_drop_caches() { [[ -w /proc/sys/vm/drop_caches ]]; }

# bench_warm DIR: read every file (and stat every entry) under DIR.
bench_warm() {
	find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
}

# bench_file_bytes DIR: sum of the sizes of the regular files under DIR.
bench_file_bytes() {
	find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

bench_du() { du -sb -- "$1" | cut -f1; }

bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a";
		else printf "%.2f\n", a / b }'
}

bench_mibps() {
	awk -v n="$1" -v s="$2" 'BEGIN { if (s == 0) print "n/a";
		else printf "%.1f\n", n / 1048576 / s }'
}

bench_ms() { awk -v s="$1" 'BEGIN { printf "%.1f\n", s * 1000 }'; }

bench_human() {
	awk -v n="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1;
		while (n >= 1024 && i < 5) { n /= 1024; i++ }
		if (i == 1) printf "%d B\n", n; else printf "%.1f %s\n", n, u[i] }'
}

# bench_check NAME VALUE OP LIMIT: print "PASS"/"FAIL" for VALUE OP LIMIT
# (OP is <, <=, >, >=); "n/a" when VALUE is not a number.
bench_check() {
	awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
		if (v !~ /^[0-9.]+$/) { print "n/a"; exit }
		ok = (op == "<" && v < l) || (op == "<=" && v <= l) ||
		     (op == ">" && v > l) || (op == ">=" && v >= l);
		print ok ? "PASS" : "FAIL" }'
}

bench_record() {
	[[ -n ${BENCH_RESULTS:-} ]] || return 0
	printf '%s\t%s\n' "$1" "$2" >>"$BENCH_RESULTS"
}

bench_sysinfo() {
	echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine:  $(nproc) cores," \
		"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
		"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel:   $(uname -sr)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
	echo "nice:     $BENCH_NICE (for the measured commands)"
	[[ -r /etc/debian_version ]] && echo "debian:   $(cat /etc/debian_version)"
	echo "fs:       $(df -T -- "${BENCH_WORK:-.}" | awk 'NR == 2 { print $2 }')" \
		"on $(df -- "${BENCH_WORK:-.}" | awk 'NR == 2 { print $1 }')"
	bench_have restic && echo "restic:   $(restic version | head -n 1)"
	bench_have borg && echo "borg:     $(borg --version)"
	bench_have rsync && echo "rsync:    $(rsync --version | head -n 1)"
	return 0
}
