#!/usr/bin/env bash
# shellcheck disable=SC2016 # sh -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_users.sh: several users share one mount (allow_other): what a
# user creates belongs to that user and group, or to a setgid directory's
# group (and a new directory keeps the setgid bit); the caller's umask
# shapes new modes; the kernel enforces permissions (default_permissions):
# no reading, creating, listing or traversing without the mode bits, no
# chmod or chown of someone else's file, no unlinking or renaming another
# user's file in a sticky directory. Owners and modes survive a remount
# and reach a snapshot, where the same permissions hold.
# Runs as root; the users are A (nobody, 65534:65534) and B (65533:65533),
# neither with supplementary groups.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

# mktemp made $T 0700: the other users must reach the mount below it.
chmod 755 "$T"
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi
W="$MNT/main"

# as_a/as_b CMD...: CMD as user A or B, from / (where any user may stand).
as_a() { (cd / && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"); }
as_b() { (cd / && exec setpriv --reuid=65533 --regid=65533 --clear-groups "$@"); }
# owner_mode PATH WANT: "uid:gid octal-mode" of PATH (seen by root) is WANT.
owner_mode() {
	local got
	got=$(stat -c '%u:%g %a' "$1") || return 1
	[ "$got" = "$2" ] || {
		echo "$1 is '$got', expected '$2'"
		return 1
	}
}
# listing DIR: every name below DIR with its type, mode, owner and group.
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %U %G\n' | sort); }
mount_shared() {
	mount_fg "$MAV_REPO" "$MNT" -o allow_other,default_permissions
}

echo "1..36"

# default_permissions is always on; naming it checks that it is accepted.
ok "mount with allow_other,default_permissions" mount_shared
# pub: world-writable and sticky, like /tmp. sg: setgid, group users
# (100), which neither A nor B is in. ro: others may only look. priv:
# only root may look in. secret: only root may read.
setup() {
	mkdir "$W/pub" "$W/sg" "$W/ro" "$W/priv" &&
		chmod 1777 "$W/pub" && chown 0:100 "$W/sg" &&
		chmod 2777 "$W/sg" && chmod 0755 "$W/ro" &&
		printf 'inside\n' >"$W/priv/x" && chmod 0644 "$W/priv/x" &&
		chmod 0700 "$W/priv" &&
		printf 'root only\n' >"$W/secret" && chmod 0600 "$W/secret" &&
		owner_mode "$W/pub" "0:0 1777" && owner_mode "$W/sg" "0:100 2777"
}
ok "root sets up shared, setgid and private directories" setup
look() { [ "$(as_a ls "$W")" = "$(printf 'priv\npub\nro\nsecret\nsg')" ]; }
ok "A can look into the mount (allow_other)" look

# The owner comes from the caller (the FUSE request's uid and gid), not
# from the daemon, which runs as root.
make_a() {
	as_a sh -c 'umask 022 && printf "by A\n" >"$1/a-file" &&
		mkdir "$1/a-dir"' _ "$W/pub" &&
		owner_mode "$W/pub/a-file" "65534:65534 644" &&
		owner_mode "$W/pub/a-dir" "65534:65534 755"
}
ok "a file and a directory made by A belong to 65534:65534" make_a
make_b() {
	as_b sh -c 'umask 022 && printf "by B\n" >"$1/b-file"' _ "$W/pub" &&
		owner_mode "$W/pub/b-file" "65533:65533 644"
}
ok "a file made by B belongs to 65533:65533" make_b

# 0666 and 0777 asked for, the caller's umask taken off (by the kernel or
# by the daemon, whichever: the result is what counts).
umask_modes() { # umask_modes UMASK FILE_MODE DIR_MODE
	as_a sh -c 'umask "$1" && : >"$2/f-$1" && mkdir "$2/d-$1"' _ "$1" "$W/pub" &&
		owner_mode "$W/pub/f-$1" "65534:65534 $2" &&
		owner_mode "$W/pub/d-$1" "65534:65534 $3"
}
ok "umask 077: a 0600 file and a 0700 directory" umask_modes 077 600 700
ok "umask 002: a 0664 file and a 0775 directory" umask_modes 002 664 775

# A setgid directory passes its group down, and to a subdirectory its
# setgid bit too; a file gets no setgid bit.
sg_make() {
	as_a sh -c 'umask 022 && : >"$1/f" && mkdir "$1/d" && : >"$1/d/g"' _ "$W/sg"
}
ok "A makes a file, a subdirectory and a file in that in the setgid dir" sg_make
ok "setgid dir: the file gets the directory's group 100" \
	owner_mode "$W/sg/f" "65534:100 644"
ok "setgid dir: the subdirectory gets group 100 and keeps setgid" \
	owner_mode "$W/sg/d" "65534:100 2755"
ok "setgid dir: which passes both on one level down" \
	owner_mode "$W/sg/d/g" "65534:100 644"

# Enforcement: each refusal must say its errno's message and leave things
# as they were. A first stats what it is refused, so that only the mode
# bits can be what says no (a mount A could not enter would say EACCES
# too).
no_read() { # no_read FILE: A sees FILE but may not read it
	as_a stat "$1" >/dev/null && fails_with "Permission denied" as_a cat "$1"
}
ok "A cannot read root's 0600 file (EACCES)" no_read "$W/secret"
no_create() {
	as_a ls "$W/ro" >/dev/null &&
		fails_with "Permission denied" as_a touch "$W/ro/x" &&
		! [ -e "$W/ro/x" ]
}
ok "A cannot create in root's 0755 directory (EACCES)" no_create
no_list() {
	as_a stat "$W/priv" >/dev/null &&
		fails_with "Permission denied" as_a ls "$W/priv"
}
ok "A cannot list root's 0700 directory (EACCES)" no_list
ok "A cannot traverse root's 0700 directory (EACCES)" \
	fails_with "Permission denied" as_a cat "$W/priv/x"
no_chmod() {
	fails_with "Operation not permitted" as_a chmod 0666 "$W/secret" &&
		owner_mode "$W/secret" "0:0 600"
}
ok "A cannot chmod root's file (EPERM), its mode stays" no_chmod
no_chown() {
	fails_with "Operation not permitted" as_a chown 65534:65534 "$W/secret" &&
		owner_mode "$W/secret" "0:0 600"
}
ok "A cannot chown root's file (EPERM), its owner stays" no_chown
no_chgrp() {
	fails_with "Operation not permitted" as_a chgrp 100 "$W/pub/a-file" &&
		owner_mode "$W/pub/a-file" "65534:65534 644"
}
ok "A cannot give its file to a group it is not in (EPERM)" no_chgrp
own_chmod() {
	as_a chmod 0640 "$W/pub/a-file" &&
		owner_mode "$W/pub/a-file" "65534:65534 640"
}
ok "A can chmod its own file" own_chmod

# set_acl USER FILE MODE: USER (a, b or root) sets FILE's minimal access
# ACL (owner, group, other: what cp -a sets) to stand for MODE.
set_acl() {
	local run=as_$1
	[ "$1" = root ] && run=
	$run /usr/bin/python3 -c '
import os, struct, sys
m = int(sys.argv[2], 8)
v = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, m >> shift & 7, 0xffffffff)
                                    for tag, shift in ((1, 6), (4, 3), (0x20, 0)))
os.setxattr(sys.argv[1], "system.posix_acl_access", v)' "$2" "$3"
}
# As on ext4, a caller outside a file's group loses its setgid bit when it
# sets the mode, by chmod or by ACL; root keeps it.
acl_sgid() {
	local f=$W/sg/acl-file
	as_a touch "$f" && owner_mode "$f" "65534:100 644" &&
		chmod 2755 "$f" && set_acl a "$f" 0750 &&
		owner_mode "$f" "65534:100 750" &&
		chmod 2755 "$f" && as_a chmod 2750 "$f" &&
		owner_mode "$f" "65534:100 750" &&
		chmod 2755 "$f" && set_acl root "$f" 0750 &&
		owner_mode "$f" "65534:100 2750" &&
		fails_with "Operation not permitted" set_acl b "$f" 0777 &&
		owner_mode "$f" "65534:100 2750"
}
ok "an ACL set by a caller outside the group drops setgid; root's keeps it" acl_sgid

