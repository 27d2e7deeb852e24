#!/usr/bin/env python3
"""mount_random.py: seeded random POSIX ops, checked against a real disk.

  mount_random.py run --seed S --steps N --mnt MNT --ref DIR --snaps DIR
                      [--every K] [--mavctl PATH] [--log]
  mount_random.py recheck --mnt MNT --snaps DIR
  mount_random.py compare --mnt MNT --ref DIR

run: apply the same random operation (open/create/trunc/append, pwrite past
EOF, ftruncate, fsync, rename/replace, renameat2 NOREPLACE and EXCHANGE,
unlink, mkdir, rmdir, symlink, link, chmod, chown, utime, user.* xattrs,
unlink of an open file...) to MNT/main/sSEED and to DIR/sSEED on the real
disk. Both sides must give the same result (the same value or the same
errno); after every step the two trees must be equal (names, types, sizes,
modes, owners, bytes, symlink targets, user.* xattrs, file link counts,
hard-link groups, and mtimes that were set explicitly with utime and not
written since). Every K steps `mavctl snapshot` freezes the working tree;
the reference at that moment is copied to SNAPS/ref-vN (hard links and
xattrs kept) and MNT/@vN must equal it, with every mtime the working tree
showed right after the snapshot, at once and again at the end.
Twice a run it sits idle for 2.5 s so the daemon seals idle files.
recheck: compare every MNT/@vN against its SNAPS/ref-vN copy again.
compare: MNT/main against DIR as a whole, mtimes left out (after remount).

On a mismatch it prints the seed, step, op and the last ops, exits 1.
Operations happen below sSEED/r; the comparison covers sSEED, so a
symlink's single "../" (or a create through a dangling one) stays inside.
"""
import argparse
import ctypes
import errno
import hashlib
import json
import mmap
import os
import random
import shutil
import stat
import subprocess
import sys
import time

MAX_ENTRIES = 60
MAX_FDS = 6
MAX_SIZE = 400000
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100

NAMES = [
    b"a",
    b"b",
    b"file 1",
    b" lead",
    b"trail ",
    b".hidden",
    b"-dash",
    "caf\u00e9".encode(),
    "\u65e5\u672c\u8a9e".encode(),
    "\U0001f600".encode(),
    b"new\nline",
    b"\xff\xfe raw",
    b"x" * 255,
    ("\u00e9" * 127 + "x").encode(),
]
LONG_NAME = b"y" * 256  # one byte too long: ENAMETOOLONG on both sides

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
    _renameat2.restype = ctypes.c_int


def renameat2(src, dst, flags):
    if _renameat2(AT_FDCWD, src, AT_FDCWD, dst, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def brief(v):
    """v with long byte strings shortened to their length and hash."""
    if isinstance(v, (tuple, list)):
        return type(v)(brief(x) for x in v)
    if isinstance(v, bytes) and len(v) > 40:
        return "<%d bytes %s>" % (len(v), hashlib.sha256(v).hexdigest()[:12])
    return v


def first_diff(a, b):
    """Where two outcomes' byte strings first differ (for reports)."""
    for x, y in zip(a if isinstance(a, tuple) else (a,),
                    b if isinstance(b, tuple) else (b,)):
        if isinstance(x, bytes) and isinstance(y, bytes) and x != y:
            i = next((i for i, (c, d) in enumerate(zip(x, y)) if c != d),
                     min(len(x), len(y)))
            return "; bytes first differ at offset %d" % i
    return ""


def sp(rel):
    """A path for messages: the 255/256-byte names abbreviated."""
    out = repr(rel)
    for n in (NAMES[-1], NAMES[-2], LONG_NAME):
        out = out.replace(repr(n)[2:-1], "<%s*%d>" % (repr(n[:2])[2:-1],
                                                       len(n)))
    return out


class Mismatch(Exception):
    pass


def outcome(fn):
    """('ok', value) or ('err', errno name)."""
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))


# ---------------------------------------------------------------- trees


def user_xattrs(p, snapshot):
    try:
        keys = os.listxattr(p, follow_symlinks=False)
    except OSError as e:
        return "listxattr:" + errno.errorcode.get(e.errno, str(e.errno))
    out = []
    for k in sorted(keys):
        if not k.startswith("user.") or (snapshot and k == "user.mav.id"):
            continue
        out.append((k, os.getxattr(p, k, follow_symlinks=False)))
    return out


