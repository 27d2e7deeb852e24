#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_views.sh: a real mount of a repository with two versions, a tag
# and a branch: every file of @v1 and @v2 equals its source tree byte for
# byte with its metadata (mode, owner, size, mtime, nlink, symlink target,
# user.* xattrs, hard links); @tag, @branch and @<commit prefix> resolve;
# the root lists exactly the refs; every write-like call on a read-only
# view or the root fails with EROFS and changes nothing; xattr size/ERANGE
# semantics and the computed user.mav.id; statfs; /proc/mounts.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S1="$T/src1"
S2="$T/src2"
python3 "$GEN" generate "$S1" --seed 1 --size 20M >/dev/null
add_awkward "$S1"
# A directory bigger than one readdir reply.
python3 "$GEN" manyfiles "$S1/many" --files 2500 --seed 3 --per-dir 2500 \
	>/dev/null
cp -a "$S1" "$S2"
python3 "$GEN" mutate "$S2" --seed 2 >/dev/null
printf 'new in v2\n' >"$S2/odd/new.txt"
rm "$S2/odd/empty"

if ! { "$M" init >/dev/null &&
	"$M" import "$S1" >/dev/null &&
	"$M" snapshot -m one >"$T/v1" &&
	"$M" import --delete "$S2" >/dev/null &&
	"$M" snapshot -m two >"$T/v2" &&
	"$M" tag first v1 >/dev/null &&
	"$M" branch side v1 >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi
C1=$(awk '{print $2}' "$T/v1")

echo "1..46"

ok "mount" mount_fg
ok "/proc/mounts shows REPO MOUNTPOINT fuse.mavfs, noatime" \
	grep -q "^$MAV_REPO $MNT fuse.mavfs [^ ]*noatime" /proc/mounts
ok "the root lists branches, versions, tags and branch snapshots" \
	bash -c '[ "$(ls -A "$1" | tr "\n" " ")" = "@first @main @side @v1 @v2 main side " ]' \
	_ "$MNT"
ok "@v1 equals the first source tree" treecmp "$S1" "$MNT/@v1"
ok "@v2 equals the second source tree" treecmp "$S2" "$MNT/@v2"
ok "the working tree of main equals v2" treecmp "$S2" "$MNT/main"
ok "@main is v2" treecmp "$S2" "$MNT/@main"
ok "@first (a tag) is v1" treecmp "$S1" "$MNT/@first"
ok "@side (a branch's snapshot) is v1, side/ its working tree" \
	bash -c 'python3 "$1" "$2" "$3/@side" && python3 "$1" "$2" "$3/side"' \
	_ "$TREECMP" "$S1" "$MNT"
ok "@<commit prefix> resolves and is not listed" \
	bash -c 'python3 "$1" "$2" "$3/@${4:0:10}" && ! ls "$3" | grep -q "${4:0:10}"' \
	_ "$TREECMP" "$S1" "$MNT" "$C1"
ok "unknown names are absent" \
	bash -c '! stat "$1/@v9" && ! stat "$1/@nope" && ! stat "$1/.hidden" && ! stat "$1/nobranch" && ! stat "$1/@"' \
	_ "$MNT"
ok "a directory of 2500 entries lists completely (ls, find, python)" \
	bash -c '[ "$(ls "$1/@v1/many/d000" | wc -l)" = 2500 ] &&
		[ "$(find "$1/@v1/many" -type f | wc -l)" = 2500 ] &&
		[ "$(python3 -c "import os,sys; print(len(os.listdir(sys.argv[1])))" "$1/@v1/many/d000")" = 2500 ]' \
	_ "$MNT"
ok "ls -a shows . and .." \
	bash -c 'ls -a "$1/@v1/odd" | head -2 | tr "\n" " " | grep -qx ". .. "' _ "$MNT"

# Every write-like call on a read-only view, through the syscalls.
cat >"$T/erofs.py" <<'PYEOF'
import errno, os, sys
v = sys.argv[1]
f, d = v + "/odd/hello.txt", v + "/odd/deeper"
calls = {
    "mkdir": lambda: os.mkdir(v + "/newdir"),
    "create": lambda: os.open(v + "/newfile", os.O_CREAT | os.O_WRONLY, 0o644),
    "open O_TRUNC": lambda: os.open(f, os.O_WRONLY | os.O_TRUNC),
    "unlink": lambda: os.unlink(f),
    "rmdir": lambda: os.rmdir(v + "/odd/empty-dir"),
    "rename": lambda: os.rename(f, v + "/odd/renamed"),
    "rename dir": lambda: os.rename(d, v + "/odd/moved"),
    "link": lambda: os.link(f, v + "/odd/hl"),
    "symlink": lambda: os.symlink("x", v + "/odd/sl"),
    "mknod fifo": lambda: os.mkfifo(v + "/odd/fifo"),
    "chmod": lambda: os.chmod(f, 0o600),
    "chown": lambda: os.chown(f, 1, 1),
    "utime": lambda: os.utime(f, (1, 1)),
    "truncate": lambda: os.truncate(f, 0),
    "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
    "removexattr": lambda: os.removexattr(f, "user.license"),
    "setxattr dir": lambda: os.setxattr(d, "user.x", b"1"),
}
bad = 0
for name, call in calls.items():
    try:
        call()
        print("%s: succeeded" % name); bad += 1
    except OSError as e:
        if e.errno != errno.EROFS:
            print("%s: %s" % (name, e)); bad += 1
sys.exit(1 if bad else 0)
PYEOF
ok "every write-like call on @v1 fails with EROFS" python3 "$T/erofs.py" "$MNT/@v1"
ok "and on @first, @main and a prefix view" \
	bash -c 'for v in @first @main "@${3:0:8}"; do python3 "$1" "$2/$v" || exit 1; done' \
	_ "$T/erofs.py" "$MNT" "$C1"
# write(2) and a shared writable mmap into a read-only view: the kernel
# may take the bytes into its page cache (zero-message open: no open was
# refused), the daemon refuses them (EROFS by write, fsync, msync or
# close) and the snapshot's bytes come back.
cat >"$T/ro_write.py" <<'PYEOF'
import errno, mmap, os, sys, time
p = sys.argv[1] + "/odd/hello.txt"
def refused(steps):
    err = None
    for step in steps:
        try:
            step()
        except OSError as e:
            err = err or e.errno
    assert err == errno.EROFS, err
fd = os.open(p, os.O_WRONLY)
refused([lambda: os.write(fd, b"XXXX"), lambda: os.fsync(fd), lambda: os.close(fd)])
fd = os.open(p, os.O_RDWR)
m = mmap.mmap(fd, 6, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:4] = b"YYYY"
refused([m.flush, m.close, lambda: os.fsync(fd), lambda: os.close(fd)])
for _ in range(50):
    if open(p, "rb").read() == b"hello\n":
        sys.exit(0)
    time.sleep(0.1)
sys.exit("contents changed: %r" % open(p, "rb").read())
PYEOF
ok "write(2) and mmap into @v1 never reach the snapshot (EROFS)" \
	python3 "$T/ro_write.py" "$MNT/@v1"
ok "@v1 is still identical after the attempts" treecmp "$S1" "$MNT/@v1"
ok "the root refuses names and attributes (EROFS)" \
	python3 -c '
import errno, os, sys
r = sys.argv[1]
for call in (lambda: os.mkdir(r + "/x"), lambda: open(r + "/y", "w"),
             lambda: os.chmod(r, 0o700), lambda: os.rename(r + "/main", r + "/m2"),
             lambda: os.rmdir(r + "/@v1"), lambda: os.setxattr(r, "user.a", b"b")):
    try:
        call(); sys.exit("succeeded")
    except OSError as e:
        assert e.errno == errno.EROFS, e' "$MNT"

# xattrs: sizes, ERANGE, the computed content id.
ok "getxattr/listxattr: size queries, ERANGE, ENODATA" \
	python3 -c '
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
p = (sys.argv[1] + "/odd/hello.txt").encode()
n = libc.getxattr(p, b"user.license", None, 0)
assert n == len(b"CC-BY-4.0"), n
buf = ctypes.create_string_buffer(64)
assert libc.getxattr(p, b"user.license", buf, 3) == -1 and ctypes.get_errno() == errno.ERANGE
assert libc.getxattr(p, b"user.license", buf, 64) == n and buf.raw[:n] == b"CC-BY-4.0"
assert libc.getxattr(p, b"user.none", buf, 64) == -1 and ctypes.get_errno() == errno.ENODATA
ln = libc.listxattr(p, None, 0)
assert ln > 0
assert libc.listxattr(p, buf, 2) == -1 and ctypes.get_errno() == errno.ERANGE
names = os.listxattr(sys.argv[1] + "/odd/hello.txt")
assert "user.license" in names and "user.mav.id" in names, names' "$MNT/@v1"
ok "user.mav.id: 64 hex digits, same for unchanged content, differs for changed" \
	python3 -c '
import os, sys, re
m = sys.argv[1]
a = os.getxattr(m + "/@v1/odd/hello.txt", "user.mav.id").decode()
b = os.getxattr(m + "/@v2/odd/hello.txt", "user.mav.id").decode()
h = os.getxattr(m + "/@v1/odd/hello-hardlink", "user.mav.id").decode()
assert re.fullmatch("[0-9a-f]{64}", a), a
assert a == b == h, (a, b, h)
c1 = os.getxattr(m + "/@v1/captions.jsonl", "user.mav.id")
c2 = os.getxattr(m + "/@v2/captions.jsonl", "user.mav.id")
same = open(m + "/@v1/captions.jsonl", "rb").read() == open(m + "/@v2/captions.jsonl", "rb").read()
assert (c1 == c2) == same' "$MNT"
ok "system.posix_acl_access and security.* answer no data" \
	bash -c '! getfattr -n system.posix_acl_access "$1/@v1/odd/hello.txt" 2>&1 | grep -v "No such attribute" | grep -q . &&
		getfattr -n security.selinux "$1/@v1/odd/hello.txt" 2>&1 | grep -q "No such attribute"' \
	_ "$MNT"

ok "hard links share an inode and count links in a view" \
	bash -c '[ "$(stat -c %i "$1/@v1/odd/hello.txt")" = "$(stat -c %i "$1/@v1/odd/deeper/hello-hardlink-2")" ] &&
		[ "$(stat -c %h "$1/@v1/odd/hello.txt")" = 3 ]' _ "$MNT"
ok "views of one commit under two names are distinct directories" \
	bash -c '[ "$(stat -c %i "$1/@v1")" != "$(stat -c %i "$1/@first")" ]' _ "$MNT"
ok "symlinks read back (readlink through the cache twice)" \
	bash -c '[ "$(readlink "$1/@v1/odd/dangling")" = /nonexistent/target ] &&
		[ "$(readlink "$1/@v1/odd/dangling")" = /nonexistent/target ] &&
		[ "$(cat "$1/@v1/odd/deeper/rel-link")" = hello ]' _ "$MNT"
ok "reads at odd offsets and sizes match the source" \
	python3 -c '
import os, random, sys
src, mnt = sys.argv[1], sys.argv[2]
rnd = random.Random(5)
files = []
for top, _, names in os.walk(src):
    for nm in names:
        p = os.path.join(top, nm)
        if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) > 0:
            files.append(os.path.relpath(p, src))
