"""PNG images that behave like photographs as far as a store can tell.

A PNG of a photo barely compresses further: its IDAT stream is already
deflated and the pixels are noisy. Two kinds are produced:
  - "noise": uniformly random pixels stored at zlib level 0 (stored blocks),
    so the file is about as large as the raw pixels and incompressible;
  - "scene": a vertical gradient (sky to ground) with 4-7 bits of noise per
    sample, deflated at level 1, so PNG's own compression gains 10-45%
    and the result is incompressible again, like a real photo.
Rows use filter type 0. Files carry IHDR, a tEXt chunk, IDAT chunks of at
most 64 KiB and IEND, every chunk with its CRC.
"""

import math
import struct
import zlib

from .common import noise

SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDAT_MAX = 64 * 1024
CHANNELS = {0: 1, 2: 3, 6: 4}  # color type -> samples per pixel
ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 3 / 4, 2 / 3, 9 / 16)
# zlib level 1 output / input for scene rows with 4..7 noise bits (measured)
SCENE_RATIO = {4: 0.585, 5: 0.682, 6: 0.774, 7: 0.881}


def chunk(kind, body):
    head = struct.pack(">I", len(body)) + kind
    return head + body + struct.pack(">I", zlib.crc32(kind + body))


def encode(width, height, color_type, raw, level):
    """raw: filtered scanlines (1 filter byte + width*channels per row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    z = zlib.compress(raw, level)
    parts = [SIGNATURE, chunk(b"IHDR", ihdr),
             chunk(b"tEXt", b"Software\x00mav gen-dataset")]
    for off in range(0, len(z), IDAT_MAX):
        parts.append(chunk(b"IDAT", z[off:off + IDAT_MAX]))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def decode(data):
    """(width, height, color_type, raw scanlines, deflate ratio) of a PNG
    written by encode()."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    z = b"".join(idat)
    raw = zlib.decompress(z)
    return ihdr[0], ihdr[1], ihdr[3], raw, len(z) / len(raw)


def plan(rng, target):
    """Choose (width, height, color_type, kind) for a file of ~target bytes.

    kind is 0 for noise, or the number of noise bits (4-7) of a scene."""
    r = rng.random()
    color_type = 2 if r < 0.8 else (0 if r < 0.9 else 6)
    kind = 0 if rng.random() < 0.7 else rng.randint(4, 7)
    samples = target / CHANNELS[color_type]
    if kind:
        samples /= SCENE_RATIO[kind]
    aspect = rng.choice(ASPECTS)
    height = max(16, int(math.sqrt(samples / aspect)))
    width = max(16, int(samples / height))
    return width, height, color_type, kind


def kind_of(ratio):
    """The kind whose deflate ratio is closest to ratio."""
    if ratio >= 1:
        return 0
    return min(SCENE_RATIO, key=lambda b: abs(SCENE_RATIO[b] - ratio))


def _noise_rows(rng, width, height, ch):
    line = width * ch
    pix = bytearray(noise(rng, height * (line + 1)))
    pix[0::line + 1] = bytes(height)  # filter byte 0 on every row
    return bytes(pix)


def _scene_tables(bits):
    mask = (1 << bits) - 1
    span = 255 - mask
    tables = []
    for level in range(32):
        base = (level * span) // 31
        tables.append(bytes(base + (v & mask) for v in range(256)))
    return tables


def _scene_rows(rng, width, height, ch, bits):
    tables = _scene_tables(bits)
    line = width * ch
    top, bottom = rng.randrange(32), rng.randrange(32)
    horizon = rng.uniform(0.3, 0.7)
    rows = noise(rng, height * line)
    out = []
    for y in range(height):
        t = y / max(1, height - 1)
        if t < horizon:
            lv = top + (bottom - top) * t / horizon * 0.5
        else:
            lv = bottom + (top - bottom) * (1 - t) * 0.3
        out.append(b"\x00")
        out.append(rows[y * line:(y + 1) * line].translate(tables[int(lv) % 32]))
    return b"".join(out)


def render(rng, width, height, color_type, kind):
    ch = CHANNELS[color_type]
    if not kind:
        return encode(width, height, color_type,
                      _noise_rows(rng, width, height, ch), 0)
    return encode(width, height, color_type,
                  _scene_rows(rng, width, height, ch, kind), 1)


def retouch(rng, data):
    """Repaint a band of rows of an existing PNG, keeping the rest."""
    width, height, color_type, raw, ratio = decode(data)
    line = width * CHANNELS[color_type] + 1
    band = max(1, int(height * rng.uniform(0.1, 0.3)))
    y0 = rng.randrange(0, height - band + 1)
    fresh = bytearray(noise(rng, band * line))
    fresh[0::line] = bytes(band)
    raw = raw[:y0 * line] + bytes(fresh) + raw[(y0 + band) * line:]
    return encode(width, height, color_type, raw, 0 if ratio >= 1 else 1)
