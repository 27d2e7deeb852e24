#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016,SC2119 # bash -c gets "$1"; A && B || bail
# t_cli_corrupt.sh: a damaged chunk (one byte of its stored frame flipped,
# so the frame's XXH3 checksum must catch it) is reported by fsck (exit 6,
# naming the chunk) and by the read that meets it: cat exits 6 naming the
# chunk, having printed only the bytes before it; export exits 6 naming it,
# every file it wrote is whole and nothing of the damaged one is left. Every
# other file still reads, and gc deletes nothing that is referenced. A
# damaged object (a file's chunk list) is named by cat and fsck alike. TAP
# output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
mkdir -p "$S/sub"
head -c 2000000 /dev/urandom >"$S/victim.bin"
head -c 500000 /dev/urandom >"$S/sub/other.bin"
head -c 100000 /dev/urandom >"$S/third.bin"
"$M" init >/dev/null && "$M" import "$S" >/dev/null &&
	"$M" snapshot -m one >/dev/null || {
	echo "Bail out! could not build the repository"
	exit 1
}

echo "1..9"

ok "fsck is clean before the damage" "$M" fsck
ID=$("$MAV_BIN/mav-corrupt" "$MAV_REPO" v1:victim.bin 3)
ok "one chunk of victim.bin damaged" test -n "$ID"
fsck_names_it() {
	"$M" fsck >"$T/fsck.out" 2>&1
	[ $? -eq 6 ] && grep -q "$ID" "$T/fsck.out"
}
ok "fsck exits 6 and names the chunk" fsck_names_it
cat_fails() {
	"$M" cat v1:victim.bin >"$T/cat.out" 2>"$T/cat.err"
	local rc=$?
	cat "$T/cat.err"
	local got
	got=$(stat -c %s "$T/cat.out")
	[ $rc -eq 6 ] && grep -q "$ID" "$T/cat.err" &&
		[ "$(wc -l <"$T/cat.err")" = 1 ] &&
		[ "$got" -lt "$(stat -c %s "$S/victim.bin")" ] &&
		cmp -s "$T/cat.out" <(head -c "$got" "$S/victim.bin")
}
ok "cat of the damaged file exits 6 naming the chunk, no wrong byte out" \
	cat_fails
export_fails() {
	"$M" export v1 "$T/exp" 2>"$T/exp.err"
	local rc=$?
	cat "$T/exp.err"
	[ $rc -eq 6 ] && grep -q "$ID" "$T/exp.err" &&
		! [ -e "$T/exp/victim.bin" ] &&
		cmp "$T/exp/sub/other.bin" "$S/sub/other.bin"
}
ok "export exits 6 naming it; what it wrote is whole, the damaged file gone" \
	export_fails
ok "the undamaged file reads byte for byte" \
	bash -c '"$1" cat v1:sub/other.bin | cmp - "$2"' _ "$M" "$S/sub/other.bin"
gc_keeps() {
	"$M" gc >/dev/null && "$M" cat v1:sub/other.bin | cmp - "$S/sub/other.bin"
}
ok "gc keeps every referenced chunk" gc_keeps
ok "fsck still names it after gc" fsck_names_it
# A damaged object, not a chunk: the blob (chunk list) of third.bin.
OBJ=$("$MAV_BIN/mav-corrupt" "$MAV_REPO" v1:third.bin object)
object_named() {
	"$M" cat v1:third.bin >"$T/cat.out" 2>"$T/cat.err"
	local rc=$?
	cat "$T/cat.err"
	[ $rc -eq 6 ] && [ -n "$OBJ" ] && grep -q "object $OBJ does not match its id" "$T/cat.err" &&
		[ ! -s "$T/cat.out" ] &&
		"$M" ls v1 | grep -qx third.bin &&
		{ "$M" fsck >"$T/fsck.out" 2>&1; [ $? -eq 6 ]; } && grep -q "$OBJ" "$T/fsck.out"
}
ok "a damaged blob object: cat exits 6 naming it, ls still lists, fsck names it" object_named
finish