def walk(root, snapshot=False):
    """{relpath: (record, lstat)} and the hard-link groups of a tree."""
    out, groups = {}, {}

    def rec(dirp, rel):
        for name in sorted(os.listdir(dirp)):
            p = os.path.join(dirp, name)
            r = os.path.join(rel, name) if rel else name
            st = os.lstat(p)
            fmt = stat.S_IFMT(st.st_mode)
            d = {"type": fmt, "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            else:
                d["mode"] = oct(stat.S_IMODE(st.st_mode))
                d["xattrs"] = user_xattrs(p, snapshot)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    data = f.read()
                d["size"] = st.st_size
                d["read"] = len(data)
                d["sha"] = hashlib.sha256(data).hexdigest()[:16]
                d["nlink"] = st.st_nlink
                groups.setdefault(st.st_ino, []).append(r)
            out[r] = (d, st)
            if stat.S_ISDIR(st.st_mode):
                rec(p, r)

    rec(root, b"")
    links = sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)
    return out, links


def diff_trees(a, b, mtimes):
    """Differences between walk() results a (tested) and b (expected);
    mtimes: {relpath: ns} to check on a."""
    (ta, la), (tb, lb) = a, b
    bad = []
    for k in sorted(set(ta) | set(tb)):
        ra = ta[k][0] if k in ta else None
        rb = tb[k][0] if k in tb else None
        if ra != rb:
            bad.append("differs: %s\n  got  %r\n  want %r" % (sp(k), ra, rb))
        elif k in mtimes and ta[k][1].st_mtime_ns != mtimes[k]:
            bad.append("mtime of %s: got %d want %d" % (sp(k),
                       ta[k][1].st_mtime_ns, mtimes[k]))
    if la != lb:
        bad.append("hard-link groups: got %r want %r" % (la, lb))
    return bad


# ---------------------------------------------------------------- the run


