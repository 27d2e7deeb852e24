#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016 # A && B || fail; bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_posix.sh: a working tree behaves like a local filesystem for
# unmodified programs: O_TRUNC (which reaches the daemon as a setattr),
# unlinked open files, rename over an open file, the editor's save
# (temp + fsync + rename), mmap writes, big writes, sparse extension, hard
# links, xattrs, modes/owners/times surviving a remount, error codes
# (ENOTEMPTY, EEXIST, EXDEV between branches, ENOENT), writers in
# parallel, contended flock and fcntl locks, fallocate, and a sparse file
# past 4 GiB.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
mkdir -p "$S/docs"
printf 'original text\n' >"$S/docs/a.txt"
if ! { "$M" init >/dev/null && "$M" import "$S" >/dev/null &&
	"$M" snapshot -m one >/dev/null && "$M" branch other v1 >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi
W="$MNT/main"

echo "1..41"

ok "mount" mount_fg
ok "O_TRUNC open truncates (shell > on an existing file)" \
	bash -c 'printf "short\n" >"$1/docs/a.txt" && [ "$(cat "$1/docs/a.txt")" = short ] &&
		[ "$(stat -c %s "$1/docs/a.txt")" = 6 ]' _ "$W"
cat >"$T/posix.py" <<'PYEOF'
import errno, mmap, os, sys
w = sys.argv[1]
def expect_errno(e, call):
    try:
        call()
    except OSError as x:
        assert x.errno == e, (x, e)
        return
    raise AssertionError("no error, expected %s" % errno.errorcode[e])

def unlinked_open():
    p = w + "/gone.txt"
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"still here")
    os.unlink(p)
    assert not os.path.exists(p)
    os.write(fd, b", and more")
    assert os.pread(fd, 100, 0) == b"still here, and more"
    os.fsync(fd)
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)
    assert "gone.txt" not in os.listdir(w)

def rename_over_open():
    a, b = w + "/r-old", w + "/r-new"
    open(a, "wb").write(b"old contents")
    open(b, "wb").write(b"new contents")
    f = open(a, "rb")
    os.rename(b, a)
    assert f.read() == b"old contents"
    f.close()
    assert open(a, "rb").read() == b"new contents"
    assert not os.path.exists(b)