for _ in range(400):
    rel = rnd.choice(files)
    size = os.path.getsize(os.path.join(src, rel))
    off = rnd.randrange(0, size + 10)
    ln = rnd.choice([1, 7, 4096, 65536, 131072 + 3, 1 << 20, 3 << 20])
    with open(os.path.join(src, rel), "rb") as a, open(os.path.join(mnt, rel), "rb") as b:
        assert os.pread(a.fileno(), ln, off) == os.pread(b.fileno(), ln, off), (rel, off, ln)' \
	"$S2" "$MNT/@v2"

ok "statfs: 4096-byte blocks, 255-byte names, the repository's filesystem" \
	bash -c 'read -r bs nm blocks <<<"$(stat -f -c "%S %l %b" "$1")" &&
		read -r rbs rblocks <<<"$(stat -f -c "%S %b" "$2")" &&
		[ "$bs" = 4096 ] && [ "$nm" = 255 ] &&
		[ "$blocks" = $((rblocks * rbs / 4096)) ]' _ "$MNT" "$MAV_REPO"
ok "df works on the mount" df "$MNT"
ok "the root is a directory owned by the mounting user" \
	bash -c '[ "$(stat -c "%F %u" "$1")" = "directory $(id -u)" ]' _ "$MNT"
ok "capabilities: zero-message open/opendir, readdirplus, ACL cache; no writeback by default" \
	bash -c 'l=$(grep "caps:" "$1/daemon.log" | tail -1)
		for c in no_open no_opendir readdirplus posix_acl async_read cache_symlinks; do
			echo "$l" | grep -qw "$c" || { echo "missing $c: $l"; exit 1; }; done
		for c in atomic_o_trunc readdirplus_auto writeback_cache; do
			echo "$l" | grep -qw "$c" && { echo "unwanted $c: $l"; exit 1; }; done; exit 0' _ "$T"
