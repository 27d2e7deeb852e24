#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016,SC2119 # bash -c gets "$1"; A && B || bail
# t_enospc.sh: a full disk. The repository lives on a small tmpfs with a
# free-space reserve; an import bigger than the disk, and a write through
# the mount bigger than the disk, fail with "no space" (mavctl exit 7,
# ENOSPC for the writer) before RocksDB can hit the wall, and leave the
# repository consistent (fsck clean) and usable (what was snapshotted
# still reads back; reset and gc give the space back on the full disk;
# the daemon keeps serving).
# Needs root (tmpfs mount), as CI runs. TAP output; exits 1 on failure.
. "$(dirname "$0")/lib_mount.sh"

if [ "$(id -u)" != 0 ]; then
	echo "Bail out! t_enospc needs root to mount a tmpfs"
	exit 1
fi
SMALL=$(mktemp -d /tmp/mav-enospc.XXXXXX)
at_exit 'umount -l "$SMALL" 2>/dev/null; rmdir "$SMALL" 2>/dev/null'
mount -t tmpfs -o size=128m tmpfs "$SMALL" || {
	echo "Bail out! cannot mount a tmpfs"
	exit 1
}
export MAV_REPO="$SMALL/repo"
S="$T/src"
mkdir -p "$S/big" "$S/keep"
head -c 300000 /dev/urandom >"$S/keep/a.bin"
for i in $(seq 8); do head -c 20000000 /dev/urandom >"$S/big/f$i.bin"; done
# Many files smaller than the write-behind and seal thresholds: without a
# check at write time, all of them are accepted into memory.
mkdir -p "$T/small"
for i in $(seq -w 150); do head -c 1000000 /dev/urandom >"$T/small/s$i.bin"; done

echo "1..17"

ok "init with a 24 MiB reserve on a 128 MiB disk" "$M" init --reserve 24M
setup_v1() {
	"$M" import "$T/src/keep" >/dev/null && "$M" snapshot -m keep >/dev/null
}
ok "a small import and snapshot fit" setup_v1
import_full() {
	"$M" import "$S" >"$T/imp.out" 2>"$T/imp.err"
	local rc=$?
	cat "$T/imp.err"
	[ $rc -eq 7 ] && grep -qi "no space" "$T/imp.err"
}
ok "an import bigger than the disk exits 7 saying no space" import_full
ok "fsck is clean after the failed import" "$M" fsck
ok "v1 still reads back" \
	bash -c '"$1" cat v1:a.bin | cmp - "$2"' _ "$M" "$S/keep/a.bin"
# The failed import kept what it had imported whole and left the disk near
# its reserve. Going back to v1 and collecting garbage gives the space
# back, although there is no room for a copy of the chunks' table files:
# gc compacts the ranges it emptied one at a time.
free_kib() { df -k --output=avail "$SMALL" | tail -n 1; }
# frees_space CMD...: CMD succeeds and leaves 40 MB more free on the disk.
frees_space() {
	local before after
	before=$(free_kib)
	"$@" || return 1
	after=$(free_kib)
	echo "# free: $before KiB before, $after KiB after"
	[ "$after" -gt $((before + 40000)) ]
}
reset_gc() { "$M" reset v1 >/dev/null && "$M" gc >/dev/null; }
ok "reset to v1 and gc give the failed import's space back" \
	frees_space reset_gc
ok "fsck is clean after the gc" "$M" fsck
ok "v1 still reads back after the gc" \
	bash -c '"$1" cat v1:a.bin | cmp - "$2"' _ "$M" "$S/keep/a.bin"
