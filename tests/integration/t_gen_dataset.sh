#!/usr/bin/env bash
# shellcheck disable=SC2317 # the check functions are called through ok()
# t_gen_dataset.sh: scripts/gen-dataset makes the data the other tests and
# the benchmarks trust, so check it: deterministic (across seeds and both
# Python interpreters), valid files, captions that match the images, the
# stated mutate fractions, hostile names, and manyfiles. TAP output.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
PY=python3
SYS_PY=/usr/bin/python3


gen() { "$PY" "$GEN" "$@" >/dev/null; }
thash() { "$PY" "$GEN" hash "$1"; }
same_hash() { [ "$(thash "$1")" = "$(thash "$2")" ]; }
diff_hash() { [ "$(thash "$1")" != "$(thash "$2")" ]; }
# A listing that does not use gen-dataset's own hashing.
listing() { (cd "$1" && find . -printf '%P|%y|%m|%T@|%s|%n|%l\n' | sort); }
same_listing() { diff <(listing "$1") <(listing "$2") && diff -r "$1" "$2"; }

echo "1..22"

gen generate "$T/a" --seed 1 --size 12M
gen generate "$T/b" --seed 1 --size 12M
"$SYS_PY" "$GEN" generate "$T/s" --seed 1 --size 12M >/dev/null
gen generate "$T/c" --seed 2 --size 12M
ok "same seed, same tree (gen-dataset hash)" same_hash "$T/a" "$T/b"
ok "same seed, same tree (find listing, diff -r)" same_listing "$T/a" "$T/b"
ok "$SYS_PY and $PY generate the same tree" same_hash "$T/a" "$T/s"
ok "another seed gives another tree" diff_hash "$T/a" "$T/c"
refuses() { ! "$PY" "$GEN" generate "$1" --seed 1 --size 1M; }
ok "generate refuses a non-empty destination" refuses "$T/a"

# check.py: validators shared by the steps below.
cat >"$T/check.py" <<'PYEOF'
import json, os, struct, sys, wave, zlib

CH = {0: 1, 2: 3, 4: 2, 6: 4}

def images(root):
    out = []
    for top, _, files in os.walk(os.path.join(root, "images")):
        out += [os.path.relpath(os.path.join(top, f), root)
                for f in files if f.endswith(".png")]
    return sorted(out)

