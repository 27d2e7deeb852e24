"""Files whose names, types and links break careless tools.

All live under hostile/ (and are not listed in captions.jsonl). Names are
bytes, since some are not valid UTF-8; every name is a legal POSIX name.
"""

import os

from .common import noise

LONG = b"L" * 251 + b".bin"                      # 255 bytes, the limit
LONG_UTF8 = "\u00e9".encode() * 125 + b"x.bin"   # 255 bytes of UTF-8

FILES = (
    b"with space.txt",
    b"trailing space ",
    b" leading space",
    b"new\nline.txt",
    b"tab\there",
    b"carriage\rreturn",
    "\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c\u8a9e-\U0001f600.txt".encode(),
    b"invalid-utf8-\xff\xfe\x80.bin",
    b"-leading-dash",
    b"--rf",
    b"quote\"'s.txt",
    b"glob*?[x].txt",
    b"back\\slash",
    b"...",
    b"$HOME;rm -rf x`id`",
    LONG,
    LONG_UTF8,
    b"-dash dir/inner file.txt",
    b"dir with space/\xff\xfe-nested.bin",
)
EMPTY = b"empty"
EXEC = b"run me.sh"
PRIVATE = b"mode-0600"
SYMLINK = (b"link to space", b"with space.txt")
DIR_SYMLINK = (b"link-to-dir", b"dir with space")
HARDLINK = (b"hardlink of space", b"with space.txt")


def generate(rng, writer):
    """Create the hostile/ tree; returns the number of entries made."""
    top = "hostile"
    for name in FILES:
        rel = os.path.join(top, os.fsdecode(name))
        writer.write(rel, noise(rng, rng.randint(1, 3000)))
    writer.write(os.path.join(top, os.fsdecode(EMPTY)), b"")
    writer.write(os.path.join(top, os.fsdecode(EXEC)),
                 b"#!/bin/sh\necho hello\n", mode=0o755)
    writer.write(os.path.join(top, os.fsdecode(PRIVATE)), b"secret\n",
                 mode=0o600)
    for link, target in (SYMLINK, DIR_SYMLINK):
        full = writer.path(os.path.join(top, os.fsdecode(link)))
        os.symlink(os.fsdecode(target), full)
        t = writer.tick()
        os.utime(full, (t, t), follow_symlinks=False)
    link, target = HARDLINK
    os.link(writer.path(os.path.join(top, os.fsdecode(target))),
            writer.path(os.path.join(top, os.fsdecode(link))))
    return len(FILES) + 6
