"""`hash`: one digest over a tree's names, types, modes, sizes, mtimes,
link targets, hard-link counts and contents, to compare trees exactly."""

import hashlib
import os
import stat


def escape(name):
    """Printable and unambiguous: backslash doubled, bytes outside
    printable ASCII as \\xNN (so no tabs or newlines survive)."""
    out = []
    for b in name:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                break
            h.update(piece)
    return h.hexdigest()


def describe(full):
    """Tab-separated kind, mode, mtime, size, links, content or target."""
    st = os.lstat(full)
    head = "%o\t%d" % (stat.S_IMODE(st.st_mode), int(st.st_mtime))
    if stat.S_ISLNK(st.st_mode):
        return "l\t%s\t-\t-\t%s" % (head, escape(os.readlink(full)))
    if stat.S_ISDIR(st.st_mode):
        return "d\t%s\t-\t-\t-" % head
    return "f\t%s\t%d\t%d\t%s" % (head, st.st_size, st.st_nlink,
                                     file_digest(full))


def entries(root):
    """Yield (relpath bytes, description) for every entry, root first."""
    root = os.fsencode(root)
    yield b".", describe(root)
    stack = [b""]
    while stack:
        rel = stack.pop()
        for name in os.listdir(os.path.join(root, rel) if rel else root):
            r = os.path.join(rel, name) if rel else name
            full = os.path.join(root, r)
            yield r, describe(full)
            if os.path.isdir(full) and not os.path.islink(full):
                stack.append(r)


def tree_hash(root, listing=None):
    """sha256 over one line per entry: the description, a tab, the path
    (escaped: bytes outside printable ASCII and backslash as \\xNN)."""
    h = hashlib.sha256()
    for rel, desc in sorted(entries(root)):
        line = "%s\t%s\n" % (desc, escape(rel))
        h.update(line.encode())
        if listing is not None:
            listing.write(line)
    return h.hexdigest()