def editor_save():
    t, p = w + "/docs/.a.txt.swp", w + "/docs/a.txt"
    with open(t, "wb") as f:
        f.write(b"saved by the editor\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(t, p)
    dfd = os.open(w + "/docs", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    assert open(p, "rb").read() == b"saved by the editor\n"

def mmap_write():
    p = w + "/mapped.bin"
    with open(p, "wb") as f:
        f.truncate(1 << 20)
    with open(p, "r+b") as f:
        m = mmap.mmap(f.fileno(), 1 << 20)
        m[4096:4100] = b"MMAP"
        m[-4:] = b"TAIL"
        m.flush()
        m.close()
    d = open(p, "rb").read()
    assert len(d) == 1 << 20 and d[4096:4100] == b"MMAP" and d[-4:] == b"TAIL"
    assert d[:4096] == b"\0" * 4096

def sparse_extend():
    p = w + "/sparse.bin"
    with open(p, "wb") as f:
        f.write(b"head")
        f.truncate(300000)
        f.seek(200000)
        f.write(b"mid")
    d = open(p, "rb").read()
    assert len(d) == 300000 and d[:4] == b"head" and d[200000:200003] == b"mid"
    assert d[4:200000] == b"\0" * 199996 and d[200003:] == b"\0" * 99997

def hard_links():
    a, b = w + "/hl-a", w + "/docs/hl-b"
    open(a, "wb").write(b"linked")
    os.link(a, b)
    assert os.stat(a).st_ino == os.stat(b).st_ino and os.stat(a).st_nlink == 2
    open(b, "ab").write(b"!")
    assert open(a, "rb").read() == b"linked!"
    os.unlink(a)
    assert os.stat(b).st_nlink == 1

def xattrs():
    p = w + "/docs/a.txt"
    os.setxattr(p, "user.mav.license", b"CC-BY-4.0")
    os.setxattr(p, "user.big", b"x" * 4000)
    assert os.getxattr(p, "user.mav.license") == b"CC-BY-4.0"
    assert set(os.listxattr(p)) >= {"user.mav.license", "user.big"}
    expect_errno(errno.EEXIST, lambda: os.setxattr(p, "user.big", b"y", os.XATTR_CREATE))
    expect_errno(errno.ENODATA, lambda: os.setxattr(p, "user.none", b"y", os.XATTR_REPLACE))
    os.removexattr(p, "user.big")
    expect_errno(errno.ENODATA, lambda: os.getxattr(p, "user.big"))
    expect_errno(errno.EOPNOTSUPP, lambda: os.setxattr(p, "trusted.x", b"1"))
    # errnos as on ext4: a namespace Linux lacks is EOPNOTSUPP, one it
    # has but the file has no such name in ENODATA, "user." alone EINVAL
    expect_errno(errno.EOPNOTSUPP, lambda: os.getxattr(p, "foo.bar"))
    for name in ("trusted.x", "security.x", "system.posix_acl_default"):
        expect_errno(errno.ENODATA, lambda: os.getxattr(p, name))
    expect_errno(errno.EINVAL, lambda: os.setxattr(p, "user.", b"1"))

def errors():
    os.mkdir(w + "/full")
    open(w + "/full/f", "wb").close()
    expect_errno(errno.ENOTEMPTY, lambda: os.rmdir(w + "/full"))
    expect_errno(errno.EEXIST, lambda: os.mkdir(w + "/full"))
    expect_errno(errno.EEXIST, lambda: os.open(w + "/full/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    expect_errno(errno.ENOENT, lambda: os.stat(w + "/nope/x"))
    expect_errno(errno.ENOTDIR, lambda: os.listdir(w + "/full/f"))
    expect_errno(errno.EISDIR, lambda: os.unlink(w + "/full"))
    expect_errno(errno.EXDEV, lambda: os.rename(w + "/full/f", sys.argv[2] + "/f"))
    expect_errno(errno.EXDEV, lambda: os.link(w + "/full/f", sys.argv[2] + "/f"))
    expect_errno(errno.EROFS, lambda: os.rename(w + "/full/f", sys.argv[3] + "/f"))

def locks():
    # Two processes contend for flock and POSIX (fcntl) locks on one file;
    # the second gets each once the first lets go.
    import fcntl, subprocess
    p = w + "/locked"
    open(p, "wb").write(b"x")
    probe = ("import fcntl, sys\n"
             "f = open(sys.argv[1], 'r+b')\n"
             "for take in (lambda: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB),\n"
             "             lambda: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)):\n"
             "    try:\n"
             "        take()\n"
             "        print('got')\n"
             "    except BlockingIOError:\n"
             "        print('busy')\n")
    def others():
        return subprocess.run([sys.executable, "-c", probe, p], check=True,
                              capture_output=True, text=True).stdout.split()
    f = open(p, "r+b")
    fcntl.flock(f, fcntl.LOCK_EX)
    fcntl.lockf(f, fcntl.LOCK_EX)
    assert others() == ["busy", "busy"], others()
    f.close()
    assert others() == ["got", "got"], others()

def fallocate():
    # posix_fallocate (fallocate(2) mode 0) grows a file with zeros and
    # never shrinks it; KEEP_SIZE alone changes nothing (no space is
    # reserved); PUNCH_HOLE and ZERO_RANGE zero the range, ZERO_RANGE
    # without KEEP_SIZE grows the file; collapsing a range is not offered.
    import ctypes
    p = w + "/falloc"
    open(p, "wb").write(b"abc")
    fd = os.open(p, os.O_RDWR)
    os.posix_fallocate(fd, 1, 1)
    assert os.fstat(fd).st_size == 3
    os.posix_fallocate(fd, 2, 100000)
    assert os.fstat(fd).st_size == 100002
    assert os.pread(fd, 200000, 0) == b"abc" + b"\0" * 99999
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    keep, punch, collapse, zero = 1, 2, 8, 16
    def falloc(mode, off, n):
        if libc.fallocate(fd, mode, off, n) != 0:
            raise OSError(ctypes.get_errno(), "fallocate")
    falloc(keep, 0, 1 << 20)
    assert os.fstat(fd).st_size == 100002
    os.pwrite(fd, b"xyz", 5000)
    falloc(punch | keep, 1, 1)
    falloc(punch | keep, 5001, 1 << 20)
    assert os.fstat(fd).st_size == 100002
    assert os.pread(fd, 5010, 0) == b"a\0c" + b"\0" * 4997 + b"x" + b"\0" * 9
    falloc(zero, 100000, 10)
    assert os.fstat(fd).st_size == 100010
    os.fsync(fd)
    assert os.pread(fd, 200000, 0) == b"a\0c" + b"\0" * 4997 + b"x" + b"\0" * 95009
    expect_errno(errno.EOPNOTSUPP, lambda: falloc(collapse, 0, 4096))
    os.close(fd)
    fd = os.open(sys.argv[3] + "/docs/a.txt", os.O_RDWR)
    expect_errno(errno.EROFS, lambda: os.posix_fallocate(fd, 0, 1 << 20))
    for mode in (0, keep, punch | keep):
        expect_errno(errno.EROFS, lambda: falloc(mode, 0, 1 << 20))
    os.close(fd)

GIB = 1 << 30
TIB = 1 << 40
HUGE = [(0, b"head"), (5 * GIB - 3, b"across 5 GiB"), (6 * GIB, b"tail")]

def readdir_changing():
    # Entries there all along come exactly once while a listing goes on
    # beside unlinks, renames out and new names (positions in the sorted
    # listing used to shift: 183 of 1000 names were never seen).
    d = w + "/rd"
    os.mkdir(d)
    for i in range(1000):
        open("%s/f%04d" % (d, i), "w").close()
    seen = []
    with os.scandir(d) as it:
        for k, e in enumerate(it):
            seen.append(e.name)
            if k % 3 == 0:
                os.rename(e.path, w + "/rd-" + e.name)
            else:
                os.unlink(e.path)
            open("%s/a%04d" % (d, k), "w").close()  # sorts first
    old = [n for n in seen if n.startswith("f")]
    assert len(old) == len(set(old)) == 1000, (len(old), len(set(old)))
    assert len(seen) == len(set(seen)), "a name came twice"
    for n in os.listdir(w):
        if n.startswith("rd-"):
            os.unlink(w + "/" + n)
    for n in os.listdir(d):
        os.unlink(d + "/" + n)
    os.rmdir(d)

def readdir_snapshot():
    # A listing of main/ resumed after a snapshot (which moves the names
    # into a new base tree) sees every name there all along exactly once.
    import subprocess
    d = w + "/rs"
    os.mkdir(d)
    for i in range(2000):
        open("%s/file-with-a-longer-name-%04d" % (d, i), "w").close()
    subprocess.run([os.environ["MAVCTL"], "snapshot", "-m", "rs"],
                   check=True, stdout=subprocess.DEVNULL)
    seen = []
    with os.scandir(d) as it:
        for k, e in enumerate(it):
            seen.append(e.name)
            os.unlink(e.path)
            if k % 400 == 0:
                open("%s/a%04d" % (d, k), "w").close()
                subprocess.run([os.environ["MAVCTL"], "snapshot", "-m",
                                "mid-listing"], check=True,
                               stdout=subprocess.DEVNULL)
    old = [n for n in seen if n.startswith("file-")]
    assert len(old) == len(set(old)) == 2000, (len(old), len(set(old)))
    assert len(seen) == len(set(seen)), "a name came twice"
    for n in os.listdir(d):
        os.unlink(d + "/" + n)
    os.rmdir(d)

def truncate_times():
    # As on ext4: O_TRUNC and ftruncate stamp mtime and ctime even when
    # the size stays (an empty file truncated kept its old mtime), with
    # one clock reading; so does touch for all three times.
    p = w + "/stamp"
    open(p, "w").close()
    for trunc in (lambda: os.close(os.open(p, os.O_WRONLY | os.O_TRUNC)),
                  lambda: os.truncate(p, 0), lambda: os.truncate(p, 10)):
        os.utime(p, (1, 1))
        trunc()
        st = os.stat(p)
        assert st.st_mtime > 1 and st.st_mtime_ns == st.st_ctime_ns, st
    os.utime(p)
    st = os.stat(p)
    assert st.st_atime_ns == st.st_mtime_ns == st.st_ctime_ns, st
    os.unlink(p)

def special_files():
    # A named pipe carries bytes between two processes and a Unix socket
    # binds in a working tree, as on ext4; device nodes are refused, and
    # read-only views refuse all of them.
    import socket, stat, threading
    p = w + "/fifo"
    os.mkfifo(p, 0o640)
    t = threading.Thread(target=lambda: open(p, "wb").write(b"piped"))
    t.start()
    assert open(p, "rb").read() == b"piped"
    t.join()
    assert stat.S_ISFIFO(os.stat(p).st_mode)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(w + "/sock")
    srv.listen(1)
    cli = socket.socket(socket.AF_UNIX)
    cli.connect(w + "/sock")
    conn = srv.accept()[0]
    cli.send(b"hi")
    assert conn.recv(2) == b"hi"
    for x in (conn, cli, srv):
        x.close()
    assert stat.S_ISSOCK(os.stat(w + "/sock").st_mode)
    expect_errno(errno.EPERM, lambda: os.mknod(w + "/dev", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
    expect_errno(errno.EROFS, lambda: os.mkfifo(sys.argv[3] + "/fifo"))

def far_times():
    # Times are int64 nanoseconds (1677-09-21 .. 2262-04-11): one outside
    # is clamped to the nearest end, as ext4 clamps to its range; it used
    # to wrap around (2300 read back as 1715).
    p = w + "/far-times"
    open(p, "w").close()
    os.utime(p, ns=(10**19, 10**19 + 1))  # the year 2286
    st = os.stat(p)
    assert st.st_atime_ns == st.st_mtime_ns == 2**63 - 1, st
    os.utime(p, ns=(-(10**19), -(10**19)))  # the year 1653
    assert os.stat(p).st_mtime_ns == -(2**63), os.stat(p)
    os.utime(p, ns=(2**63 - 1, -(2**63)))  # the ends themselves are kept
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (2**63 - 1, -(2**63)), st
    os.utime(p, ns=(10**18, 10**18))

def huge_write():
    # A sparse file past 4 GiB: 32-bit offsets anywhere would show.
    fd = os.open(w + "/huge", os.O_CREAT | os.O_WRONLY, 0o644)
    for off, data in HUGE:
        assert os.pwrite(fd, data, off) == len(data)
    os.fsync(fd)
    os.close(fd)
    # Two bytes 256 GiB out: the seal counts the hole's zero chunks
    # instead of cutting and hashing them (it used to take 3 s per GiB,
    # with the whole tree waiting).
    fd = os.open(w + "/far-hole", os.O_CREAT | os.O_WRONLY, 0o644)
    assert os.pwrite(fd, b"XY", 256 * GIB) == 2
    os.close(fd)

def file_max():
    # The largest file is 1 TiB: a write across it is cut short there,
    # one past it or a larger size is EFBIG, as on ext4 at its 16 TiB.
    p = w + "/too-far"
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    assert os.pwrite(fd, b"ab", TIB - 1) == 1
    assert os.fstat(fd).st_size == TIB
    for f in (lambda: os.pwrite(fd, b"ab", TIB),
              lambda: os.ftruncate(fd, TIB + 1)):
        try:
            f()
        except OSError as e:
            assert e.errno == errno.EFBIG, e
        else:
            sys.exit("no EFBIG")
    os.close(fd)
    os.unlink(p)

def huge_check():
    for d in (w, sys.argv[3]):
        fd = os.open(d + "/huge", os.O_RDONLY)
        assert os.fstat(fd).st_size == 6 * GIB + 4, os.fstat(fd).st_size
        for off, data in HUGE:
            assert os.pread(fd, len(data), off) == data, (d, off)
        assert os.pread(fd, 8192, 4 * GIB - 4096) == b"\0" * 8192
        assert os.pread(fd, 100, 6 * GIB + 2) == b"il"
        os.close(fd)
        fd = os.open(d + "/far-hole", os.O_RDONLY)
        assert os.fstat(fd).st_size == 256 * GIB + 2
        assert os.pread(fd, 8, 256 * GIB - 6) == b"\0" * 6 + b"XY"
        assert os.pread(fd, 4096, 100 * GIB) == b"\0" * 4096
        # The hole is one to du and to SEEK_DATA/SEEK_HOLE, up to the
        # last chunk or two (they were 256 GiB of data).
        assert os.fstat(fd).st_blocks * 512 <= 1 << 20, os.fstat(fd)
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
        data = os.lseek(fd, 0, os.SEEK_DATA)
        assert 256 * GIB - (1 << 20) <= data <= 256 * GIB, data
        assert os.lseek(fd, data, os.SEEK_HOLE) == 256 * GIB + 2
        os.close(fd)

for name in sys.argv[4].split(","):
    globals()[name]()
PYEOF
px() { python3 "$T/posix.py" "$W" "$MNT/other" "$MNT/@v1" "$1"; }
ok "an unlinked open file lives until closed" px unlinked_open
ok "rename over a file open for reading keeps the reader's bytes" px rename_over_open
ok "editor save: temp file, fsync, rename over the original" px editor_save
ok "mmap writes reach the file" px mmap_write
ok "ftruncate extends with zeros, writes in the hole" px sparse_extend
ok "hard links: one inode, shared bytes, link counts" px hard_links
ok "xattrs: set, get, list, create/replace flags, remove" px xattrs
ok "errors: ENOTEMPTY, EEXIST, ENOENT, ENOTDIR, EISDIR, EXDEV, EROFS" px errors
ok "times past 2262 or before 1677 are clamped to the ends" px far_times
ok "truncate stamps mtime even at the same size; touch is one clock reading" px truncate_times
ok "named pipes and sockets work in main/; device nodes EPERM" px special_files
ok "a listing going on beside unlinks, renames and creates misses nothing" px readdir_changing
head -c 50000000 /dev/urandom >"$T/big"
ok "a 50 MB file written with cp reads back identical" \
	bash -c 'cp "$1/big" "$2/big" && cmp "$1/big" "$2/big"' _ "$T" "$W"
ok "4 writers in parallel, each its own file" \
	bash -c 'for i in 1 2 3 4; do head -c 3000000 "$1/big" | tail -c $((i * 500000)) >"$2/par$i" & done; wait
		for i in 1 2 3 4; do cmp <(head -c 3000000 "$1/big" | tail -c $((i * 500000))) "$2/par$i" || exit 1; done' \
	_ "$T" "$W"
ok "modes, owners and times set through the mount" \
	bash -c 'chmod 0640 "$1/docs/a.txt" && chown 1001:1002 "$1/docs/a.txt" &&
		touch -d "2020-01-02 03:04:05.123456789" "$1/docs/a.txt" && mkdir -m 0711 "$1/priv"' _ "$W"
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %s %m %U %G %T@ %n\n' | sort); }
listing "$W" >"$T/before"
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
sums "$W" >"$T/sums-before"
ok "snapshot of it all" "$M" snapshot -m posix
ok "the snapshot equals the working tree, metadata included" treecmp "$W" "$MNT/@v2"
ok "the snapshot holds the named pipe and the socket; export makes them again" \
	bash -c '[ -p "$1/@v2/fifo" ] && [ -S "$1/@v2/sock" ] &&
		"$2" export v2 "$3/exp" && [ -p "$3/exp/fifo" ] && [ -S "$3/exp/sock" ] &&
		[ "$(stat -c %a "$3/exp/fifo")" = 640 ]' _ "$MNT" "$M" "$T"
ok "the unlinked and renamed-away names are not in it" \
	bash -c '! [ -e "$1/@v2/gone.txt" ] && ! [ -e "$1/@v2/r-new" ] && ! [ -e "$1/@v2/docs/.a.txt.swp" ]' _ "$MNT"
ok "unmount" umount_fg
ok "remount" mount_fg
ok "after a remount: names, types, sizes, modes, owners, times, links kept" \
	bash -c 'diff "$1/before" <(cd "$2" && find . -mindepth 1 -printf "%P %y %s %m %U %G %T@ %n\n" | sort)' _ "$T" "$W"
ok "and every byte" \
	bash -c 'diff "$1/sums-before" <(cd "$2" && find . -type f -print0 | sort -z | xargs -0 sha256sum)' _ "$T" "$W"
ok "the other branch never saw any of it" \
	bash -c '[ "$(cat "$1/other/docs/a.txt")" = "original text" ] && ! [ -e "$1/other/big" ]' _ "$MNT"
ok "statfs in a working tree" bash -c '[ "$(stat -f -c %S "$1")" = 4096 ]' _ "$W"
# cp sizes its buffer by its destination's st_blksize (one 1 MiB write
# request per write()), cat by the file it reads (a buffer per file). The
# kernel may keep an attribute it has cached until something refreshes it
# (cp -a does, setting times and modes).
blksize() {
	head -c 5000 /dev/zero >"$T/blk-src" &&
		: >"$W/blk-empty" && cp -a "$T/blk-src" "$W/blk-full" &&
		[ "$(stat -c %o "$W/blk-empty")" = 1048576 ] &&
		[ "$(stat -c %o "$W/blk-full")" = 131072 ] || {
		stat -c "%n %s %o" "$W/blk-empty" "$W/blk-full"
		return 1
	}
}
ok "st_blksize: 1 MiB for an empty file, 128 KiB for a copied one" blksize
ok "flock and fcntl locks held by one process keep another out" px locks
ok "fallocate grows, keeps the size, punches and zeroes ranges in main/; EROFS in @v1" px fallocate
ok "a sparse 6 GiB file: bytes at 0, across 5 GiB and at 6 GiB" px huge_write
ok "files end at 1 TiB: a write across is cut short, past it EFBIG" px file_max
ok "snapshot of it" "$M" snapshot -m huge
ok "unmount" umount_fg
ok "remount" mount_fg
px3() { python3 "$T/posix.py" "$W" "$MNT/other" "$MNT/@v3" "$1"; }
ok "after a remount, in main/ and in @v3: sizes, bytes and holes" px3 huge_check
# cp and tar -S see the holes by st_blocks and skip them with SEEK_DATA:
# they read only the last chunks, and the copy and the archive are as
# sparse (before, they read 256 GiB of zeros through the mount: hence the
# timeouts).
sparse_cp() {
	timeout 120 cp --sparse=auto "$MNT/@v3/far-hole" "$T/far-hole" &&
		[ "$(stat -c %s "$T/far-hole")" = $((256 * 1024 * 1024 * 1024 + 2)) ] &&
		[ "$(stat -c %b "$T/far-hole")" -le 2048 ] &&
		[ "$(tail -c 2 "$T/far-hole")" = XY ] && rm "$T/far-hole" &&
		timeout 120 tar -C "$MNT/@v3" -S -cf "$T/fh.tar" far-hole &&
		[ "$(stat -c %s "$T/fh.tar")" -lt 1048576 ] &&
		mkdir "$T/fh" && tar -C "$T/fh" -xf "$T/fh.tar" &&
		[ "$(tail -c 2 "$T/fh/far-hole")" = XY ] && rm -r "$T/fh.tar" "$T/fh"
}
ok "cp and tar -S of a 256 GiB sparse file out of @v3 keep the holes" sparse_cp
# cp within the mount: a whole file from a snapshot into main/ shares its
# chunks (copy_file_range; it used to go through the kernel's read and
# write, 0.56 s for 50 MB, 13 ms now); a copy of part of one, or into a
# file with content, is still the kernel's. The kernel cuts a request at
# 2 GiB, so a bigger file is the kernel's copy too.
cfr() {
	cp "$MNT/@v3/big" "$W/big-restored" && cmp "$MNT/@v3/big" "$W/big-restored" &&
		python3 - "$MNT/@v3/big" "$W/big-part" <<'PY'
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
os.write(dst, b"head")
assert os.copy_file_range(src, dst, 1 << 20, 100, 4) == 1 << 20
assert os.pread(dst, (1 << 20) + 4, 0) == b"head" + os.pread(src, 1 << 20, 100)
os.ftruncate(dst, 0)
assert os.copy_file_range(src, dst, 1 << 30, 0, 0) == os.fstat(src).st_size
assert os.pread(dst, 1 << 27, 0) == os.pread(src, 1 << 27, 0)
PY
}
ok "cp of a file from @v3 into main/, and copy_file_range of part of one" cfr
# Trees keep mtime only: once the kernel forgets a file after a snapshot,
# its ctime is the snapshot's time, never back at its mtime.
ctime_kept() {
	local f=$W/ctime-probe c0 c1
	printf x >"$f" && touch -d '2001-01-01' "$f" && c0=$(stat -c %Z "$f") &&
		"$M" snapshot -m ctime >/dev/null &&
		echo 2 >/proc/sys/vm/drop_caches && c1=$(stat -c %Z "$f") &&
		[ "$c1" -ge "$c0" ] && [ "$(stat -c %Y "$f")" = 978307200 ]
}
ok "after a snapshot a file's ctime does not go back to its mtime" ctime_kept
ok "a listing going on across snapshots misses nothing" \
	env MAVCTL="$M" python3 "$T/posix.py" "$W" "$MNT/other" "$MNT/@v1" readdir_snapshot
ok "unmount" umount_fg

finish
