"""Large binary files standing in for video and model weights.

Video: an ISO-BMFF shell (ftyp, mdat, moov) around random bytes: encoded
video is incompressible and never repeats.
Weights: a safetensors file (u64 header length, JSON header, raw tensors)
of fp16 values with realistic exponents (so zstd gains ~10%), and the
internal repetition real checkpoints have: a tied lm_head that is a byte
copy of the embedding, constant norm weights, and one duplicated layer.
Both are streamed in pieces, so memory stays small at any size.
"""

import json
import struct

from .common import noise_stream, rng_for


def box(kind, body):
    return struct.pack(">I", 8 + len(body)) + kind + body


def video(seed, index, size):
    """Pieces of a fake MP4 of about size bytes."""
    rng = rng_for(seed, "video", index)
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")
    moov = box(b"moov", b"".join(noise_stream(rng, 4096)))
    body = max(0, size - len(ftyp) - len(moov) - 8)
    yield ftyp
    yield struct.pack(">I", 8 + body) + b"mdat"
    yield from noise_stream(rng, body)
    yield moov


# fp16 high byte: sign, 5-bit exponent, 2 mantissa bits. Keep exponents in
# 2^-10 .. 2^-3, as trained weights have.
_HI = bytes((v & 0x80) | ((5 + ((v >> 2) & 31) % 8) << 2) | (v & 3)
            for v in range(256))


def _fp16(rng, count):
    for piece in noise_stream(rng, 2 * count):
        b = bytearray(piece)
        b[1::2] = b[1::2].translate(_HI)
        yield bytes(b)


def _per_layer(dim):
    return (4 * dim * dim + 3 * dim * 4 * dim) * 2


def _layout(rng, size):
    """List of (name, shape, source) with source naming the content."""
    fits = [d for d in (64, 128, 256, 384, 512, 768, 1024)
            if 2 * _per_layer(d) <= size] or [64]
    dim = rng.choice(fits[-3:])
    vocab = max(64, (size // 6) // (2 * dim))
    tensors = [("model.embed_tokens.weight", [vocab, dim], "embed")]
    per_layer = _per_layer(dim)
    layers = max(1, (size - 2 * vocab * dim * 2) // per_layer)
    dup = rng.randrange(layers)
    for i in range(layers):
        src = "layer%d" % (dup if i == layers - 1 and layers > 1 else i)
        p = "model.layers.%d." % i
        for name, shape in (("self_attn.q_proj", [dim, dim]),
                            ("self_attn.k_proj", [dim, dim]),
                            ("self_attn.v_proj", [dim, dim]),
                            ("self_attn.o_proj", [dim, dim]),
                            ("mlp.gate_proj", [4 * dim, dim]),
                            ("mlp.up_proj", [4 * dim, dim]),
                            ("mlp.down_proj", [dim, 4 * dim])):
            tensors.append((p + name + ".weight", shape, src + "." + name))
        tensors.append((p + "input_layernorm.weight", [dim], "ones"))
    tensors.append(("model.norm.weight", [dim], "ones"))
    tensors.append(("lm_head.weight", [vocab, dim], "embed"))
    return tensors


def weights(seed, index, size):
    """Pieces of a safetensors file of roughly size bytes."""
    tensors = _layout(rng_for(seed, "weights", index, "layout"), size)
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in tensors:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "F16", "shape": shape,
                        "data_offsets": [off, off + n]}
        off += n
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    yield struct.pack("<Q", len(head)) + head
    for name, shape, src in tensors:
        count = 1
        for d in shape:
            count *= d
        if src == "ones":
            yield b"\x00\x3c" * count  # fp16 1.0
        else:
            yield from _fp16(rng_for(seed, "weights", index, src), count)
