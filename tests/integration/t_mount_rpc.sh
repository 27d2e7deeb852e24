#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_rpc.sh: a working tree edited through the mount, and mavctl
# talking to the running daemon: writes read back, status lists them, a
# snapshot made while mounted appears as @vN at once (no remount) and
# equals the working tree; tags and branches made or deleted while mounted
# appear and vanish; files created keep their inode numbers through the
# snapshot and a remount; reset brings the working tree back; gc and fsck run
# through the daemon; data written with the file still open is in the
# snapshot; a user other than the owner may ask for status but not change
# refs. TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S1="$T/src1"
python3 "$GEN" generate "$S1" --seed 4 --size 8M >/dev/null
add_awkward "$S1"
printf 'plain\n' >"$S1/odd/plain.txt"
if ! { "$M" init >/dev/null && "$M" import "$S1" >/dev/null &&
	"$M" snapshot -m one >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi
W="$MNT/main"
E="$T/expect" # the same edits, made on a plain copy
cp -a "$S1" "$E"

edit() { # edit ROOT: the edits of this test, on ROOT
	local r=$1
	printf 'brand new\n' >"$r/new.txt" &&
		mkdir -p "$r/newdir/sub" &&
		head -c 3000000 /dev/zero | tr '\0' 'q' >"$r/newdir/sub/big" &&
		printf 'appended\n' >>"$r/captions.jsonl" &&
		mv "$r/odd/plain.txt" "$r/odd/renamed.txt" &&
		rm "$r/odd/empty" &&
		rmdir "$r/odd/empty-dir" &&
		ln -s newdir/sub/big "$r/biglink" &&
		ln "$r/new.txt" "$r/new-hardlink" &&
		chmod 0600 "$r/new.txt" &&
		setfattr -n user.mav.license -v CC0 "$r/new.txt" &&
		truncate -s 100 "$r/odd/deeper/deepest/text" &&
		dd if=/dev/urandom of="$r/odd/deeper/deepest/text" bs=1 count=10 \
			seek=50 conv=notrunc status=none
}
snap() { "$M" snapshot -m "$1" | awk '{print $1}'; }
export M
export -f snap

echo "1..42"

ok "mount" mount_fg
ok "edits in the working tree succeed" edit "$W"
edit "$E" 2>/dev/null # the random bytes differ: compared separately
cp "$W/odd/deeper/deepest/text" "$E/odd/deeper/deepest/text"
ok "the working tree reads back as edited (contents, modes, xattrs)" \
	treecmp --no-mtime "$E" "$W"
ok "status through the daemon lists the changes" \
	bash -c '"$1" status >"$2/st" && grep -qx "A new.txt" "$2/st" &&
		grep -qx "M captions.jsonl" "$2/st" && grep -qx "D odd/empty" "$2/st"' \
	_ "$M" "$T"
# Looked up and listed before the snapshot, so the kernel has cached the
# root's listing, @v2's absence and @main as v1.
ok "before it: no @v2 (looked up, listed), @main shows v1" \
	bash -c '! stat "$1/@v2" 2>/dev/null && ! ls "$1" | grep -qx @v2 &&
		[ -e "$1/@main/odd/plain.txt" ] && ! [ -e "$1/@main/new.txt" ]' _ "$MNT"
# (new.txt is hard-linked: after a snapshot a hard-linked file is numbered
# by its link group.)
created_inos() { stat -c '%i %n' "$1/newdir" "$1/newdir/sub/big" "$1/biglink"; }
export -f created_inos
created_inos "$W" >"$T/inos-before"
ok "snapshot through the daemon prints v2" bash -c '[ "$(snap two)" = v2 ]'
ok "@v2 appears at once, without a remount" test -d "$MNT/@v2"
ok "and in the root's listing" bash -c 'ls "$1" | grep -qx @v2' _ "$MNT"
ok "@v2 equals the working tree, mtimes included" treecmp "$W" "$MNT/@v2"
ok "@main now points at v2" treecmp "$W" "$MNT/@main"
ok "@v1 is unchanged" treecmp "$S1" "$MNT/@v1"
ok "the daemon logged the caller's uid" grep -q "rpc: uid $(id -u) pid [0-9]*: snapshot" "$T/daemon.log"
# As on ext4, a file keeps its inode number: after the snapshot that took
# it the working tree serves it from the snapshot's tree, and a new daemon
# (nothing cached anywhere) numbers it the same.
ok "created files keep their inode numbers after the snapshot" \
	bash -c 'diff "$1/inos-before" <(created_inos "$2")' _ "$T" "$W"
ok "unmount" umount_fg
ok "mount again" mount_fg
ok "and in a new daemon" \
	bash -c 'diff "$1/inos-before" <(created_inos "$2")' _ "$T" "$W"

# Data still in the kernel's writeback cache (file open, never closed)
# belongs to "everything written so far".
python3 - "$W/open-file" "$T/fifo" <<'PYEOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"written while open\n" * 1000)
open(sys.argv[2], "w").close()
time.sleep(30)
PYEOF
WRITER=$!
PIDS+=("$WRITER")
for _ in $(seq 100); do [ -e "$T/fifo" ] && break; sleep 0.1; done
ok "a snapshot includes data of a file still open for writing" \
	bash -c '[ "$(snap open)" = v3 ] &&
		cmp <(python3 -c "import sys; sys.stdout.write(\"written while open\n\" * 1000)") "$1/@v3/open-file"' \
	_ "$MNT"
kill "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null

ok "tag made while mounted appears as @rel" \
	bash -c '"$1" tag rel v1 && ls "$2" | grep -qx @rel && python3 "$3" "$4" "$2/@rel"' \
	_ "$M" "$MNT" "$TREECMP" "$S1"
ok "tag of a name taken fails" fails_with "exists" "$M" tag rel v2
ok "tag deleted while mounted vanishes" \
	bash -c '"$1" tag -d rel && ! ls "$2" | grep -qx @rel && ! stat "$2/@rel"' \
	_ "$M" "$MNT"
ok "branch made while mounted appears, with its working tree" \
	bash -c '"$1" branch dev v1 && ls "$2" | grep -qx dev && ls "$2" | grep -qx @dev &&
		python3 "$3" "$4" "$2/dev"' _ "$M" "$MNT" "$TREECMP" "$S1"
ok "write and snapshot on the new branch" \
	bash -c 'echo dev-only >"$1/dev/dev.txt" && [ "$("$2" snapshot -b dev -m d | cut -d" " -f1)" = v4 ] &&
		[ "$(cat "$1/@dev/dev.txt")" = dev-only ] && [ "$(cat "$1/@v4/dev.txt")" = dev-only ] &&
		! test -e "$1/main/dev.txt"' _ "$MNT" "$M"
# A process sits in the branch being deleted.
(exec 3<"$MNT/dev/dev.txt" && sleep 30) &
HOLD=$!
PIDS+=("$HOLD")
ok "branch deleted while mounted vanishes (a reader holds a file in it)" \
	bash -c '"$1" branch -d dev && ! ls "$2" | grep -qx dev && ! ls "$2" | grep -qx @dev &&
		! stat "$2/dev" 2>/dev/null' _ "$M" "$MNT"
ok "its versions stay" bash -c '[ "$(cat "$1/@v4/dev.txt")" = dev-only ]' _ "$MNT"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
ok "a branch of the same name can be made again" \
	bash -c '"$1" branch dev v2 && python3 "$2" --no-mtime "$3/@v2" "$3/dev"' \
	_ "$M" "$TREECMP" "$MNT"

# reset: throw away edits made through the mount.
ok "more edits, then reset to v2 through the daemon" \
	bash -c 'echo scratch >"$1/scratch" && rm "$1/new.txt" && echo x >>"$1/captions.jsonl" &&
		cat "$1/scratch" >/dev/null && "$2" reset v2' _ "$W" "$M"
ok "the working tree equals v2 at once" treecmp --no-mtime "$MNT/@v2" "$W"
ok "status is empty after reset" bash -c '[ -z "$("$1" status)" ]' _ "$M"
ok "reset to v1 moves the branch: @main is v1, main/ equals it" \
	bash -c '"$1" reset v1 && python3 "$2" "$3" "$4/@main" && python3 "$2" --no-mtime "$3" "$4/main"' \
	_ "$M" "$TREECMP" "$S1" "$MNT"

ok "rename of a hard-linked name is kept by a snapshot (branch hl)" \
	bash -c '"$2" branch hl v1 >/dev/null &&
		mv "$1/hl/odd/hello.txt" "$1/hl/odd/hl-renamed" &&
		"$2" status -b hl | grep -qx "A odd/hl-renamed" &&
		"$2" snapshot -b hl -m hl >/dev/null && [ -e "$1/@hl/odd/hl-renamed" ] &&
		! [ -e "$1/@hl/odd/hello.txt" ] && [ "$(stat -c %h "$1/@hl/odd/hl-renamed")" = 3 ]' \
	_ "$MNT" "$M"
# The protocol itself, spoken directly (framing as in mav/rpc.h).
cat >"$T/rpc.py" <<'PYEOF'
import socket, struct, sys
def call(repo, *args, count=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(repo + "/mavfs.sock")
    msg = b"MAVR" + struct.pack("<I", len(args) if count is None else count)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        msg += struct.pack("<I", len(a)) + a
    s.sendall(msg)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    assert data[:4] == b"MAVR", data[:16]
    n, off, out = struct.unpack_from("<I", data, 4)[0], 8, []
    for _ in range(n):
        ln = struct.unpack_from("<I", data, off)[0]
        out.append(data[off + 4:off + 4 + ln])
        off += 4 + ln
    return out
PYEOF
rpc() { PYTHONPATH="$T" python3 -c "from rpc import call; import sys; r = call(*sys.argv[1:]); print(r[0].decode(), r[1].decode(), *[x.decode() for x in r[2:]])" "$MAV_REPO" "$@"; }
export T
export -f rpc
ok "rpc meta-set puts an xattr on a working-tree file (short and full key)" \
	bash -c '[ "$(rpc meta-set main odd/plain.txt license CC0 | cut -d" " -f1)" = 0 ] &&
		[ "$(rpc meta-set main /odd//plain.txt user.source cam7 | cut -d" " -f1)" = 0 ] &&
		[ "$(getfattr --only-values -n user.mav.license "$1/main/odd/plain.txt")" = CC0 ] &&
		[ "$(getfattr --only-values -n user.source "$1/main/odd/plain.txt")" = cam7 ]' _ "$MNT"
ok "rpc meta-set takes binary values" \
	bash -c 'PYTHONPATH="$2" python3 -c "
from rpc import call; import os, sys
r = call(sys.argv[1], \"meta-set\", \"main\", \"odd/plain.txt\", \"bin\", b\"\\0\\xff\\n\")
assert r[0] == b\"0\", r
assert os.getxattr(sys.argv[3] + \"/main/odd/plain.txt\", \"user.mav.bin\") == b\"\\0\\xff\\n\"" "$3" "$2" "$1"' \
	_ "$MNT" "$T" "$MAV_REPO"
ok "rpc meta-del removes it; a missing path is ENOENT with its name" \
	bash -c '[ "$(rpc meta-del main odd/plain.txt license | cut -d" " -f1)" = 0 ] &&
		! getfattr -n user.mav.license "$1/main/odd/plain.txt" 2>/dev/null &&
		rpc meta-set main no/such/file k v | grep -q "^-2 .*no/such/file"' _ "$MNT"
ok "rpc refuses unknown ops, wrong argument counts, NUL bytes and .." \
	bash -c 'rpc frobnicate | grep -q "^-1008 unknown request" &&
		rpc tag-create onlyname | grep -q "^-1008 tag-create: expected" &&
		rpc meta-set main ../etc k v | grep -q "^-1008 bad path" &&
		PYTHONPATH="$1" python3 -c "
from rpc import call; import sys
assert call(sys.argv[1], \"status\", b\"ma\\0in\")[0] == b\"-1008\"" "$2"' _ "$T" "$MAV_REPO"
ok "rpc refuses a request announcing too many strings, before reading it" \
	bash -c 'PYTHONPATH="$1" python3 -c "
from rpc import call; import sys
r = call(sys.argv[1], \"status\", count=1000000)
assert r[0] == b\"-7\", r" "$2"' _ "$T" "$MAV_REPO"
ok "mountpoint through rpc" bash -c '[ "$(rpc mountpoint)" = "0  $1" ]' _ "$MNT"
# A file being written holds chunks that no inode record points at yet:
# gc in the middle of it must keep them.
gc_mid_write() {
	head -c $((40 << 20)) /dev/urandom >"$T/midgc" &&
		python3 - "$T/midgc" "$MNT/main/midgc.bin" "$M" <<'PYEOF'
import os, subprocess, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, data[:20 << 20])
subprocess.run([sys.argv[3], "gc"], check=True, stdout=subprocess.DEVNULL)
os.write(fd, data[20 << 20:])
os.fsync(fd)
os.close(fd)
PYEOF
	cmp "$T/midgc" "$MNT/main/midgc.bin" && "$M" fsck >/dev/null
}
ok "gc while a file is being written keeps its chunks (cmp, fsck)" gc_mid_write
ok "gc through the daemon" "$M" gc
ok "fsck through the daemon finds no problems" "$M" fsck
ok "every version still reads after gc" \
	bash -c 'python3 "$1" "$2" "$3/@v1" && python3 "$1" --no-mtime "$4" "$3/@v2"' \
	_ "$TREECMP" "$S1" "$MNT" "$E"

# Other users: status yes, changes no.
chmod 0755 "$T" "$MAV_REPO"
ok "another user may ask for status" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$M" -R "$MAV_REPO" status
ok "another user may not snapshot (EPERM, named)" \
	fails_with "only the owner" setpriv --reuid=65534 --regid=65534 \
	--clear-groups "$M" -R "$MAV_REPO" snapshot -m x --allow-empty
ok "nor tag" fails_with "only the owner" setpriv --reuid=65534 \
	--regid=65534 --clear-groups "$M" -R "$MAV_REPO" tag nobody v1
chmod 0700 "$T" "$MAV_REPO"

# (The root's own mtime is left out: mav_wt_reset stamps it in memory only.)
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %s %m %T@\n' | sort); }
listing "$W" >"$T/before"
ok "unmount: the daemon exits 0" umount_fg
ok "remount" mount_fg
ok "after a remount the versions and the working tree are as they were" \
	bash -c 'ls "$1" | grep -qx @v4 && python3 "$2" "$3" "$1/@v1" &&
		diff "$4/before" <(cd "$1/main" && find . -mindepth 1 -printf "%P %y %s %m %T@\n" | sort)' \
	_ "$MNT" "$TREECMP" "$S1" "$T"

finish
