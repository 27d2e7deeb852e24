"""WAV clips: a few seconds of synthesized chords plus noise, 16-bit PCM.

Each sample's high byte carries the tone (a short sequence of chords, each
a sum of sines) and its low byte is uniform noise, i.e. a tone with a noise
floor about 40 dB down. Only the chord loops are computed in Python; the
clip is assembled with C-speed slicing, so a clip costs milliseconds.
"""

import io
import math
import wave

from .common import noise

RATES = (16000, 22050, 44100, 48000)


def plan(rng):
    """(rate, channels, seconds) for one clip."""
    return rng.choice(RATES), rng.choice((1, 1, 2)), rng.uniform(2.0, 6.0)


def _chord(rng, rate):
    n = int(rate * rng.uniform(0.08, 0.15))
    freqs = [rng.uniform(110.0, 880.0) for _ in range(rng.randint(1, 3))]
    amp = rng.uniform(60.0, 120.0) / len(freqs)
    steps = [2 * math.pi * f / rate for f in freqs]
    hi = bytearray(n)
    for i in range(n):
        env = min(1.0, i / 200.0, (n - i) / 200.0)
        v = sum(math.sin(s * i) for s in steps) * amp * env
        hi[i] = int(v) & 0xFF
    return bytes(hi)


def _voice(rng, chords, frames):
    parts, total = [], 0
    while total < frames:
        c = rng.choice(chords)
        parts.append(c)
        total += len(c)
    return b"".join(parts)[:frames]


def render(rng, rate, channels, seconds):
    frames = int(rate * seconds)
    chords = [_chord(rng, rate) for _ in range(3)]
    width = 2 * channels
    pcm = bytearray(noise(rng, frames * width))
    for c in range(channels):
        pcm[2 * c + 1::width] = _voice(rng, chords, frames)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(pcm))
    return buf.getvalue()
