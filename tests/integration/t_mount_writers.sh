#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_writers.sh: snapshots taken while programs keep writing are
# points in time. 4 writers append fixed-size records ("writer W seq N",
# padded; one write() each; one writer's records are pages of 4096 bytes,
# the others' of 1000, 10000 and 6000 bytes straddle page boundaries) to
# their own files in a working tree while the test takes 10 snapshots. In
# every version each file holds whole records only, numbered 0..k without
# a gap or a stray byte, and k never goes down from one version to the
# next. Two more writers tie files together, so a snapshot that caught
# different files at different moments fails even when each file alone
# looks whole: one appends record n to pair/A, then record n to pair/B
# (A is B or one record ahead); the other writes record n to pair/C.tmp,
# renames it over pair/C, then appends record n to pair/D (C's number is
# D's last or the next). Once the writers stop, a last snapshot holds
# every record each of them wrote. TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

W="$MNT/main"
VERS=()
WPIDS=()
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi
SIZES=(4096 1000 10000 6000)
PSIZE=3000 # the pair writers' records straddle pages too
NSNAP=10

cat >"$T/writer.py" <<'PYEOF'
import os, sys, time
# writer.py FILE W SIZE STOPFILE COUNTFILE: append records until STOPFILE
# exists, then write the number of records to COUNTFILE.
path, w, size, stop, countfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def record(n):
    head = b"writer %d seq %d\n" % (w, n)
    return head + b"." * (size - len(head) - 1) + b"\n"
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
n = 0
while not os.path.exists(stop):
    r = record(n)
    if os.write(fd, r) != len(r):
        sys.exit("short write at record %d" % n)
    n += 1
    time.sleep(0.002)
os.close(fd)
with open(countfile, "w") as f:
    f.write("%d\n" % n)
PYEOF

cat >"$T/records.py" <<'PYEOF'
import sys
# records.py FILE W SIZE [MIN]: FILE is records 0..k-1 of writer W, whole
# and in order; prints k; fails if k < MIN.
path, w, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
least = int(sys.argv[4]) if len(sys.argv) > 4 else 0
def record(n):
    head = b"writer %d seq %d\n" % (w, n)
    return head + b"." * (size - len(head) - 1) + b"\n"
data = open(path, "rb").read()
k, tail = divmod(len(data), size)
for n in range(k):
    if data[n * size:(n + 1) * size] != record(n):
        print("%s: record %d of %d is wrong: %r..." % (path, n, k, data[n * size:n * size + 40]))
        sys.exit(1)
if tail:
    print("%s: %d whole records, then %d stray bytes %r..." % (path, k, tail, data[k * size:k * size + 40]))
    sys.exit(1)
if k < least:
    print("%s: %d records, fewer than %d before" % (path, k, least))
    sys.exit(1)
print(k)
PYEOF

cat >"$T/pair_writer.py" <<'PYEOF'
import os, sys, time
# pair_writer.py append|rename DIR SIZE STOPFILE COUNTFILE: until STOPFILE
# exists, for n = 0, 1, ...: "append": record n to DIR/A (writer 4), then
# record n to DIR/B (writer 5); "rename": record n (writer 6) into
# DIR/C.tmp, renamed over DIR/C, then record n to DIR/D (writer 7). One
# write() each, a short pause after each half. Then writes n to COUNTFILE.
mode, d, size, stop, countfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def record(w, n):
    head = b"writer %d seq %d\n" % (w, n)
    return head + b"." * (size - len(head) - 1) + b"\n"
def put(fd, r, n):
    if os.write(fd, r) != len(r):
        sys.exit("short write at record %d" % n)
os.makedirs(d, exist_ok=True)
flags = os.O_CREAT | os.O_WRONLY | os.O_APPEND
if mode == "append":
    first = os.open(os.path.join(d, "A"), flags, 0o644)