# Sticky bit: in pub (1777) B may write the directory but not take away
# A's names, even once A has made the file writable by everyone.
all_write() {
	as_a chmod 0666 "$W/pub/a-file" &&
		owner_mode "$W/pub/a-file" "65534:65534 666"
}
ok "A makes its file writable by everyone" all_write
b_unlink() {
	fails_with "Operation not permitted" as_b rm -f "$W/pub/a-file" &&
		[ -e "$W/pub/a-file" ]
}
ok "sticky dir: B cannot unlink A's file (EPERM)" b_unlink
b_rename() {
	fails_with "Operation not permitted" \
		as_b mv "$W/pub/a-file" "$W/pub/b-took-it" &&
		[ -e "$W/pub/a-file" ] && ! [ -e "$W/pub/b-took-it" ]
}
ok "sticky dir: B cannot rename A's file (EPERM)" b_rename
a_remove() {
	as_a mv "$W/pub/a-file" "$W/pub/a-moved" && as_a rm "$W/pub/a-moved" &&
		! [ -e "$W/pub/a-file" ] && ! [ -e "$W/pub/a-moved" ]
}
ok "sticky dir: A can rename and unlink its own file" a_remove

# root hands a file over: A may not write it before, may after.
give() {
	printf 'from root\n' >"$W/given" && chmod 0644 "$W/given" &&
		fails_with "Permission denied" as_a sh -c 'echo x >>"$1"' _ "$W/given" &&
		chown 65534:65534 "$W/given" &&
		owner_mode "$W/given" "65534:65534 644" &&
		as_a sh -c 'printf "by A\n" >>"$1"' _ "$W/given" &&
		[ "$(cat "$W/given")" = "$(printf 'from root\nby A')" ]
}
ok "root chowns a file to 65534:65534, and then A can write it" give