def png_ok(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
    pos, kinds, idat = 8, [], b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, "crc of %r" % kind
        kinds.append((kind, n))
        if kind == b"IHDR":
            w, h, depth, ct = struct.unpack(">IIBB", body[:10])
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert pos == len(data), "trailing bytes"
    assert kinds[0] == (b"IHDR", 13) and kinds[-1] == (b"IEND", 0), kinds
    raw = zlib.decompress(idat)
    line = 1 + w * CH[ct] * depth // 8
    assert len(raw) == h * line, "pixel data size"
    assert all(b <= 4 for b in raw[::line]), "filter bytes"
    return len(data)

def cmd_pngs(root):
    paths = images(root)
    assert paths, "no images"
    total = packed = 0
    for p in paths:
        size = png_ok(os.path.join(root, p))
        assert 40 << 10 <= size <= (2 << 20) + 4096, (p, size)
        total += size
        packed += len(zlib.compress(open(os.path.join(root, p), "rb").read(), 6))
    assert packed > 0.97 * total, "PNGs compress: %d -> %d" % (total, packed)
    print(len(paths), "PNGs ok")

def cmd_captions(root):
    lines = open(os.path.join(root, "captions.jsonl"), "rb").read().split(b"\n")
    assert lines[-1] == b"", "no final newline"
    recs = [json.loads(l) for l in lines[:-1]]
    for r in recs:
        assert list(r) == ["path", "caption", "license", "source"], r
        assert all(isinstance(v, str) and v for v in r.values()), r
    paths = [r["path"] for r in recs]
    assert len(set(paths)) == len(paths), "duplicate paths"
    assert sorted(paths) == images(root), "captions and images differ"

def cmd_mix(root, size):
    total = 0
    for kind, ext in (("images", ".png"), ("audio", ".wav"),
                      ("meshes", ".obj"), ("video", ".mp4"),
                      ("weights", ".safetensors")):
        files = [os.path.join(t, f) for t, _, fs in os.walk(os.path.join(root, kind))
                 for f in fs]
        assert files and all(f.endswith(ext) for f in files), kind
        total += sum(os.path.getsize(f) for f in files)
    for f in files:  # weights: header length + JSON header
        with open(f, "rb") as fh:
            n, = struct.unpack("<Q", fh.read(8))
            head = json.loads(fh.read(n))
        end = max(v["data_offsets"][1] for k, v in head.items() if k != "__metadata__")
        assert os.path.getsize(f) == 8 + n + end, "safetensors size"
    for t, _, fs in os.walk(os.path.join(root, "audio")):
        for f in fs:
            with wave.open(os.path.join(t, f)) as w:
                secs = w.getnframes() / w.getframerate()
                assert w.getsampwidth() == 2 and 1.9 < secs < 6.1, (f, secs)
    want = int(size)
    assert 0.9 * want < total < 1.1 * want, "total %d, asked %d" % (total, want)

def entries(listing):
    out = {}
    for line in open(listing):
        f = line.rstrip("\n").split("\t")
        if len(f) == 7:  # the last line is the digest alone
            out[f[-1]] = f[:-1]
    return out

def cmd_mutated(before, after, orig_root, new_root):
    b, a = entries(before), entries(after)
    imgs = [p for p in b if p.startswith("images/") and p.endswith(".png")]
    n = len(imgs)
    k = max(1, round(0.05 * n))
    changed = [p for p in imgs if a[p][5] != b[p][5]]
    added = [p for p in a if p not in b and p.endswith(".png")]
    assert len(changed) == k, "replaced %d of %d, want %d" % (len(changed), n, k)
    assert len(added) == k, "added %d, want %d" % (len(added), k)
    assert 0.03 <= k / n <= 0.08, "fraction %d/%d" % (k, n)
    assert not [p for p in a if p not in b and not p.endswith(".png")
                and a[p][0] == "f"], "unexpected new files"
    meshes = [p for p in b if p.startswith("meshes/") and a[p][5] != b[p][5]]
    assert len(meshes) == 1, meshes
    for p in b:
        if p.split("/")[0] in ("audio", "video", "weights") and b[p][0] == "f":
            assert a[p] == b[p], "changed " + p
    old = open(os.path.join(orig_root, "captions.jsonl")).read().splitlines()
    new = open(os.path.join(new_root, "captions.jsonl")).read().splitlines()
    assert len(new) == len(old) + k, "caption lines"
    edited = sum(1 for x, y in zip(old, new) if x != y)
    assert edited == max(1, round(0.01 * len(old))), "edited %d" % edited
    assert sorted(json.loads(l)["path"] for l in new[len(old):]) == sorted(added)
    print("images %d: replaced %d, added %d; captions edited %d" %
          (n, len(changed), len(added), edited))

def cmd_hostile(root):
    h = os.path.join(os.fsencode(root), b"hostile")
    names = []
    for top, dirs, files in os.walk(h):
        names += dirs + files
    def has(pred, what):
        assert any(pred(x) for x in names), what
    has(lambda x: b" " in x, "space")
    has(lambda x: b"\n" in x, "newline")
    has(lambda x: x.startswith(b"-"), "leading dash")
    has(lambda x: len(x) == 255, "255-byte name")
    def bad_utf8(x):
        try:
            x.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True
    has(bad_utf8, "invalid UTF-8")
    has(lambda x: not bad_utf8(x) and any(c >= 0x80 for c in x), "UTF-8")
    paths = [os.path.join(t, f) for t, ds, fs in os.walk(h) for f in fs + ds]
    assert any(os.path.getsize(p) == 0 and not os.path.islink(p) for p in paths), "empty"
    links = [p for p in paths if os.path.islink(p)]
    assert links and all(os.path.exists(p) for p in links), "symlinks"
    hard = [p for p in paths if not os.path.islink(p) and os.path.isfile(p)
            and os.stat(p).st_nlink == 2]
    assert len(hard) == 2 and os.stat(hard[0]).st_ino == os.stat(hard[1]).st_ino, hard
    cmd_captions(root)  # hostile files stay out of the captions

def cmd_manyfiles(root, files, per_dir):
    dirs = sorted(os.listdir(root))
    assert len(dirs) == -(-int(files) // int(per_dir)), dirs
    count = 0
    for d in dirs:
        names = os.listdir(os.path.join(root, d))
        assert len(names) <= int(per_dir)
        for f in names:
            assert 1024 <= os.path.getsize(os.path.join(root, d, f)) <= 4096
        count += len(names)
    assert count == int(files), count

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
PYEOF
check() { "$PY" "$T/check.py" "$@"; }

ok "every PNG is valid (signature, IHDR..IEND, CRCs, pixel size), 50 KiB-2 MiB, incompressible" \
	check pngs "$T/a"
ok "captions.jsonl: one valid record per image, fields path/caption/license/source" \
	check captions "$T/a"
ok "mix: images, audio, meshes, video, weights; valid WAV and safetensors; size ~12M" \
	check mix "$T/a" $((12 << 20))

gen generate "$T/m" --seed 3 --size 40M
cp -a "$T/m" "$T/m0"
cp -a "$T/m" "$T/m2"
cp -a "$T/m" "$T/m3"
"$PY" "$GEN" hash --list "$T/m" >"$T/before"
gen mutate "$T/m" --seed 5
"$SYS_PY" "$GEN" mutate "$T/m2" --seed 5 >/dev/null
gen mutate "$T/m3" --seed 6
"$PY" "$GEN" hash --list "$T/m" >"$T/after"
ok "mutate: 5% replaced, 5% added, 1% captions edited, one mesh, rest untouched" \
	check mutated "$T/before" "$T/after" "$T/m0" "$T/m"
ok "mutate: same tree and seed, same result (both interpreters)" \
	same_hash "$T/m" "$T/m2"
ok "mutate: another seed, another result" diff_hash "$T/m" "$T/m3"
ok "mutated tree: PNGs still valid" check pngs "$T/m"
ok "mutated tree: captions still match images" check captions "$T/m"
cp -a "$T/m" "$T/m4"
gen mutate "$T/m" --seed 5
gen mutate "$T/m4" --seed 5
ok "mutate twice: the second revision is deterministic too" \
	same_hash "$T/m" "$T/m4"
ok "mutate twice: the second revision differs from the first" \
	diff_hash "$T/m" "$T/m2"

gen generate "$T/h" --seed 4 --size 4M --names hostile
gen generate "$T/h2" --seed 4 --size 4M --names hostile
ok "hostile: spaces, newline, UTF-8, invalid UTF-8, dash, 255 bytes, empty, symlink, hard link" \
	check hostile "$T/h"
ok "hostile: deterministic" same_hash "$T/h" "$T/h2"
ok "hostile: find listing and diff -r agree" same_listing "$T/h" "$T/h2"
ok "hostile tree can be mutated" gen mutate "$T/h" --seed 1

gen manyfiles "$T/f" --files 2500 --per-dir 1000 --seed 9
gen manyfiles "$T/f2" --files 2500 --per-dir 1000 --seed 9
ok "manyfiles: 2500 files in 3 dirs, 1-4 KiB each" check manyfiles "$T/f" 2500 1000
ok "manyfiles: deterministic" same_hash "$T/f" "$T/f2"
# Fixed mtimes: none recent, one distinct second per file.
mtimes_fixed() {
	[ "$(find "$1" -newermt "2024-01-01" | wc -l)" = 0 ] &&
		[ "$(find "$1" -type f -printf '%T@\n' | sort -u | wc -l)" = \
			"$(find "$1" -type f | wc -l)" ]
}
ok "mtimes are fixed (not the time of generation) and distinct per file" \
	mtimes_fixed "$T/a"

finish