class Run:
    def __init__(self, a):
        self.seed = a.seed
        self.rng = random.Random(a.seed)
        self.mnt = os.fsencode(a.mnt)
        sub = b"s%d" % a.seed
        self.sub = sub
        self.cmp = [os.path.join(self.mnt, b"main", sub),
                    os.path.join(os.fsencode(a.ref), sub)]
        self.roots = [os.path.join(c, b"r") for c in self.cmp]
        self.snaps = os.fsencode(a.snaps)
        self.every = a.every
        self.mavctl = a.mavctl
        self.log = a.log
        self.fds = []  # [wt fd, ref fd, flags, relpath]
        self.mtimes = {}  # ref inode -> mtime set with utime
        self.history = []
        self.step = 0
        self.taken = []  # [(vN, ref copy)]
        self.counts = {}
        self.results = {}  # "ok" or errno name -> count
        self.mtime_checks = 0
        self.idles = 0
        for c in self.cmp:
            os.makedirs(os.path.join(c, b"r"))
        if _renameat2 is None:
            print("# renameat2 not in libc: NOREPLACE/EXCHANGE ops skipped")

    # -- helpers
    def p(self, side, rel):
        return os.path.join(self.roots[side], rel) if rel else self.roots[side]

    def entries(self):
        """relpath -> S_IFMT of the reference below r."""
        out = {}
        for top, dirs, files in os.walk(self.roots[1]):
            for n in dirs + files:
                ap = os.path.join(top, n)
                out[os.path.relpath(ap, self.roots[1])] = stat.S_IFMT(
                    os.lstat(ap).st_mode)
        return out

    def fail(self, msg):
        raise Mismatch("seed %d step %d: %s" % (self.seed, self.step, msg))

    def both(self, desc, fn, values=True):
        """Run fn(side) on the working tree then the reference; the
        outcomes must match (only success or errno if not values).
        Returns the outcome pair."""
        self.history.append(desc)
        if self.log:
            print("# %d: %s" % (self.step, desc))
        w = outcome(lambda: fn(0))
        r = outcome(lambda: fn(1))
        if (w != r) if values else (w[0] != r[0] or
                                     (w[0] == "err" and w != r)):
            self.fail("%s\n  mount: %s\n  disk:  %s%s\nlast ops:\n  %s" %
                      (desc, brief(w), brief(r), first_diff(w[1], r[1]),
                       "\n  ".join(self.history[-15:])))
        self.results[w[1] if w[0] == "err" else "ok"] = \
            self.results.get(w[1] if w[0] == "err" else "ok", 0) + 1
        return w, r

    def pick(self, ents, kinds=None):
        c = [k for k, t in ents.items() if kinds is None or t in kinds]
        return self.rng.choice(sorted(c)) if c else None

    def name(self):
        if self.rng.random() < 0.01:
            return LONG_NAME
        return self.rng.choice(NAMES)

    def new_path(self, ents):
        """A path under an existing directory (sometimes under any entry:
        ENOTDIR through a file, or through a symlink)."""
        r = self.rng.random()
        if r < 0.3:
            parent = b""
        elif r < 0.9:
            parent = self.pick(ents, (stat.S_IFDIR,)) or b""
        else:
            parent = self.pick(ents) or b""
        return os.path.join(parent, self.name()) if parent else self.name()

    def any_path(self, ents, kinds=None):
        if self.rng.random() < 0.75:
            got = self.pick(ents, kinds)
            if got is not None:
                return got
        return self.new_path(ents)

    def data(self, n):
        return self.rng.randbytes(n)

    def forget_ino(self, rel, follow=True):
        try:
            st = os.stat(self.p(1, rel), follow_symlinks=follow)
            self.mtimes.pop(st.st_ino, None)
        except OSError:
            pass

    def touched_dirs(self, *rels):
        """A namespace change: the parents' mtimes are the daemon's now."""
        for rel in rels:
            self.forget_ino(os.path.dirname(rel))

    def size_of(self, fdpair):
        try:
            return os.fstat(fdpair[1]).st_size
        except OSError:
            return 0

    # -- ops on paths
    def op_create(self, ents):
        rel = self.new_path(ents)
        fl = os.O_CREAT | os.O_EXCL | self.rng.choice(
            [os.O_RDWR, os.O_WRONLY, os.O_RDWR | os.O_APPEND])
        mode = self.rng.choice([0o644, 0o600, 0o755, 0o640])
        self.open_pair("create %s flags %o mode %o" % (sp(rel), fl, mode),
                       rel, fl, mode)
        self.touched_dirs(rel)
        self.forget_ino(rel)

    def op_open(self, ents):
        rel = self.any_path(ents, (stat.S_IFREG, stat.S_IFLNK))
        fl = self.rng.choice([os.O_RDONLY, os.O_WRONLY, os.O_RDWR,
                              os.O_RDWR | os.O_APPEND])
        if self.rng.random() < 0.3:
            fl |= os.O_TRUNC
        if self.rng.random() < 0.3:
            fl |= os.O_CREAT
        self.open_pair("open %s flags %o" % (sp(rel), fl), rel, fl, 0o644)
        if fl & (os.O_TRUNC | os.O_CREAT):
            self.forget_ino(rel)
            self.touched_dirs(rel)

    def open_pair(self, desc, rel, fl, mode):
        w, r = self.both(desc, lambda s: os.open(self.p(s, rel), fl, mode),
                         values=False)
        if w[0] == "ok":
            self.fds.append([w[1], r[1], fl, rel])
            if len(self.fds) > MAX_FDS:
                self.close_fd(0)

    def op_unlink(self, ents):
        rel = self.any_path(ents, (stat.S_IFREG, stat.S_IFLNK))
        self.both("unlink %s" % sp(rel), lambda s: os.unlink(self.p(s, rel)))
        self.touched_dirs(rel)

    def op_unlink_open(self, ents):
        """Unlink a name whose file is open: the fd keeps the bytes."""
        if not self.fds:
            return self.op_create(ents)
        f = self.rng.choice(self.fds)
        self.both("unlink open %s" % sp(f[3]),
                  lambda s: os.unlink(self.p(s, f[3])))
        self.touched_dirs(f[3])

    def op_mkdir(self, ents):
        rel = self.new_path(ents)
        mode = self.rng.choice([0o755, 0o700, 0o750, 0o1777])
        self.both("mkdir %s %o" % (sp(rel), mode),
                  lambda s: os.mkdir(self.p(s, rel), mode))
        self.touched_dirs(rel)
        self.forget_ino(rel, False)

    def op_rmdir(self, ents):
        rel = self.any_path(ents, (stat.S_IFDIR,))
        self.both("rmdir %s" % sp(rel), lambda s: os.rmdir(self.p(s, rel)))
        self.touched_dirs(rel)

    def symlink_target(self, rel):
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(NAMES[:8])
        if r < 0.55 and os.path.dirname(rel):
            return b"../" + self.rng.choice(NAMES[:8])
        if r < 0.7:
            ents = [k for k in self.entries()]
            if ents:
                return self.rng.choice(sorted(ents))  # valid from r only
        if r < 0.8:
            return b"."
        if r < 0.9:
            return os.path.basename(rel)  # a loop: ELOOP through it
        return b"/nonexistent/" + self.rng.choice(NAMES[:8])

    def op_symlink(self, ents):
        rel = self.new_path(ents)
        tgt = self.symlink_target(rel)
        self.both("symlink %s -> %s" % (sp(rel), sp(tgt)),
                  lambda s: os.symlink(tgt, self.p(s, rel)))
        self.touched_dirs(rel)
        self.forget_ino(rel, False)

    def op_link(self, ents):
        src = self.any_path(ents, (stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR))
        dst = self.new_path(ents)
        follow = self.rng.random() < 0.3
        self.both("link %s %s follow=%s" % (sp(src), sp(dst), follow),
                  lambda s: os.link(self.p(s, src), self.p(s, dst),
                                    follow_symlinks=follow))
        self.touched_dirs(dst)

    def op_rename(self, ents):
        src = self.any_path(ents)
        dst = self.any_path(ents) if self.rng.random() < 0.5 \
            else self.new_path(ents)
        fn = self.rng.choice([os.rename, os.replace])
        self.both("%s %s %s" % (fn.__name__, sp(src), sp(dst)),
                  lambda s: fn(self.p(s, src), self.p(s, dst)))
        self.renamed(src, dst)

    def renamed(self, src, dst):
        self.touched_dirs(src, dst)
        self.forget_ino(dst, False)
        self.forget_ino(src, False)

    def op_rename_dir(self, ents):
        """Directories: into their own subtree (EINVAL), onto non-empty
        directories (ENOTEMPTY), onto empty ones, to new names."""
        src = self.pick(ents, (stat.S_IFDIR,))
        if src is None:
            return self.op_mkdir(ents)
        r = self.rng.random()
        inside = [k for k in ents if k.startswith(src + b"/")]
        if r < 0.3:
            dst = os.path.join(self.rng.choice(sorted(inside) + [src]),
                               self.name())
        elif r < 0.6:
            dst = self.pick(ents, (stat.S_IFDIR,))
        else:
            dst = self.new_path(ents)
        self.both("rename dir %s %s" % (sp(src), sp(dst)),
                  lambda s: os.rename(self.p(s, src), self.p(s, dst)))
        self.renamed(src, dst)

    def op_renameat2(self, ents):
        if _renameat2 is None:
            return self.op_rename(ents)
        src = self.any_path(ents)
        dst = self.any_path(ents)
        fl = self.rng.choice([RENAME_NOREPLACE, RENAME_EXCHANGE,
                              RENAME_EXCHANGE, RENAME_NOREPLACE |
                              RENAME_EXCHANGE])
        self.both("renameat2 %s %s flags %d" % (sp(src), sp(dst), fl),
                  lambda s: renameat2(self.p(s, src), self.p(s, dst), fl))
        self.renamed(src, dst)
        self.renamed(dst, src)

    def op_chmod(self, ents):
        rel = self.any_path(ents)
        mode = self.rng.choice([0o644, 0o600, 0o755, 0o000, 0o777, 0o640,
                                0o1755, 0o2755, 0o4755, 0o7000])
        self.both("chmod %s %o" % (sp(rel), mode),
                  lambda s: os.chmod(self.p(s, rel), mode))

    def op_chown(self, ents):
        rel = self.any_path(ents)
        uid = self.rng.choice([0, 1000, 1234, -1])
        gid = self.rng.choice([0, 100, 5678, -1])
        follow = self.rng.random() < 0.7
        self.both("chown %s %d:%d follow=%s" % (sp(rel), uid, gid, follow),
                  lambda s: os.chown(self.p(s, rel), uid, gid,
                                     follow_symlinks=follow))

    def op_utime(self, ents):
        rel = self.any_path(ents)
        sec = self.rng.choice([0, 1, 946684799, 1700000000, 2 ** 31 + 5,
                               4102444800, -86400,
                               self.rng.randrange(0, 2 ** 32)])
        ns = sec * 10 ** 9 + self.rng.choice(
            [0, 1, 999999999, self.rng.randrange(10 ** 9)])
        atime = self.rng.randrange(0, 2 ** 31) * 10 ** 9
        follow = self.rng.random() < 0.8
        w, _ = self.both("utime %s mtime %d follow=%s" % (sp(rel), ns, follow),
                         lambda s: os.utime(self.p(s, rel), ns=(atime, ns),
                                            follow_symlinks=follow))
        if w[0] == "ok":
            st = os.stat(self.p(1, rel), follow_symlinks=follow)
            self.mtimes[st.st_ino] = ns

    def op_setxattr(self, ents):
        rel = self.any_path(ents, (stat.S_IFREG, stat.S_IFDIR))
        key = self.rng.choice(["user.a", "user.mav.license", "user.x y",
                               "user.\u00e9t\u00e9"])
        val = self.rng.choice([b"", b"v", b"\0\xff\n", self.data(100),
                               "CC-BY-4.0".encode()])
        fl = self.rng.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
        self.both("setxattr %s %s %r flags %d" % (sp(rel), key, val, fl),
                  lambda s: os.setxattr(self.p(s, rel), key, val, fl))

    def op_removexattr(self, ents):
        rel = self.any_path(ents, (stat.S_IFREG, stat.S_IFDIR))
        key = self.rng.choice(["user.a", "user.mav.license", "user.x y"])
        self.both("removexattr %s %s" % (sp(rel), key),
                  lambda s: os.removexattr(self.p(s, rel), key))

    def op_getxattr(self, ents):
        rel = self.any_path(ents, (stat.S_IFREG, stat.S_IFDIR))
        key = self.rng.choice(["user.a", "user.mav.license", "user.none"])
        self.both("getxattr %s %s" % (sp(rel), key),
                  lambda s: os.getxattr(self.p(s, rel), key))

    def op_fsync_dir(self, ents):
        rel = self.pick(ents, (stat.S_IFDIR,)) or b""

        def fn(s):
            fd = os.open(self.p(s, rel), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.both("fsync dir %s" % sp(rel), fn)

    def op_idle(self, ents):
        """Sit still long enough for the daemon to seal idle files (its
        default is 2 s), at most twice a run."""
        if self.idles >= 2:
            return self.op_read(ents)
        self.idles += 1
        self.history.append("idle 2.5 s")
        time.sleep(2.5)

    def op_prune(self, ents):
        """Too many entries: remove a subtree bottom-up, op by op."""
        victim = self.pick(ents)
        todo = sorted((k for k in ents
                       if k == victim or k.startswith(victim + b"/")),
                      key=lambda k: -k.count(b"/"))
        for rel in todo:
            if ents[rel] == stat.S_IFDIR:
                self.both("prune rmdir %s" % sp(rel),
                          lambda s: os.rmdir(self.p(s, rel)))
            else:
                self.both("prune unlink %s" % sp(rel),
                          lambda s: os.unlink(self.p(s, rel)))
            self.touched_dirs(rel)

    # -- ops on open files
    def fd_op(self, ents, fn):
        if not self.fds:
            return self.op_create(ents)
        fn(self.rng.randrange(len(self.fds)))

    def wrote(self, f):
        try:
            self.mtimes.pop(os.fstat(f[1]).st_ino, None)
        except OSError:
            pass

    def op_pwrite(self, ents):
        def go(i):
            f = self.fds[i]
            size = self.size_of(f)
            r = self.rng.random()
            if r < 0.5:
                off = self.rng.randrange(0, size + 1)
            elif r < 0.8:
                off = size + self.rng.randrange(1, 5000)  # a hole
            else:
                off = self.rng.randrange(0, MAX_SIZE // 2)
            n = self.rng.choice([1, 7, 100, 4096, 5000,
                                 self.rng.randrange(1, 70000)])
            n = max(1, min(n, MAX_SIZE - off))
            buf = self.data(n)
            self.both("pwrite fd(%s) off %d len %d" % (sp(f[3]), off, n),
                      lambda s: os.pwrite(f[s], buf, off))
            self.wrote(f)
        self.fd_op(ents, go)

    def op_write(self, ents):
        def go(i):
            f = self.fds[i]
            buf = self.data(self.rng.choice([3, 512, 9000]))
            if self.size_of(f) + len(buf) > MAX_SIZE:
                return
            self.both("write fd(%s) len %d" % (sp(f[3]), len(buf)),
                      lambda s: os.write(f[s], buf))
            self.wrote(f)
        self.fd_op(ents, go)

    def op_ftruncate(self, ents):
        def go(i):
            f = self.fds[i]
            size = self.size_of(f)
            n = self.rng.choice([0, size // 2, size, size + 1,
                                 size + 10000, self.rng.randrange(MAX_SIZE)])
            n = min(n, MAX_SIZE)
            self.both("ftruncate fd(%s) %d" % (sp(f[3]), n),
                      lambda s: os.ftruncate(f[s], n))
            self.wrote(f)
        self.fd_op(ents, go)

    def op_fsync(self, ents):
        def go(i):
            f = self.fds[i]
            self.both("fsync fd(%s)" % sp(f[3]), lambda s: os.fsync(f[s]))
        self.fd_op(ents, go)

    def op_fdatasync(self, ents):
        def go(i):
            f = self.fds[i]
            self.both("fdatasync fd(%s)" % sp(f[3]),
                      lambda s: os.fdatasync(f[s]))
        self.fd_op(ents, go)

    def op_truncate(self, ents):
        # truncate(2) by path, not through an open file
        rel = self.any_path(ents, (stat.S_IFREG,))
        n = self.rng.choice([0, 1, 4095, 4097, 100000,
                             self.rng.randrange(MAX_SIZE)])
        w, _ = self.both("truncate %s %d" % (sp(rel), n),
                         lambda s: os.truncate(self.p(s, rel), n))
        if w[0] == "ok":
            self.forget_mtime(rel)

    def op_utime_now(self, ents):
        # utimensat with UTIME_NOW for both times (touch)
        rel = self.any_path(ents)
        w, _ = self.both("utime %s now" % sp(rel),
                         lambda s: os.utime(self.p(s, rel)))
        if w[0] == "ok":
            self.forget_mtime(rel)

    def op_mmap_write(self, ents):
        # a shared writable mapping of a regular file, changed in place,
        # msync'd and unmapped (sizes and offsets stay inside the file)
        rel = self.any_path(ents, (stat.S_IFREG,))
        seed = self.rng.randrange(2 ** 32)

        def fn(s):
            rng = random.Random(seed)
            fd = os.open(self.p(s, rel), os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                if size == 0:
                    return 0
                off = rng.randrange(size)
                n = min(size - off, rng.choice([1, 100, 5000, 70000]))
                m = mmap.mmap(fd, size)
                m[off:off + n] = rng.randbytes(n)
                m.flush()
                m.close()
                return n
            finally:
                os.close(fd)
        w, _ = self.both("mmap write %s" % sp(rel), fn)
        if w[0] == "ok":
            self.forget_mtime(rel)

    def forget_mtime(self, rel):
        # the two sides' clocks differ: no mtime to compare any more
        try:
            self.mtimes.pop(os.stat(self.p(1, rel)).st_ino, None)
        except OSError:
            pass

    def op_read(self, ents):
        self.fd_op(ents, self.read_fd)

    def read_fd(self, i):
        """The open file's bytes, size and link count (0 once unlinked)."""
        f = self.fds[i]

        def fn(s):
            st = os.fstat(f[s])
            return (os.pread(f[s], MAX_SIZE + 1, 0), st.st_size, st.st_nlink,
                    oct(st.st_mode))
        self.both("read fd(%s)" % sp(f[3]), fn)

    def op_close(self, ents):
        self.fd_op(ents, self.close_fd)

    def close_fd(self, i):
        f = self.fds.pop(i)
        self.both("close fd(%s)" % sp(f[3]), lambda s: os.close(f[s]))

    # -- checks
    def mtime_expect(self, ref):
        """relpath -> mtime for entries whose mtime was set explicitly."""
        out = {}
        for k, (d, st) in ref[0].items():
            want = self.mtimes.get(st.st_ino)
            if want is None:
                continue
            if st.st_mtime_ns != want:
                self.fail("test bug: reference mtime of %s is %d, not %d" %
                          (sp(k), st.st_mtime_ns, want))
            out[k] = want
        return out

    def compare(self):
        ref = walk(self.cmp[1])
        mt = self.mtime_expect(ref)
        self.mtime_checks += len(mt)
        bad = diff_trees(walk(self.cmp[0]), ref, mt)
        if bad:
            self.fail("after %s\n%s\nlast ops:\n  %s" %
                      (self.history[-1], "\n".join(bad),
                       "\n  ".join(self.history[-15:])))
        return ref

    def snapshot(self, ref):
        out = subprocess.run([self.mavctl, "snapshot", "--allow-empty", "-m",
                              "random seed %d step %d" % (self.seed,
                                                          self.step)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            self.fail("snapshot failed: %s %s" % (out.stdout, out.stderr))
        ver = out.stdout.split()[0]
        self.history.append("snapshot -> %s" % ver)
        dst = os.path.join(self.snaps, b"ref-" + ver.encode())
        copy_tree(self.cmp[1], dst)
        mt = self.mtime_expect(ref)
        # What the working tree shows right after the snapshot, times
        # included (the kernel's under the writeback cache): the
        # snapshot must have frozen exactly that.
        shown = walk(self.cmp[0])[0]
        mt.update((k, st.st_mtime_ns) for k, (_, st) in shown.items())
        with open(dst + b".json", "w") as f:
            json.dump({"sub": self.sub.hex(),
                       "mtimes": {k.hex(): v for k, v in mt.items()}}, f)
        self.taken.append(ver)
        bad = check_snapshot(self.mnt, dst)
        if bad:
            self.fail("@%s differs from the reference right away:\n%s" %
                      (ver, "\n".join(bad)))

    # -- main loop
    OPS = [
        ("create", 8), ("open", 6), ("pwrite", 12), ("write", 4),
        ("ftruncate", 5), ("fsync", 2), ("read", 5), ("close", 5),
        ("unlink", 4), ("unlink_open", 2), ("mkdir", 5), ("rmdir", 3),
        ("symlink", 3), ("link", 4), ("rename", 7), ("rename_dir", 3),
        ("renameat2", 5), ("chmod", 3), ("chown", 2), ("utime", 4),
        ("setxattr", 4), ("removexattr", 2), ("getxattr", 2),
        ("fsync_dir", 1), ("idle", 1), ("fdatasync", 1), ("truncate", 2),
        ("utime_now", 1), ("mmap_write", 2),
    ]
    GROW = {"create", "open", "mkdir", "symlink", "link"}

    def run(self, steps):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        t0 = time.monotonic()
        nops = 0
        ref = None
        for self.step in range(1, steps + 1):
            ents = self.entries()
            op = self.rng.choices(names, weights)[0]
            if len(ents) >= MAX_ENTRIES and op in self.GROW:
                op = "prune"
            self.counts[op] = self.counts.get(op, 0) + 1
            n0 = len(self.history)
            getattr(self, "op_" + op)(ents)
            nops += len(self.history) - n0
            ref = self.compare()
            if self.every and self.step % self.every == 0:
                self.snapshot(ref)
        self.step += 1
        for i in range(len(self.fds)):
            f = self.fds[i]
            if f[2] & os.O_ACCMODE != os.O_WRONLY:
                self.read_fd(i)
        while self.fds:
            self.close_fd(len(self.fds) - 1)
        ref = self.compare()
        if self.every:
            self.snapshot(ref)
        for ver in self.taken:
            bad = check_snapshot(self.mnt,
                                 os.path.join(self.snaps,
                                              b"ref-" + ver.encode()))
            if bad:
                self.fail("@%s changed since it was taken:\n%s" %
                          (ver, "\n".join(bad)))
        dt = time.monotonic() - t0
        print("seed %d: %d steps, %d ops, %d snapshots, %d entries at the "
              "end, %.1f s, %.0f ops/s" %
              (self.seed, steps, nops, len(self.taken),
               len(self.entries()), dt, nops / dt))
        print("# op mix: " + " ".join(
            "%s=%d" % kv for kv in sorted(self.counts.items())))
        print("# outcomes: " + " ".join(
            "%s=%d" % kv for kv in sorted(self.results.items())) +
            "; explicit mtimes compared %d times" % self.mtime_checks)


def copy_tree(src, dst):
    """A deep copy: symlinks as symlinks, hard links as hard links,
    modes, owners, times and xattrs (shutil.copystat copies xattrs)."""
    seen = {}

    def cp(s, d):
        st = os.lstat(s)
        if st.st_ino in seen:
            os.link(seen[st.st_ino], d)
            return d
        shutil.copy2(s, d)
        seen[st.st_ino] = d
        return d
    shutil.copytree(src, dst, symlinks=True, copy_function=cp)
    for top, dirs, files in os.walk(src):
        for n in [b""] + dirs + files:
            s = os.path.join(top, n) if n else top
            d = os.path.join(dst, os.path.relpath(s, src))
            st = os.lstat(s)
            if not stat.S_ISLNK(st.st_mode):
                os.chown(d, st.st_uid, st.st_gid)
                os.chmod(d, stat.S_IMODE(st.st_mode))
            else:
                os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns),
                     follow_symlinks=False)


def check_snapshot(mnt, copy):
    with open(copy + b".json") as f:
        meta = json.load(f)
    ver = os.path.basename(copy)[len(b"ref-"):]
    sub = bytes.fromhex(meta["sub"])
    mt = {bytes.fromhex(k): v for k, v in meta["mtimes"].items()}
    view = os.path.join(mnt, b"@" + ver, sub)
    bad = diff_trees(walk(view, snapshot=True), walk(copy), mt)
    for rel in [b"r/new", b"r"]:
        o = outcome(lambda: os.mkdir(os.path.join(view, rel)))
        if o != ("err", "EROFS") and o != ("err", "EEXIST"):
            bad.append("mkdir in @%s/%r: %r, not EROFS" % (ver, rel, o))
    return bad


def compare_all(a):
    """MNT/main against the reference root (no mtimes): after a remount."""
    bad = diff_trees(walk(os.path.join(os.fsencode(a.mnt), b"main")),
                     walk(os.fsencode(a.ref)), {})
    print("compared the working tree with the reference: %d differences" %
          len(bad))
    print("\n".join(bad))
    return 1 if bad else 0


def recheck(a):
    snaps = os.fsencode(a.snaps)
    mnt = os.fsencode(a.mnt)
    n = 0
    bad = []
    for name in sorted(os.listdir(snaps)):
        if name.startswith(b"ref-v") and name.endswith(b".json"):
            copy = os.path.join(snaps, name[:-len(b".json")])
            bad += ["%s: %s" % (name, b) for b in check_snapshot(mnt, copy)]
            n += 1
    print("rechecked %d snapshots, %d differences" % (n, len(bad)))
    print("\n".join(bad))
    return 1 if bad or n == 0 else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "recheck", "compare"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--mnt", required=True)
    ap.add_argument("--ref")
    ap.add_argument("--snaps", required=True)
    ap.add_argument("--mavctl", default="mavctl")
    ap.add_argument("--log", action="store_true")
    a = ap.parse_args()
    if a.mode == "recheck":
        return recheck(a)
    if a.mode == "compare":
        return compare_all(a)
    os.umask(0o022)
    run = Run(a)
    try:
        run.run(a.steps)
    except Mismatch as e:
        print("MISMATCH %s" % e)
        return 1
    finally:
        for f in run.fds:
            for fd in f[:2]:
                try:
                    os.close(fd)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