second = os.open(os.path.join(d, "B" if mode == "append" else "D"), flags, 0o644)
n = 0
while not os.path.exists(stop):
    if mode == "append":
        put(first, record(4, n), n)
    else:
        tmp = os.path.join(d, "C.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        put(fd, record(6, n), n)
        os.close(fd)
        os.rename(tmp, os.path.join(d, "C"))
    # A pause between the halves too: snapshots often land in between.
    time.sleep(0.002)
    put(second, record(5 if mode == "append" else 7, n), n)
    n += 1
    time.sleep(0.002)
with open(countfile, "w") as f:
    f.write("%d\n" % n)
PYEOF

cat >"$T/pair_check.py" <<'PYEOF'
import os, re, sys
# pair_check.py DIR SIZE STATEFILE [N_APPEND N_RENAME]: DIR (a version's
# pair/) was one point in time for the pair writers: A and B are whole
# records 0..a-1 and 0..b-1 with b <= a <= b + 1; C is the one record c
# and D records 0..k-1 with c == k - 1 or c == k (no C: no D). No count
# below STATEFILE's (the previous version's, which this one replaces);
# with N_*, the counts the writers reported: a == b == N_APPEND,
# k == N_RENAME, c == N_RENAME - 1.
d, size, state = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def record(w, n):
    head = b"writer %d seq %d\n" % (w, n)
    return head + b"." * (size - len(head) - 1) + b"\n"
def fail(msg):
    print("%s: %s" % (d, msg))
    sys.exit(1)
def read(name):
    try:
        return open(os.path.join(d, name), "rb").read()
    except FileNotFoundError:
        return b""
def count(name, w):
    data = read(name)
    k, tail = divmod(len(data), size)
    for n in range(k):
        if data[n * size:(n + 1) * size] != record(w, n):
            fail("%s: record %d of %d is wrong: %r..." % (name, n, k, data[n * size:n * size + 40]))
    if tail:
        fail("%s: %d whole records, then %d stray bytes %r..." % (name, k, tail, data[k * size:k * size + 40]))
    return k
a, b, k = count("A", 4), count("B", 5), count("D", 7)
c, cdata = -1, read("C")
if cdata:
    m = re.match(rb"writer 6 seq (\d+)\n", cdata)
    if not m or cdata != record(6, int(m.group(1))):
        fail("C is not one whole record: %r..." % cdata[:40])
    c = int(m.group(1))
got = "A %d B %d C %d D %d" % (a, b, c, k)
if not b <= a <= b + 1:
    fail("%s: A must be B or one record ahead" % got)
if not k - 1 <= c <= k:
    fail("%s: C must be D's last record or the next" % got)
try:
    before = [int(x) for x in open(state).read().split()]
except FileNotFoundError:
    before = [0, 0, -1, 0]
if any(x < y for x, y in zip([a, b, c, k], before)):
    fail("%s: below the previous version's %s" % (got, before))
open(state, "w").write("%d %d %d %d\n" % (a, b, c, k))
if len(sys.argv) > 4:
    na, nr = int(sys.argv[4]), int(sys.argv[5])
    if not (a == b == na and k == nr and c == nr - 1):
        fail("%s, but the writers wrote %d and %d" % (got, na, nr))
print(got)
PYEOF

# check_pairs V [N_APPEND N_RENAME]: @V's pair/ is one point in time for
# the pair writers (pair_check.py; previous counts in $T/k.pair, what it
# saw appended to $T/pairs.log)
check_pairs() {
	python3 "$T/pair_check.py" "$MNT/@$1/pair" "$PSIZE" "$T/k.pair" "${@:2}" |
		tee -a "$T/pairs.log"
}

# check_version V: in @V every writer's file is whole records 0..k, k not
# below the previous version's (kept in $T/k.W)
check_version() {
	local v=$1 i k
	for i in "${!SIZES[@]}"; do
		[ -e "$MNT/@$v/w$i" ] || continue # not created yet at this point
		k=$(python3 "$T/records.py" "$MNT/@$v/w$i" "$i" "${SIZES[$i]}" \
			"$(cat "$T/k.$i" 2>/dev/null || echo 0)") || {
			echo "$k"
			return 1
		}
		echo "$k" >"$T/k.$i"
		printf 'w%d: %d records  ' "$i" "$k"
	done
	echo
}

echo "1..$((2 * NSNAP + 11))"

ok "mount" mount_fg
for i in "${!SIZES[@]}"; do
	python3 "$T/writer.py" "$W/w$i" "$i" "${SIZES[$i]}" "$T/stop" "$T/count.$i" &
	PIDS+=("$!")
	WPIDS+=("$!")
done
for mode in append rename; do
	python3 "$T/pair_writer.py" "$mode" "$W/pair" "$PSIZE" "$T/stop" "$T/count.$mode" &
	PIDS+=("$!")
	WPIDS+=("$!")
done
ok "4 writers and 2 pair writers are appending" \
	bash -c 'for i in $(seq 100); do [ "$(ls "$1" | wc -l)" -ge 5 ] && [ -s "$1/pair/B" ] && [ -s "$1/pair/D" ] && exit 0; sleep 0.05; done; exit 1' _ "$W"
start=$(date +%s.%N)
for s in $(seq "$NSNAP"); do
	sleep 0.3
	if "$M" snapshot -m "busy $s" >"$T/snap.$s" 2>&1; then
		v=$(cut -d' ' -f1 "$T/snap.$s")
		VERS+=("$v")
		ok "snapshot $s ($v) while writing: whole records, no gap, no going back" check_version "$v"
		ok "snapshot $s ($v): pairs whole, A is B or one ahead, C is D's last or the next" check_pairs "$v"
	else
		ok "snapshot $s while writing" bash -c 'cat "$1"; false' _ "$T/snap.$s"
		ok "snapshot $s: no version to check the pairs in" false
	fi
done
echo "# $NSNAP snapshots in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
# Not a check (timing decides): how often a snapshot fell between halves.
awk '$2 > $4 { ab++ } $6 == $8 { cd++ }
	END { printf "# between the halves: A/B in %d, C/D in %d of %d\n", ab, cd, NR }' \
	"$T/pairs.log" 2>/dev/null
ok "the writers were still running through all of them" \
	bash -c 'for p; do kill -0 "$p" || exit 1; done' _ "${WPIDS[@]}"
touch "$T/stop"
stopped() {
	local p
	for p in "${WPIDS[@]}"; do
		wait "$p" || return 1
	done
}
ok "stop the writers: each exits 0" stopped
recheck() {
	local v
	rm -f "$T"/k.*
	for v in "${VERS[@]}"; do
		check_version "$v" || return 1
		check_pairs "$v" || return 1
	done
}
ok "every version's records and pairs, read again now, still hold" recheck
ok "a last snapshot" bash -c '"$1" snapshot -m final >"$2/final"' _ "$M" "$T"
F=$(cut -d' ' -f1 "$T/final")
final_all() {
	local i c k
	for i in "${!SIZES[@]}"; do
		c=$(cat "$T/count.$i") || return 1
		k=$(python3 "$T/records.py" "$MNT/@$F/w$i" "$i" "${SIZES[$i]}") || {
			echo "$k"
			return 1
		}
		echo "w$i: wrote $c, the last version has $k"
		[ "$k" -eq "$c" ] || return 1
	done
}
ok "the last version holds every record each writer wrote" final_all
ok "and every record of both pair writers: A == B, C is D's last" \
	check_pairs "$F" "$(cat "$T/count.append")" "$(cat "$T/count.rename")"
ok "and equals the working tree" treecmp "$W" "$MNT/@$F"
ok "unmount" umount_fg
ok "fsck is clean" "$M" fsck

finish
