import hashlib, os, stat, sys

# treecmp.py A B [--no-mtime]: compare two trees (root excluded). user.mav.id
# (computed by read-only views) is left out: sources do not have it.
def walk(root, with_mtime):
    out, groups = {}, {}
    for top, dirs, files in os.walk(root.encode()):
        for name in dirs + files:
            p = os.path.join(top, name)
            rel = os.path.relpath(p, root.encode())
            st = os.lstat(p)
            rec = [stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid]
            if not stat.S_ISLNK(st.st_mode):
                rec.append(stat.S_IMODE(st.st_mode))
            if with_mtime:
                rec.append(st.st_mtime_ns)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec.append(hashlib.sha256(f.read()).hexdigest())
                rec += [st.st_size, st.st_nlink]
                groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                rec.append(os.readlink(p))
            if not stat.S_ISLNK(st.st_mode):
                rec.append(sorted((k, os.getxattr(p, k))
                                  for k in os.listxattr(p)
                                  if k.startswith("user.")
                                  and k != "user.mav.id"))
            out[rel] = rec
    links = sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)
    return out, links

with_mtime = "--no-mtime" not in sys.argv
paths = [x for x in sys.argv[1:] if not x.startswith("--")]
a, la = walk(paths[0], with_mtime)
b, lb = walk(paths[1], with_mtime)
bad = 0
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print("differs:", k, a.get(k), b.get(k))
        bad += 1
if la != lb:
    print("hard links differ:", la, lb)
    bad += 1
if not a:
    print("nothing compared")
    bad += 1
print("compared %d names, %d hard-link groups" % (len(a), len(la)))
sys.exit(1 if bad else 0)
