#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_parallel.sh: many readers at once, cold and warm: processes
# checksumming every file of @v1 in different orders, threads doing random
# preads against the source, readers of one version while another branch
# is written and snapshotted over and over, and readers across many views
# at once (more than the view table holds, their inode numbers kept), with
# caches of 1 MiB. Every byte must match.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
python3 "$GEN" generate "$S" --seed 21 --size 20M >/dev/null
python3 "$GEN" manyfiles "$S/small" --files 1500 --seed 22 >/dev/null
if ! { "$M" init >/dev/null && "$M" import "$S" >/dev/null &&
	"$M" snapshot -m one >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi
(cd "$S" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"
NFILES=$(wc -l <"$T/sums")

# shuffled_sums DIR SEED: sha256sum of every file of DIR in a seeded order,
# printed back in sorted order (comparable with $T/sums).
shuffled_sums() {
	(cd "$1" && find . -type f -print0 | sort -z |
		python3 -c '
import random, sys
names = sys.stdin.buffer.read().split(b"\0")[:-1]
random.Random(int(sys.argv[1])).shuffle(names)
sys.stdout.buffer.write(b"\0".join(names) + b"\0")' "$2" |
		xargs -0 sha256sum | sort -k2)
}
export -f shuffled_sums

echo "1..16"

ok "a cache size that is not a size is refused" \
	fails_with "bad size for chunk_cache: 'abc'" \
	"$FS" "$MAV_REPO" "$MNT" -f -o chunk_cache=abc
ok "mount (a small view table and caches: max_views=4, 1M each)" \
	mount_fg "$MAV_REPO" "$MNT" -o max_views=4,chunk_cache=1M,tree_cache=1M
ok "8 processes checksum all $NFILES files of @v1 at once (cold)" \
	bash -c 'for i in 1 2 3 4 5 6 7 8; do shuffled_sums "$1/@v1" $i >"$2/p$i" & done; wait
		for i in 1 2 3 4 5 6 7 8; do cmp <(sort -k2 "$2/sums") "$2/p$i" || exit 1; done' \
	_ "$MNT" "$T"
ok "and again, warm" \
	bash -c 'for i in 1 2 3 4; do shuffled_sums "$1/@v1" $((i + 10)) >"$2/w$i" & done; wait
		for i in 1 2 3 4; do cmp <(sort -k2 "$2/sums") "$2/w$i" || exit 1; done' \
	_ "$MNT" "$T"

cat >"$T/preads.py" <<'PYEOF'
import os, random, sys, threading
src, mnt, nthreads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = []
for top, _, names in os.walk(src):
    for nm in names:
        rel = os.path.relpath(os.path.join(top, nm), src)
        files.append((rel, os.path.getsize(os.path.join(src, rel))))
errors = []
def worker(seed):
    rnd = random.Random(seed)
    for _ in range(rounds):
        rel, size = rnd.choice(files)
        off = rnd.randrange(0, size + 1)
        ln = rnd.choice([1, 100, 4096, 65536, 300000, 1 << 20])
        with open(os.path.join(src, rel), "rb") as a, open(os.path.join(mnt, rel), "rb") as b:
            if os.pread(a.fileno(), ln, off) != os.pread(b.fileno(), ln, off):
                errors.append((rel, off, ln))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
print("%d mismatches" % len(errors), errors[:5])
sys.exit(1 if errors else 0)
PYEOF
ok "16 threads of random preads match the source" \
	python3 "$T/preads.py" "$S" "$MNT/@v1" 16 300
ok "4 processes x 8 threads of random preads" \
	bash -c 'for i in 1 2 3 4; do python3 "$1" "$2" "$3/@v1" 8 150 & pids="$pids $!"; done
		r=0; for p in $pids; do wait $p || r=1; done; exit $r' _ "$T/preads.py" "$S" "$MNT"

# Readers of v1 while branch w is written and snapshotted again and again.
"$M" branch w v1 >/dev/null
export M MNT
writer() {
	local i
	for i in 1 2 3 4 5; do
		head -c 2000000 /dev/urandom >"$MNT/w/blob$i" || return 1
		printf 'round %d\n' "$i" >>"$MNT/w/log.txt" || return 1
		"$M" snapshot -b w -m "round $i" >/dev/null || return 1
	done
}
export -f writer
ok "readers stay exact while another branch is written and snapshotted" \
	bash -c 'writer & w=$!
		python3 "$1" "$2" "$3/@v1" 8 300 & r=$!
		shuffled_sums "$3/@v1" 99 >"$4/during" & s=$!
		wait $w || exit 1; wait $r || exit 1; wait $s
		cmp <(sort -k2 "$4/sums") "$4/during"' \
	_ "$T/preads.py" "$S" "$MNT" "$T"
ok "every snapshot of the writer is a new version, visible at once" \
	bash -c '[ "$(ls "$1" | grep -c "^@v")" = 6 ] && [ "$(tail -1 "$1/@v6/log.txt")" = "round 5" ] &&
		[ "$(wc -l <"$1/@v4/log.txt")" = 3 ]' _ "$MNT"
ok "blobs in each version are what was written then" \
	bash -c 'for v in 2 3 4 5 6; do n=$((v - 1)); cmp "$1/@v$v/blob$n" "$1/w/blob$n" || exit 1; done' _ "$MNT"

# More views than the table holds: they are closed and reopened as needed.
# Inode numbers stay what they were (the kernel may hold them all along).
inodes() {
	stat -c "%i %n" "$MNT/@v1" "$MNT/@v1/small/d000" "$MNT/@v1/small/d000/f000000.dat"
	for v in 2 3 4 5 6; do stat -c "%i %n" "$MNT/@v$v" "$MNT/@v$v/blob1" "$MNT/@v$v/log.txt"; done
}
export -f inodes
export MNT
inodes >"$T/inodes-before"
ok "reading 6 versions in parallel with a table of 4 views" \
	bash -c 'for v in 1 2 3 4 5 6; do (cat "$1/@v$v/log.txt" "$1/@v1/small/"*/* >/dev/null 2>&1; sha256sum "$1/@v$v/blob1" 2>/dev/null) & done; wait
		for v in 2 3 4 5 6; do cmp "$1/@v$v/blob1" "$1/w/blob1" || exit 1; done' _ "$MNT"
ok "then the janitor brings the open views back within the bound" \
	bash -c 'for i in $(seq 150); do grep "views open" "$1/daemon.log" | tail -1 | grep -q "within the bound again" && exit 0; sleep 0.1; done
		grep "views open" "$1/daemon.log"; exit 1' _ "$T"
ok "names dropped by the kernel still resolve (views reopen)" \
	bash -c 'for v in 1 2 3 4 5 6; do ls "$1/@v$v" >/dev/null || exit 1; done; cmp "$1/@v2/blob1" "$1/w/blob1"' _ "$MNT"
ok "with the inode numbers they had" bash -c 'diff "$1/inodes-before" <(inodes)' _ "$T"
# Files held open in six views: the kernel must keep all six, so above the
# bound the janitor asks it to drop names; the open files keep their views
# (they close once the kernel reclaims what it cached under them).
mark=$(grep -c "asked the kernel to drop" "$T/daemon.log")
f0=small/d000/f000000.dat
exec 3<"$MNT/@v1/$f0" 4<"$MNT/@v2/$f0" 5<"$MNT/@v3/$f0" 6<"$MNT/@v4/$f0" \
	8<"$MNT/@v5/$f0" 9<"$MNT/@v6/$f0"
ok "with six views held open the janitor asks the kernel to let go" \
	bash -c 'for i in $(seq 150); do [ "$(grep -c "asked the kernel to drop" "$1/daemon.log")" -gt "$2" ] && exit 0; sleep 0.1; done
		exit 1' _ "$T" "$mark"
# cmp reads the open files itself: a `<(cat <&3)` could still hold one
# when the unmount below runs (nothing waits for it), making the mount busy.
ok "files open in dropped views still read" \
	bash -c 'cmp - "$1/small/d000/f000000.dat" <&3 && cmp - "$1/small/d000/f000000.dat" <&9' _ "$S"
exec 3<&- 4<&- 5<&- 6<&- 8<&- 9<&-
ok "unmount" umount_fg

finish
