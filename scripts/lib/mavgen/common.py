"""Shared helpers: seeded randomness, sizes, and deterministic file writing."""

import os
import random
import re

PIECE = 64 * 1024  # randbytes is fastest in pieces of about this size

FILE_MODE = 0o644
DIR_MODE = 0o755


def rng_for(seed, *parts):
    """A Random whose stream depends only on seed and parts."""
    return random.Random(":".join(str(p) for p in (seed,) + parts))


def noise(rng, n):
    """n random-looking bytes from rng, generated in fixed-size pieces."""
    if n <= PIECE:
        return rng.randbytes(n)
    out = bytearray()
    while len(out) < n:
        out += rng.randbytes(min(PIECE, n - len(out)))
    return bytes(out)


def noise_stream(rng, n):
    """Yield n random-looking bytes in pieces (bounded memory)."""
    left = n
    while left > 0:
        k = min(PIECE * 16, left)
        yield noise(rng, k)
        left -= k


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """'20M', '1.5G', '4096', '512K', '2GiB' -> bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*",
                     text.upper())
    if not m:
        raise ValueError("bad size %r (want e.g. 20M, 1.5G)" % text)
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else \
                "%.1f %s" % (n, unit)
        n /= 1024.0
    return str(n)


class Writer:
    """Writes files with fixed modes and mtimes that advance per file.

    Every file gets mtime = base + k * step for the k-th file written, so
    a tree's timestamps depend only on the seed and the generation order.
    """

    def __init__(self, root, base_time, step=7):
        self.root = root
        self.clock = base_time
        self.step = step
        self.files = 0
        self.bytes = 0
        self.touched_dirs = set()

    def tick(self):
        self.clock += self.step
        return self.clock

    def path(self, rel):
        return os.path.join(self.root, rel)

    def _prepare(self, rel):
        full = self.path(rel)
        parent = os.path.dirname(full)
        self.makedirs(os.path.dirname(rel))
        self.touched_dirs.add(parent)
        return full

    def makedirs(self, rel):
        full = self.path(rel) if rel else self.root
        if not os.path.isdir(full):
            os.makedirs(full, exist_ok=True)
            # chmod each new level so the umask does not leak into the tree
            d = full
            while d != self.root and len(d) > len(self.root):
                os.chmod(d, DIR_MODE)
                d = os.path.dirname(d)

    def write(self, rel, data, mode=FILE_MODE):
        """Write bytes, or an iterable of bytes pieces, to root/rel."""
        full = self._prepare(rel)
        n = 0
        with open(full, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
                n = len(data)
            else:
                for piece in data:
                    f.write(piece)
                    n += len(piece)
        self.finish(full, mode)
        self.files += 1
        self.bytes += n
        return n

    def finish(self, full, mode=FILE_MODE):
        os.chmod(full, mode)
        t = self.tick()
        os.utime(full, (t, t))

    def seal_dirs(self, dirs=None):
        """Give directories a deterministic mtime, deepest first."""
        t = self.tick()
        if dirs is None:
            dirs = [self.root]
            for top, subdirs, _ in os.walk(self.root):
                dirs.extend(os.path.join(top, d) for d in subdirs)
        for d in sorted(set(dirs), key=lambda p: (-p.count(os.sep), p)):
            if os.path.isdir(d) and not os.path.islink(d):
                os.chmod(d, DIR_MODE)
                os.utime(d, (t, t))