ok "mount" mount_fg
# cp of 150 MB of small files onto what is left of the disk: the writes
# that do not fit fail with ENOSPC once the disk is down to its reserve,
# and every file cp did not complain about reads back whole, from the
# mount now and after a restart.
copy_small_full() {
	cp -r "$T/small" "$MNT/main/small" 2>"$T/cp.err"
	local rc=$? f left
	head -n 3 "$T/cp.err"
	[ $rc -ne 0 ] && grep -q "No space left" "$T/cp.err" || return 1
	: >"$T/copied"
	for f in "$T"/small/*; do
		f=${f##*/}
		grep -q "$f" "$T/cp.err" && continue
		[ -e "$MNT/main/small/$f" ] || continue
		cmp "$T/small/$f" "$MNT/main/small/$f" || {
			tail -n 20 "$T/daemon.log"
			return 1
		}
		echo "$f" >>"$T/copied"
	done
	left=$(free_kib)
	echo "# $(wc -l <"$T/copied") files copied whole; $left KiB left free"
	# Full means full: the copy used the disk down to about its reserve
	# (24 MiB), not to half (writes held in memory counted twice).
	[ -s "$T/copied" ] && [ "$left" -lt $((48 * 1024)) ]
}
ok "cp -r of many small files past the disk fails with ENOSPC" copy_small_full
copied_survive() {
	local f
	umount_fg && mount_fg || return 1
	while read -r f; do
		cmp "$T/small/$f" "$MNT/main/small/$f" || return 1
	done <"$T/copied"
}
ok "every file cp completed reads back after a remount" copied_survive
write_full() {
	dd if=/dev/urandom of="$MNT/main/huge" bs=1M count=200 conv=fsync \
		status=none 2>"$T/dd.err"
	local rc=$?
	cat "$T/dd.err"
	[ $rc -ne 0 ] && grep -q "No space left" "$T/dd.err"
}
ok "a write through the mount past the disk fails with ENOSPC" write_full
ok "the mount still serves v1" cmp "$MNT/@v1/a.bin" "$S/keep/a.bin"
after_umount() {
	umount_fg && "$M" fsck
}
ok "unmount, then fsck is clean" after_umount
# The way out of a full disk: delete what filled it, and gc gives its
# space back (nothing of it was snapshotted).
rm_gc() {
	mount_fg && rm -rf "$MNT/main/small" "$MNT/main/huge" && umount_fg &&
		"$M" gc >/dev/null
}
ok "deleting the copies and gc give the space back" frees_space rm_gc
ok "fsck is clean at the end" "$M" fsck

# RocksDB compacts on its own only with room to spare beyond the reserve
# (reserve + 128 MiB; again from reserve + 160 MiB): a running daemon
# switches that off as the disk fills and on as space comes back, seen in
# the options file RocksDB writes at each change. On a 384 MiB disk, so
# that there is such room.
BIG=$(mktemp -d /tmp/mav-enospc.XXXXXX)
at_exit 'umount -l "$BIG" 2>/dev/null; rmdir "$BIG" 2>/dev/null'
mount -t tmpfs -o size=384m tmpfs "$BIG" || {
	echo "Bail out! cannot mount a second tmpfs"
	exit 1
}
# auto_compactions on|off: every family of the newest options file says so.
auto_compactions() {
	local f want=false
	[ "$1" = off ] && want=true
	f=$(find "$BIG/repo/db" -name 'OPTIONS-*' | sort -V | tail -n 1)
	[ "$(grep -c "disable_auto_compactions=$want" "$f")" = 6 ] || {
		echo "$f: $(grep disable_auto_compactions "$f" | sort | uniq -c)"
		return 1
	}
}
# write_one NAME: a write through the mount, past the 50 ms for which the
# store trusts its last look at the free space.
write_one() {
	sleep 0.1
	dd if=/dev/urandom of="$MNT/main/$1" bs=64k count=1 conv=fsync \
		status=none
}
room_gone_and_back() {
	"$M" -R "$BIG/repo" init --reserve 24M >/dev/null &&
		mount_fg "$BIG/repo" || return 1
	write_one a && auto_compactions on &&
		fallocate -l 250M "$BIG/ballast" && write_one b &&
		auto_compactions off &&
		rm "$BIG/ballast" && write_one c && auto_compactions on
	local rc=$?
	umount_fg || return 1
	return $rc
}
ok "compactions stop near the reserve and start again with room" \
	room_gone_and_back
finish
