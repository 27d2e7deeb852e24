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
# next. Once the writers stop, a last
# snapshot holds every record each of them wrote. TAP output; exits 1 on
# any failure.
. "$(dirname "$0")/lib_mount.sh"

W="$MNT/main"
VERS=()
WPIDS=()
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi
SIZES=(4096 1000 10000 6000)
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

echo "1..$((NSNAP + 10))"

ok "mount" mount_fg
for i in "${!SIZES[@]}"; do
	python3 "$T/writer.py" "$W/w$i" "$i" "${SIZES[$i]}" "$T/stop" "$T/count.$i" &
	PIDS+=("$!")
	WPIDS+=("$!")
done
ok "4 writers are appending" \
	bash -c 'for i in $(seq 100); do [ "$(ls "$1" | wc -l)" -ge 4 ] && exit 0; sleep 0.05; done; exit 1' _ "$W"
start=$(date +%s.%N)
for s in $(seq "$NSNAP"); do
	sleep 0.3
	if "$M" snapshot -m "busy $s" >"$T/snap.$s" 2>&1; then
		v=$(cut -d' ' -f1 "$T/snap.$s")
		VERS+=("$v")
		ok "snapshot $s ($v) while writing: whole records, no gap, no going back" check_version "$v"
	else
		ok "snapshot $s while writing" bash -c 'cat "$1"; false' _ "$T/snap.$s"
	fi
done
echo "# $NSNAP snapshots in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
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
	done
}
ok "every version's records, read again now, are still whole and in order" recheck
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
ok "and equals the working tree" treecmp "$W" "$MNT/@$F"
ok "unmount" umount_fg
ok "fsck is clean" "$M" fsck

finish
