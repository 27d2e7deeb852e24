"""OBJ meshes: bumpy UV spheres ("rocks") with texture coordinates, as text.

Vertex count is chosen from the target size (about 110 bytes of OBJ text
per vertex), so a mesh is a few hundred KB.
"""

import math

BYTES_PER_VERTEX = 110


def plan(rng, target):
    verts = max(64, target // BYTES_PER_VERTEX)
    rings = max(4, int(math.sqrt(verts / 2)))
    segs = max(8, verts // rings)
    return rings, segs


def render(rng, name, rings, segs):
    bumps = [(rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.3),
              rng.uniform(0.02, 0.12)) for _ in range(5)]
    out = ["# mav gen-dataset mesh\n", "o %s\n" % name]
    for r in range(rings + 1):
        th = math.pi * r / rings
        for s in range(segs):
            ph = 2 * math.pi * s / segs
            rad = 1.0 + sum(a * math.sin(fa * th + p) * math.cos(fb * ph)
                            for fa, fb, p, a in bumps)
            rad += rng.uniform(-0.01, 0.01)
            out.append("v %.6f %.6f %.6f\n" % (
                rad * math.sin(th) * math.cos(ph), rad * math.cos(th),
                rad * math.sin(th) * math.sin(ph)))
    for r in range(rings + 1):
        for s in range(segs):
            out.append("vt %.6f %.6f\n" % (s / segs, r / rings))
    out.append("s 1\n")
    for r in range(rings):
        for s in range(segs):
            a = r * segs + s + 1
            b = r * segs + (s + 1) % segs + 1
            c, d = a + segs, b + segs
            out.append("f %d/%d %d/%d %d/%d\n" % (a, a, c, c, b, b))
            out.append("f %d/%d %d/%d %d/%d\n" % (b, b, c, c, d, d))
    return "".join(out).encode()