# Trees keep modes, not ACLs: a minimal ACL (what cp -a sets on every
# file) is a chmod, as on ext4; an extended one is refused.
ok "a minimal ACL sets the mode; an extended one is EOPNOTSUPP; removing works" \
	python3 -c '
import errno, os, stat, struct, sys
p = sys.argv[1]
def acl(*entries):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, perm, 0xffffffff if t != 2 else 1000) for t, perm in entries)
def mode():
    return stat.S_IMODE(os.stat(p).st_mode)
def refused(f, code):
    try:
        f()
    except OSError as e:
        assert e.errno == code, e
    else:
        sys.exit("succeeded")
UO, U, GO, M, O = 0x01, 0x02, 0x04, 0x10, 0x20
os.chmod(p, 0o644)
os.setxattr(p, "system.posix_acl_access", acl((UO, 6), (GO, 4), (O, 0)))
assert mode() == 0o640, oct(mode())
refused(lambda: os.setxattr(p, "system.posix_acl_access", acl((UO, 6), (U, 4), (GO, 4), (M, 4), (O, 0))), errno.EOPNOTSUPP)
os.setxattr(p, "system.posix_acl_access", b"\x02\0\0\0")  # no entries: none
assert mode() == 0o640, oct(mode())
os.removexattr(p, "system.posix_acl_access")
refused(lambda: os.getxattr(p, "system.posix_acl_access"), errno.ENODATA)
os.chmod(p, 0o644)' "$MNT/main/odd/hello.txt"