listing "$W" >"$T/before"
# Comparing whole listings shows only that nothing changed; the spot
# checks pin the exact values made above.
spot() { # spot DIR: the owners and modes made above, in DIR
	owner_mode "$1/secret" "0:0 600" &&
		owner_mode "$1/pub" "0:0 1777" &&
		owner_mode "$1/pub/b-file" "65533:65533 644" &&
		owner_mode "$1/pub/f-077" "65534:65534 600" &&
		owner_mode "$1/pub/d-002" "65534:65534 775" &&
		owner_mode "$1/sg" "0:100 2777" &&
		owner_mode "$1/sg/d" "65534:100 2755" &&
		owner_mode "$1/given" "65534:65534 644"
}
same_as_before() { diff "$T/before" <(listing "$1"); }
ok "unmount" umount_fg
ok "remount" mount_shared
ok "after a remount: every name's owner, group and mode kept" \
	same_as_before "$W"
ok "after a remount: spot checks of owners and modes" spot "$W"
ok "after a remount: A still cannot read root's 0600 file" no_read "$W/secret"

# A snapshot keeps owners and modes, and the kernel checks them in the
# read-only view too.
snap() { "$M" snapshot -m x >"$T/snap"; } # "v1 <commit id>"
ok "snapshot" snap
V="$MNT/@$(awk '{ print $1 }' "$T/snap")"
ok "the snapshot holds the same owners, groups and modes" same_as_before "$V"
ok "the snapshot: spot checks of owners and modes" spot "$V"
ok "the snapshot: A cannot read root's 0600 file" no_read "$V/secret"
a_reads() { [ "$(as_a cat "$V/given")" = "$(printf 'from root\nby A')" ]; }
ok "the snapshot: A reads the file it was given" a_reads
ok "unmount" umount_fg

finish
