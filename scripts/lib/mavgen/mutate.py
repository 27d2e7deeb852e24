"""`mutate`: turn a generated tree into its next revision, in place.

Given the tree and a seed, always the same change:
  - 5% of the images get new content under the same name: half are
    repainted in a band of rows (a local edit, the rest of the file keeps
    its bytes), half are regenerated at the same dimensions;
  - 5% new images are added after the highest index, with captions;
  - 1% of the caption lines are edited in place, the new ones appended;
  - one mesh is rewritten.
Choices are seeded by (seed, the sorted list of image names), and new
mtimes start an hour after the newest mtime in the tree.
"""

import hashlib
import os
import re

from . import captions, mesh, png
from .common import Writer, rng_for
from .dataset import image_path, image_size

IMG_RE = re.compile(r"img_(\d+)\.png$")


def list_images(root):
    out = []
    top = os.path.join(root, "images")
    for shard in sorted(os.listdir(top)) if os.path.isdir(top) else ():
        for name in sorted(os.listdir(os.path.join(top, shard))):
            if IMG_RE.match(name):
                out.append("images/%s/%s" % (shard, name))
    return out


def newest_mtime(root):
    t = 0
    for top, dirs, files in os.walk(root):
        for name in files + dirs:
            t = max(t, int(os.lstat(os.path.join(top, name)).st_mtime))
    return t


def replace_image(w, rng, rel, edit):
    with open(w.path(rel), "rb") as f:
        old = f.read()
    if edit:
        data = png.retouch(rng, old)
    else:
        width, height, ctype, _, ratio = png.decode(old)
        data = png.render(rng, width, height, ctype, png.kind_of(ratio))
    w.write(rel, data)


def add_images(w, seed, digest, rng, images, count):
    start = 1 + max(int(IMG_RE.search(p).group(1)) for p in images)
    lines = []
    for i in range(start, start + count):
        r = rng_for(seed, "mutate-img", digest, i)
        data = png.render(r, *png.plan(r, image_size(rng)))
        w.write(image_path(i), data)
        lines.append(captions.record(rng_for(seed, "mutate-cap", digest, i),
                                     image_path(i)))
    return lines


def edit_captions(w, rng, new_lines):
    path = w.path("captions.jsonl")
    with open(path, "rb") as f:
        lines = f.read().decode().splitlines(keepends=True)
    k = max(1, round(0.01 * len(lines))) if lines else 0
    for i in rng.sample(range(len(lines)), k):
        lines[i] = captions.recaption(rng, lines[i])
    w.write("captions.jsonl", "".join(lines + new_lines).encode())
    return k


def rewrite_mesh(w, rng):
    top = w.path("meshes")
    names = sorted(n for n in os.listdir(top) if n.endswith(".obj")) \
        if os.path.isdir(top) else []
    if not names:
        return None
    name = rng.choice(names)
    size = os.path.getsize(os.path.join(top, name))
    stem = name[:-4]
    w.write("meshes/" + name, mesh.render(rng, stem, *mesh.plan(rng, size)))
    return "meshes/" + name


def mutate(root, seed):
    images = list_images(root)
    if not images:
        raise ValueError("%s has no images/*/img_*.png to mutate" % root)
    digest = hashlib.sha256("\n".join(images).encode()).hexdigest()[:16]
    rng = rng_for(seed, "mutate", digest)
    w = Writer(root, newest_mtime(root) + 3600)
    n = len(images)
    k = max(1, round(0.05 * n))
    chosen = sorted(rng.sample(images, k))
    for j, rel in enumerate(chosen):
        replace_image(w, rng_for(seed, "mutate-img", digest, rel), rel,
                      edit=(j % 2 == 0))
    new_lines = add_images(w, seed, digest, rng, images, k)
    edited = edit_captions(w, rng, new_lines)
    meshed = rewrite_mesh(w, rng)
    w.seal_dirs(w.touched_dirs | {root})
    return {"images": n, "replaced": k, "added": k,
            "captions_edited": edited, "mesh": meshed}
