"""Caption records: {"path", "caption", "license", "source"}, one per image."""

import json

ADJ = ("red", "weathered", "tiny", "sleepy", "bright", "ancient", "wet",
       "golden", "rusty", "striped", "fluffy", "lonely", "crowded", "misty",
       "broken", "polished", "wooden", "frozen", "blue", "overgrown")
SUBJ = ("fox", "lighthouse", "bicycle", "cat", "market stall", "tram",
        "mountain hut", "fishing boat", "owl", "teapot", "street corner",
        "windmill", "horse", "bridge", "cactus", "library", "robot toy",
        "vineyard", "heron", "train station")
ACT = ("standing", "resting", "seen from above", "half in shadow",
       "reflected in a puddle", "next to a fence", "under a tree",
       "against a brick wall", "in the foreground", "partly hidden")
PLACE = ("in a snowy forest", "on a foggy beach", "at a night market",
         "in a quiet village", "near a river", "in the desert",
         "on a city rooftop", "in a greenhouse", "by the harbour",
         "in an empty parking lot")
TIME = ("at dawn", "at dusk", "at noon", "under a stormy sky",
        "in soft morning light", "at night", "in golden hour light",
        "on an overcast day")
STYLE = ("35mm film photo", "wide-angle shot", "macro photograph",
         "long exposure", "drone photo", "smartphone snapshot",
         "studio lighting", "black and white photo")
LICENSES = (("CC-BY-4.0", 40), ("CC0-1.0", 25), ("CC-BY-SA-4.0", 15),
            ("Apache-2.0", 5), ("proprietary-internal", 10),
            ("CC-BY-NC-4.0", 5))
SOURCES = ("https://photos.example.org/item/%08x",
           "https://archive.example.net/scan/%08x",
           "s3://acme-raw-captures/batch/%08x.png",
           "camera://field-kit-%02x/frame" % 7 + "/%08x")


def caption(rng):
    words = "%s %s %s %s %s" % (rng.choice(ADJ), rng.choice(SUBJ),
                                rng.choice(ACT), rng.choice(PLACE),
                                rng.choice(TIME))
    article = "an" if words[0] in "aeiou" else "a"
    return "%s %s, %s" % (article, words, rng.choice(STYLE))


def license(rng):
    names = [n for n, _ in LICENSES]
    return rng.choices(names, weights=[w for _, w in LICENSES])[0]


def record(rng, path):
    """One JSON line (with trailing newline) for the image at path."""
    rec = {"path": path, "caption": caption(rng), "license": license(rng),
           "source": rng.choice(SOURCES) % rng.getrandbits(32)}
    return json.dumps(rec) + "\n"


def recaption(rng, line):
    """The same record with a new caption (a reviewer's correction)."""
    rec = json.loads(line)
    rec["caption"] = caption(rng)
    return json.dumps(rec) + "\n"
