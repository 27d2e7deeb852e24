#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_mount.sh: mavctl beside a running daemon. mount/umount, finding the
# repository and the branch from inside the mount (no -R, no MAV_REPO),
# state changes over the socket (snapshot, status, branch, tag, reset, fsck,
# gc), reads through a secondary (log, ls, cat, diff, du, export), and import
# through MOUNTPOINT/BRANCH, --delete included. Always unmounts.
# TAP output; exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
MNT="$T/mnt"
# is_mount DIR: a mavfs mount at DIR (mountinfo: "... DIR opts - type src").
is_mount() { grep -q " $1 .* - fuse.mavfs " /proc/self/mountinfo; }
export -f is_mount
at_exit 'cd / && { ! is_mount "$MNT" || fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; }'
unset MAV_REPO
export MAV_AUTHOR=mounted

mounted() { grep -q " $MNT [^ ]* - fuse.mavfs $T/repo " /proc/self/mountinfo; }
# What must match: names, types, modes, mtimes; sizes, link counts and
# targets of non-directories (a directory's size and link count are the
# filesystem's business); then contents (diff -r) and user xattrs.
listing() {
	(cd "$1" && {
		find . -mindepth 1 -type d -printf '%P|%y|%m|%T@\n'
		find . -mindepth 1 ! -type d -printf '%P|%y|%m|%T@|%s|%n|%l\n'
	} | sort)
}
# user.* xattrs but the computed user.mav.id of read-only views.
xattrs() {
	python3 -c '
import os, sys
for top, dirs, files in sorted(os.walk(sys.argv[1])):
    for name in sorted(dirs + files):
        p = os.path.join(top, name)
        if os.path.islink(p):
            continue
        for k in sorted(os.listxattr(p)):
            if k.startswith("user.") and k != "user.mav.id":
                print(os.path.relpath(p, sys.argv[1]), k, os.getxattr(p, k))
' "$1"
}
same_tree() {
	diff <(listing "$1") <(listing "$2") && diff -r --no-dereference "$1" "$2" &&
		diff <(xattrs "$1") <(xattrs "$2")
}
export -f listing xattrs same_tree

S="$T/src"
mkdir -p "$S/d/e" "$MNT"
echo alpha >"$S/a.txt"
head -c 3000000 /dev/urandom >"$S/d/big.bin"
ln "$S/a.txt" "$S/d/a-hardlink"
ln -s ../a.txt "$S/d/sym"
ln -s loop "$S/loop"
: >"$S/d/e/empty"
setfattr -n user.license -v MIT "$S/a.txt"
chmod 0640 "$S/d/big.bin"
touch -d '2010-01-01 00:00:00.25' "$S/d/e"

"$M" -R "$T/repo" init >/dev/null || exit 1

echo "1..23"

ok "mount runs mavfs and the mount appears" \
	bash -c '"$1" -R "$2/repo" mount "$3" && is_mount "$3"' \
	_ "$M" "$T" "$MNT"
mounted || { echo "Bail out! no mount"; exit 1; }
cd "$MNT/main" || exit 1
ok "inside the mount: status finds the repository and branch" "$M" status
ok "import goes through the mount" "$M" import "$S"
ok "the files are in the branch directory" same_tree "$S" "$MNT/main"
ok "status (over the socket) lists them" \
	bash -c '"$1" status | grep -qx "A d/big.bin"' _ "$M"
ok "snapshot over the socket prints v1" \
	bash -c '"$1" snapshot -m "via mount" | grep -Eq "^v1 [0-9a-f]{64}$"' _ "$M"
ok "log and ls read beside the daemon" \
	bash -c '"$1" log | grep -q "^v1 .* mounted .*via mount$" && "$1" ls -R v1 | grep -qx "d/e/empty"' \
	_ "$M"
ok "cat reads beside the daemon" cmp "$S/d/big.bin" <("$M" cat v1:d/big.bin)
ok "export of v1 equals the source" \
	bash -c '"$1" export v1 "$2/exp" && same_tree "$3" "$2/exp"' _ "$M" "$T" "$S"