# many/d000 (2500 entries) is past one tree page: the store keeps it as
# pages under an index. Edit it in the working tree as in a copy on ext4,
# snapshot while mounted, and compare the new version with the copy.
big_dir_edit() {
	local ref=$T/bigref d=$MNT/main/many/d000 i
	rm -rf "$ref" "$T/bignew" && cp -a "$S2/many/d000" "$ref" &&
		mkdir "$T/bignew" || return 1
	for i in 0 1 2 3 4 5 6 7 8 9; do
		printf 'new %s\n' "$i" >"$T/bignew/0-new-$i"
		printf 'new %s\n' "$i" >"$T/bignew/zz-new-$i"
		printf 'new %s\n' "$i" >"$T/bignew/m-new-$i"
	done
	cp -a "$T/bignew/." "$ref/" && cp -a "$T/bignew/." "$d/" || return 1
	# The first, a middle and the last of the original names go.
	for i in 1 1250 2500; do
		f=$(ls "$S2/many/d000" | sed -n "${i}p")
		rm "$ref/$f" "$d/$f" || return 1
	done
	f=$(ls "$S2/many/d000" | sed -n 700p)
	mv "$ref/$f" "$ref/renamed" && mv "$d/$f" "$d/renamed" || return 1
	python3 "$TREECMP" "$ref" "$d" || return 1
	"$M" snapshot -m big >"$T/v3" || return 1
	python3 "$TREECMP" "$ref" "$MNT/@v3/many/d000"
}
ok "a paged directory edited in main/ equals its ext4 copy, and so does its snapshot" \
	big_dir_edit
