#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_big.sh: the heavy cases of mavctl import. A 10 GB sparse file (all
# zeros: dedup keeps it tiny; holes are never read; memory stays bounded;
# export writes it back sparse), and kill -9 in the middle of a large import
# (fsck clean afterwards, only whole files referenced, a re-import finishes
# the job). Prints the timings as TAP comments. Exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
IMPORT_PID=
at_exit '[ -n "$IMPORT_PID" ] && kill -9 "$IMPORT_PID" 2>/dev/null'
export MAV_REPO="$T/repo"

# measure NAME CMD...: run CMD, record wall seconds and peak RSS (MiB) of
# it in $T/NAME.time as "secs rss"; succeeds if CMD did.
measure() {
	local name=$1
	shift
	python3 - "$T/$name.time" "$@" <<'PYEOF'
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[2:])
secs = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
open(sys.argv[1], "w").write("%.2f %.0f\n" % (secs, rss))
sys.exit(rc)
PYEOF
}
GIB10=$((10 * 1024 * 1024 * 1024))

echo "1..14"

"$M" init >/dev/null || exit 1
mkdir -p "$T/sparse"
truncate -s 10G "$T/sparse/zeros.bin"
truncate -s 1G "$T/sparse/island.bin"
printf 'an island of data' |
	dd of="$T/sparse/island.bin" bs=1 seek=500000000 conv=notrunc 2>/dev/null
echo small >"$T/sparse/small.txt"

ok "import of a 10 GB and a 1 GB sparse file" measure sparse "$M" import "$T/sparse"
read -r SECS RSS <"$T/sparse.time"
echo "# import of 10 GB + 1 GB sparse: ${SECS}s, peak RSS ${RSS} MiB"
ok "peak memory stays bounded (< 512 MiB for 11 GB of input)" \
	test "$RSS" -lt 512
ok "snapshot" "$M" snapshot -m sparse
stored_small() {
	"$M" du --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d)
assert d["logical_bytes"] >= 11 * 2**30, d
assert d["stored_bytes"] < 16 * 2**20, d   # zeros dedup to one chunk'
}
ok "du: 11 GB logical, stored stays small" stored_small
ok "ls -l shows the full size" \
	bash -c '"$1" ls -l v1 | grep -Eq "^-rw.* $2 .* zeros.bin$"' _ "$M" "$GIB10"
ok "cat of a range in the middle is zeros" \
	bash -c 'cmp <("$1" cat --offset 5G --length 4M v1:zeros.bin) <(head -c 4M /dev/zero)' \
	_ "$M"
ok "cat of the island reads the data back" \
	bash -c '[ "$("$1" cat --offset 500000000 --length 17 v1:island.bin)" = "an island of data" ]' \
	_ "$M"
export_sparse() {
	measure export "$M" export v1 "$T/exp" || return 1
	read -r s r <"$T/export.time"
	echo "# export of 10 GB + 1 GB sparse: ${s}s"
	[ "$(stat -c %s "$T/exp/zeros.bin")" -eq "$GIB10" ] &&
		[ "$(du -k "$T/exp/zeros.bin" | cut -f1)" -lt 1024 ] &&
		cmp <(tail -c +500000001 "$T/exp/island.bin" | head -c 17) \
			<(printf 'an island of data')
}
ok "export writes the files back sparse with the same bytes" export_sparse
grep '^#' "$T/out"

# kill -9 during a large import (one reader, so it takes a few seconds).
D="$T/bigsrc"
mkdir -p "$D/big"
for i in $(seq -w 1 64); do
	head -c 16M /dev/urandom >"$D/big/f$i.bin"
done
"$M" import -j 1 "$D" >/dev/null 2>"$T/killed.err" &
IMPORT_PID=$!
# Kill once it has read 420 MiB of the 1 GiB: past its first batch of
# files (256 MiB), far from the end.
for _ in $(seq 600); do
	r=$(awk '/^rchar:/ {print $2}' "/proc/$IMPORT_PID/io" 2>/dev/null)
	[ "${r:-0}" -gt $((420 << 20)) ] && break
	sleep 0.05
done
killed_midway() {
	kill -9 "$IMPORT_PID" && wait "$IMPORT_PID"
	local st=$?
	IMPORT_PID=
	echo "import exit status $st $(cat "$T/killed.err")"
	[ "$st" -eq 137 ]
}
ok "import killed with -9 while running" killed_midway
ok "fsck is clean after the kill" "$M" fsck
whole_files() {
	local f k=0
	"$M" snapshot --allow-empty -m after-kill >/dev/null || return 1
	for f in $("$M" ls v2:big 2>/dev/null); do
		cmp "$D/big/$f" <("$M" cat "v2:big/$f") || return 1
		k=$((k + 1))
	done
	echo "# $k of 64 files were in place after the kill, all whole"
	[ "$k" -gt 0 ] && [ "$k" -lt 64 ]
}
ok "after the kill some files are in place, all of them whole" \
	whole_files
grep '^#' "$T/out"
ok "re-import after the kill succeeds" measure reimport "$M" import "$D"
read -r SECS RSS <"$T/reimport.time"
echo "# re-import of 1 GiB: ${SECS}s, peak RSS ${RSS} MiB"
all_there() {
	"$M" snapshot -m complete >/dev/null &&
		[ "$("$M" ls v3:big | wc -l)" -eq 64 ] &&
		"$M" export v3 "$T/exp3" && diff -r "$D/big" "$T/exp3/big"
}
ok "every file is in the next version, byte for byte" all_there
ok "fsck is clean at the end" "$M" fsck

finish
