"""`manyfiles`: a wide tree of small files for metadata benchmarks.

d000/f000000.dat ... with per_dir files per directory, sizes uniform in
[min_size, max_size]. Mostly text-like lines (a little compressible) and
some random bytes, as in a real tree of small configs, labels and thumbnails.
"""

from .common import Writer, noise, rng_for
from .dataset import base_time

WORDS = (b"alpha", b"beta", b"gamma", b"delta", b"label", b"value",
         b"frame", b"token", b"score", b"bbox", b"class", b"split")


def _text(rng, n):
    out = bytearray()
    while len(out) < n:
        out += b"%s=%d %s\n" % (rng.choice(WORDS), rng.getrandbits(32),
                                rng.randbytes(6).hex().encode())
    return bytes(out[:n])


def generate(dest, seed, files, per_dir=1000, min_size=1024, max_size=4096):
    w = Writer(dest, base_time(seed), step=1)
    w.makedirs("")
    rng = rng_for(seed, "manyfiles")
    for i in range(files):
        n = rng.randint(min_size, max_size)
        data = noise(rng, n) if rng.random() < 0.3 else _text(rng, n)
        w.write("d%03d/f%06d.dat" % (i // per_dir, i), data)
    w.seal_dirs()
    return w.files, w.bytes