ok "mavctl ls and cat see the paged directory's new version" \
	bash -c '[ "$("$1" ls v3:many/d000 | wc -l)" = $((2500 + 30 - 3)) ] &&
		[ "$("$1" cat v3:many/d000/zz-new-9)" = "new 9" ] &&
		"$1" diff v2 v3 | grep -q "renamed"' _ "$M"
ok "fsck through the daemon: clean" "$M" fsck
ok "unmount: the daemon exits 0" umount_fg
ok "the rpc socket is gone after unmount" test ! -e "$MAV_REPO/mavfs.sock"
ok "the repository is free again (mavctl opens it)" "$M" log

# What warm access costs in requests (FUSE debug output counts them).
export T
ops_since() { tail -n +"$1" "$T/daemon.log" | grep -o "opcode: [A-Z_]*" | cut -d" " -f2; }
export -f ops_since
ok "remount with FUSE debug output" mount_fg "$MAV_REPO" "$MNT" -d
F="$MNT/@v1/odd/hello.txt"
D="$MNT/@v1/many/d000"
cat "$F" >/dev/null && ls -l "$D" >/dev/null && ls -l "$D" >/dev/null
mark=$(($(wc -l <"$T/daemon.log") + 1))
for _ in 1 2 3 4 5; do cat "$F" >/dev/null; done
ok "warm rereads of a snapshot file: no open, read, flush or release" \
	bash -c '! ops_since "$1" | grep -E "^(OPEN|READ|FLUSH|RELEASE|LOOKUP)$"' _ "$mark"
mark=$(($(wc -l <"$T/daemon.log") + 1))
ls -l "$D" >/dev/null
ok "warm ls -l of 2500 files: no lookup or listing, under 1.1 requests a file" \
	bash -c 'ops_since "$1" >"$2/ops"; ! grep -qE "^(LOOKUP|READDIR|READDIRPLUS|OPENDIR)$" "$2/ops" &&
		[ "$(wc -l <"$2/ops")" -lt 2750 ]' _ "$mark" "$T"
# Working trees change only through this mount or through rpc calls that
# invalidate what they touch, so their entries and attributes are cached
# long too: past the old 1 s timeout a reread still sends nothing.
wt_reread() (
	cd "$MNT/main/odd" || exit 1
	cat hello.txt >/dev/null && cat hello.txt >/dev/null || exit 1
	sleep 1.5
	mark=$(($(wc -l <"$T/daemon.log") + 1))
	for _ in 1 2 3 4 5; do cat hello.txt >/dev/null; done
	ops_since "$mark" >"$T/wtops"
	echo "requests: $(tr '\n' ' ' <"$T/wtops")"
	# With a 1 s timeout the first reread revalidates (LOOKUP). A busy
	# machine may still make the kernel drop a page or an ACL once, so
	# allow one READ and one GETATTR in all, not one per reread.
	! grep -qE "^(LOOKUP|OPEN|FLUSH|RELEASE)$" "$T/wtops" &&
		[ "$(grep -cE "^(READ|GETATTR)$" "$T/wtops")" -le 2 ]
)
ok "warm rereads of a working-tree file 1.5 s later: no lookup, at most one refetch" wt_reread
ok "unmount the debug mount" umount_fg

# The kernel's writeback cache takes writes without asking: into a
# read-only view they are refused when they reach the daemon, and the view
# is retired so its pages come back clean.
ok "remount with -o writeback_cache" mount_fg "$MAV_REPO" "$MNT" -o writeback_cache
ok "with it, every write-like call on @v1 still fails with EROFS" \
	python3 "$T/erofs.py" "$MNT/@v1"
ok "and write(2) and mmap into @v1 still never reach the snapshot" \
	python3 "$T/ro_write.py" "$MNT/@v1"
ok "@v1 is identical to its source" treecmp "$S1" "$MNT/@v1"
ok "unmount the writeback mount" umount_fg

finish
