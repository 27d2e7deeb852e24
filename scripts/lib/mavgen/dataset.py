"""`generate`: plan a dataset of a given size, then write it file by file.

The plan (which files, how big) comes from one seeded stream; each file's
content comes from its own stream, seeded by (seed, kind, index). So a
given (seed, size) always yields the same bytes, names, modes and mtimes.

Mix by bytes: weights ~8%, video ~8%, audio ~7%, meshes ~4%, the rest
images (50 KiB - 2 MiB each, log-uniform), plus captions.jsonl.
"""

import math
import os

from . import blobs, captions, hostile, mesh, png, wav
from .common import Writer, rng_for

SHARE = {"weights": 0.08, "video": 0.08, "audio": 0.07, "meshes": 0.04}
IMG_MIN, IMG_MAX = 50 << 10, 2 << 20
PER_SHARD = 1000


def base_time(seed):
    return 1_650_000_000 + (seed % 1000) * 86_400


def image_path(i):
    return "images/%04d/img_%06d.png" % (i // PER_SHARD, i)


def image_size(rng, left=None):
    n = int(math.exp(rng.uniform(math.log(IMG_MIN), math.log(IMG_MAX))))
    if left is not None and left < IMG_MAX + IMG_MIN:
        n = max(IMG_MIN, min(n, left))
    return n


def _split(rng, total, count):
    cuts = sorted(rng.uniform(0.5, 1.5) for _ in range(count))
    s = sum(cuts)
    return [max(4096, int(total * c / s)) for c in cuts]


def plan(seed, size):
    """{kind: [args...]} for every file; deterministic in (seed, size)."""
    rng = rng_for(seed, "plan", size)
    p = {}
    big = size >= (256 << 20)
    nw = rng.randint(2, 3) if big else 1
    p["weights"] = _split(rng, int(size * SHARE["weights"]), nw)
    p["video"] = _split(rng, int(size * SHARE["video"]),
                        rng.randint(2, 4) if big else 2)
    used = sum(p["weights"]) + sum(p["video"])
    p["audio"], left = [], size * SHARE["audio"]
    while left > 0 or not p["audio"]:
        rate, ch, sec = wav.plan(rng)
        p["audio"].append((rate, ch, sec))
        left -= int(rate * sec) * 2 * ch
        used += int(rate * sec) * 2 * ch
    p["meshes"], left = [], size * SHARE["meshes"]
    while left > 0 or not p["meshes"]:
        t = rng.randint(150_000, 600_000)
        p["meshes"].append(t)
        left -= t
        used += t
    left = size - used
    p["images"] = []
    while left >= IMG_MIN or not p["images"]:
        n = image_size(rng, left)
        p["images"].append(n)
        left -= n + 200  # and its caption line
    return p


def write_image(w, seed, i, target, stats):
    rng = rng_for(seed, "img", i)
    data = png.render(rng, *png.plan(rng, target))
    w.write(image_path(i), data)
    stats.add("images", len(data))
    return captions.record(rng_for(seed, "cap", i), image_path(i))


def weights_name(i, n):
    if n == 1:
        return "weights/model.safetensors"
    return "weights/model-%05d-of-%05d.safetensors" % (i + 1, n)


class Stats:
    def __init__(self):
        self.kinds = {}

    def add(self, kind, n):
        c, b = self.kinds.get(kind, (0, 0))
        self.kinds[kind] = (c + 1, b + n)


def generate(dest, seed, size, names="plain", progress=None):
    p = plan(seed, size)
    w = Writer(dest, base_time(seed))
    w.makedirs("")
    stats = Stats()
    lines = []
    for i, target in enumerate(p["images"]):
        lines.append(write_image(w, seed, i, target, stats))
        if progress:
            progress(w.bytes)
    for i, args in enumerate(p["audio"]):
        n = w.write("audio/clip_%05d.wav" % i,
                    wav.render(rng_for(seed, "wav", i), *args))
        stats.add("audio", n)
    for i, target in enumerate(p["meshes"]):
        rng = rng_for(seed, "mesh", i)
        name = "rock_%04d" % i
        n = w.write("meshes/%s.obj" % name,
                    mesh.render(rng, name, *mesh.plan(rng, target)))
        stats.add("meshes", n)
    for i, target in enumerate(p["video"]):
        stats.add("video", w.write("video/clip_%03d.mp4" % i,
                                   blobs.video(seed, i, target)))
    for i, target in enumerate(p["weights"]):
        n = w.write(weights_name(i, len(p["weights"])),
                    blobs.weights(seed, i, target))
        stats.add("weights", n)
    stats.add("captions", w.write("captions.jsonl", "".join(lines).encode()))
    if names == "hostile":
        before = w.bytes
        count = hostile.generate(rng_for(seed, "hostile"), w)
        stats.kinds["hostile"] = (count, w.bytes - before)
    w.seal_dirs()
    return stats
