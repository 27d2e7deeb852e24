#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_corrupt.sh: damaged chunk bytes on disk read as EIO through the
# mount, with one log line naming the file, while every other file still
# reads; fsck through the daemon reports the damage. The damage is made by
# flipping one byte of a chunk inside the database's table file (found by
# searching for the file's known random bytes), so the frame's XXH3 must
# catch it (RocksDB's own checksum is not checked on chunk reads).
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
mkdir -p "$S/sub"
head -c 3000000 /dev/urandom >"$S/victim.bin"
head -c 1000000 /dev/urandom >"$S/sub/other.bin"
printf 'small and inline\n' >"$S/small.txt"
if ! { "$M" init >/dev/null && "$M" import "$S" >/dev/null &&
	"$M" snapshot -m one >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi

echo "1..10"

# Flip one byte in the middle of victim.bin's bytes, wherever the store
# keeps them (the repository is not open: no daemon runs).
ok "one byte of victim.bin's stored bytes flipped on disk" \
	python3 - "$MAV_REPO/db" "$S/victim.bin" <<'PYEOF'
import os, sys
db, victim = sys.argv[1], sys.argv[2]
pat = open(victim, "rb").read()[1500000:1500064]
hits = []
for name in sorted(os.listdir(db)):
    p = os.path.join(db, name)
    if os.path.isfile(p):
        data = open(p, "rb").read()
        i = data.find(pat)
        while i >= 0:
            hits.append((p, i))
            i = data.find(pat, i + 1)
if len(hits) != 1 or not hits[0][0].endswith(".sst"):
    sys.exit("expected the bytes once, in a table file: %r" % hits)
p, i = hits[0]
with open(p, "r+b") as f:
    f.seek(i + 10)
    b = f.read(1)
    f.seek(i + 10)
    f.write(bytes([b[0] ^ 0xFF]))
print("flipped %s at %d" % (p, i + 10))
PYEOF
ok "mount" mount_fg
ok "reading the damaged file fails with EIO" \
	bash -c 'cat "$1/@v1/victim.bin" >/dev/null 2>"$2/err"; [ $? -ne 0 ] && grep -q "Input/output error" "$2/err"' \
	_ "$MNT" "$T"
ok "the daemon logged which file, which chunk and why" \
	grep -qE "read @v1 inode [0-9]+ at [0-9]+\+[0-9]+: .*chunk [0-9a-f]{64}.*([Cc]orrupt|checksum)" "$T/daemon.log"
ok "the bytes before the damaged chunk still read" \
	bash -c 'cmp <(head -c 65536 "$1/@v1/victim.bin") <(head -c 65536 "$2/victim.bin")' _ "$MNT" "$S"
ok "every other file reads intact" \
	bash -c 'cmp "$1/@v1/sub/other.bin" "$2/sub/other.bin" && cmp "$1/@v1/small.txt" "$2/small.txt"' _ "$MNT" "$S"
ok "the working tree shares the damage (same chunks): EIO there too" \
	bash -c '! cat "$1/main/victim.bin" >/dev/null 2>&1' _ "$MNT"
ok "fsck through the daemon fails and names the damage" \
	bash -c '! "$1" fsck >"$2/fsck" 2>&1 && grep -qiE "corrupt|checksum" "$2/fsck"' _ "$M" "$T"
same_chunk() {
	local logged named
	logged=$(grep -oE "chunk [0-9a-f]{64}" "$T/daemon.log" | sort -u)
	named=$(grep -oE "chunk [0-9a-f]{64}" "$T/fsck" | sort -u)
	[ -n "$logged" ] && [ "$logged" = "$named" ] || {
		echo "read logged '$logged', fsck named '$named'"
		return 1
	}
}
ok "the chunk the read logged is the one fsck names" same_chunk
ok "the daemon is still serving, and exits 0" umount_fg

finish