ok "the snapshot is visible as @v1" same_tree "$S" "$MNT/@v1"
ok "du and fsck (over the socket) work" \
	bash -c '"$1" du | grep -q "^logical" && "$1" fsck' _ "$M"

ok "branch dev (over the socket) appears in the mount" \
	bash -c '"$1" branch dev v1 && [ -d "$2/dev" ] && "$1" branch | grep -q "^  dev "' \
	_ "$M" "$MNT"
in_dev() {
	cd "$MNT/dev" || return 1
	echo "dev file" >"$T/devfile.txt"
	mkdir -p "$T/devsrc" && cp "$T/devfile.txt" "$T/devsrc/" &&
		"$M" import "$T/devsrc" >/dev/null &&
		[ -f "$MNT/dev/devfile.txt" ] && [ ! -e "$MNT/main/devfile.txt" ] &&
		"$M" status | grep -qx "A devfile.txt" &&
		"$M" snapshot -m "on dev" | grep -q "^v2 " &&
		"$M" log | grep -q "^v2 .* dev .*on dev$"
}
ok "inside MOUNT/dev the default branch is dev" in_dev
cd "$MNT/main" || exit 1
ok "tag (over the socket) shows as @NAME" \
	bash -c '"$1" tag keep v2 && [ -f "$2/@keep/devfile.txt" ] && "$1" tag -d keep && [ ! -e "$2/@keep" ]' \
	_ "$M" "$MNT"
ok "inside a read-only view the branch defaults to main" \
	bash -c 'cd "$2/@v1" && "$1" status >/dev/null && "$1" log | grep -q "^v1 "' \
	_ "$M" "$MNT"
mirror() {
	rm -rf "$S/d/e" "$S/loop"
	echo beta >"$S/b.txt"
	"$M" import --delete "$S" >/dev/null && same_tree "$S" "$MNT/main" &&
		"$M" snapshot -m mirror >/dev/null &&
		"$M" diff --stat v1 v3 | grep -q " 1 added, 2 removed, 0 modified"
}
ok "import --delete through the mount mirrors the source" mirror
# Through the mount, import makes named pipes and sockets' names too.
special_mounted() {
	mkdir "$T/spsrc" && mkfifo -m 640 "$T/spsrc/p" &&
		python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/spsrc/s" &&
		"$M" import "$T/spsrc" >/dev/null && [ -p "$MNT/main/p" ] &&
		[ -S "$MNT/main/s" ] && [ "$(stat -c %a "$MNT/main/p")" = 640 ] &&
		"$M" import "$T/spsrc" >/dev/null && rm "$MNT/main/p" "$MNT/main/s"
}
ok "import through the mount makes named pipes and sockets" special_mounted
reset_main() {
	echo scratch >"$MNT/main/scratch.txt" &&
		"$M" status | grep -qx "A scratch.txt" &&
		"$M" reset v1 && [ -z "$("$M" status)" ] &&
		[ ! -e "$MNT/main/scratch.txt" ] && [ -e "$MNT/main/d/e/empty" ]
}
ok "reset (over the socket) drops changes in the mounted tree" reset_main
ok "gc (over the socket) reports what it freed" \
	bash -c '"$1" gc | grep -Eq "^freed .* [0-9]+ chunks, [0-9]+ objects$"' _ "$M"
ok "a second init or a locked local write is refused cleanly" \
	bash -c '"$1" -R "$2/repo" init; [ $? -eq 8 ]' _ "$M" "$T"

cd "$T" || exit 1
ok "umount releases the mount" \
	bash -c '"$1" umount "$2" && ! is_mount "$2"' \
	_ "$M" "$MNT"
ok "after umount mavctl opens the store itself" \
	bash -c '"$1" -R "$2/repo" log --all | grep -c "^v" | grep -qx 3 && "$1" -R "$2/repo" fsck' \
	_ "$M" "$T"
ok "umount of something not mounted fails with one line (exit 1)" \
	bash -c '"$1" umount "$2" 2>"$3/err"; [ $? -eq 1 ] && [ "$(wc -l <"$3/err")" -eq 1 ]' \
	_ "$M" "$MNT" "$T"

finish
