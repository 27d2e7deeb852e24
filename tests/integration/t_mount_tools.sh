#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_tools.sh: everyday tools writing into a working tree get the
# result they would get on a local disk: cp -a, rsync, tar piped into tar,
# git (init, add, commit, fsck, log, clone), the atomic-save pattern (temp
# file, fsync, os.replace) repeated under a concurrent reader, and sqlite3
# (10k rows in transactions, rollback journal and WAL). Then a snapshot
# equals the working tree, and everything survives an unmount, a remount
# and fsck. TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
python3 "$GEN" generate "$S" --seed 1 --size 20M >/dev/null
add_awkward "$S"
# rsync leaves a time alone when it matches to the second, so entries the
# test just made (in the same second as their copies) get a fixed old time.
find "$S" -newermt '-1 hour' -exec touch -h -d '2001-01-01 00:00:00.123456789' {} +
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi
W="$MNT/main"

echo "1..30"

ok "mount" mount_fg

# cp -a, rsync and tar: names, contents, modes, owners, times, hard links,
# symlinks and user.* xattrs all arrive.
ok "cp -a of a 20 MB dataset" cp -a "$S" "$W/cp"
ok "cp -a: the copy equals the source" treecmp "$S" "$W/cp"
ok "rsync -aHX of it into another directory" rsync -aHX "$S/" "$W/rsync/"
ok "rsync: the copy equals the source" treecmp "$S" "$W/rsync"
ok "rsync again: nothing left to transfer" \
	bash -c '[ -z "$(rsync -aHXi "$1/" "$2/rsync/")" ]' _ "$S" "$W"
ok "tar c | tar x into the mount" \
	bash -c 'mkdir "$2/tar" && tar -C "$1" --format=posix --xattrs -cf - . |
		tar -C "$2/tar" --xattrs --xattrs-include="user.*" -xpf -' _ "$S" "$W"
ok "tar: the unpacked tree equals the source" treecmp "$S" "$W/tar"

# git: many small files, lock files renamed into place, packs on gc.
ok "git init, add and commit a dataset in the mount" \
	bash -c 'cp -r "$1/." "$2/git" && cd "$2/git" && git -c init.defaultBranch=main init -q &&
		git add -A && git -c user.name=t -c user.email=t@example.org commit -q -m one' _ "$S" "$W"
ok "a second commit with a change and a rename" \
	bash -c 'cd "$1/git" && echo changed >>odd/hello.txt && git mv odd/empty odd/renamed &&
		git -c user.name=t -c user.email=t@example.org commit -q -a -m two' _ "$W"
ok "git gc packs the objects" bash -c 'cd "$1/git" && git gc -q && ls .git/objects/pack/*.pack >/dev/null' _ "$W"
ok "git fsck --full is clean" bash -c 'cd "$1/git" && git fsck --full --strict --no-dangling' _ "$W"
ok "git log shows both commits" \
	bash -c 'cd "$1/git" && [ "$(git log --format=%s | tr "\n" " ")" = "two one " ]' _ "$W"
ok "git status: the work tree is clean" \
	bash -c 'cd "$1/git" && [ -z "$(git status --porcelain)" ]' _ "$W"
ok "a clone of it has exactly the files of the work tree (git keeps no empty dirs)" \
	bash -c 'git clone -q "$1/git" "$2/clone" &&
		diff -r --no-dereference -x .git -x empty-dir "$1/git" "$2/clone"' _ "$W" "$T"

# The atomic-save pattern, with a reader that must only ever see a whole
# version.
cat >"$T/mount_atomic.py" <<'PYEOF'
import hashlib, os, sys, time
path, rounds = sys.argv[1], int(sys.argv[2])
d = os.path.dirname(path)
def body(i):
    payload = (b"version %d\n" % i) * (1 + (i * 7919) % 3000)
    return payload + hashlib.sha256(payload).hexdigest().encode() + b"\n"
def save(i):
    tmp = "%s/.%s.tmp%d" % (d, os.path.basename(path), i)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    data = body(i)
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
save(0)
pid = os.fork()
if pid == 0:  # the reader: every read is one complete version
    seen, bad = 0, 0
    while not os.path.exists(path + ".done"):
        with open(path, "rb") as f:
            b = f.read()
        payload, _, digest = b.rpartition(b"\n")[0].rpartition(b"\n")
        if hashlib.sha256(payload + b"\n").hexdigest().encode() != digest:
            bad += 1
        seen += 1
    print("reader: %d reads, %d torn" % (seen, bad))
    os._exit(1 if bad or seen < 10 else 0)
for i in range(1, rounds + 1):
    save(i)
open(path + ".done", "w").close()
_, status = os.waitpid(pid, 0)
os.unlink(path + ".done")
with open(path, "rb") as f:
    final = f.read()
left = [n for n in os.listdir(d) if ".tmp" in n]
print("final exact:", final == body(rounds), "temp files left:", left)
sys.exit(0 if status == 0 and final == body(rounds) and not left else 1)
PYEOF
mkdir -p "$W/atomic"
ok "atomic save 500 times (temp, fsync, os.replace) under a reader: never torn, final exact" \
	python3 "$T/mount_atomic.py" "$W/atomic/settings.json" 500

# sqlite3: journals, fsync, byte-range locks, shared memory (WAL).
sql_load() { # sql_load DB JOURNAL_MODE: 10k rows in 100 transactions
	{
		echo "PRAGMA journal_mode=$2;"
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, blob BLOB);"
		for tx in $(seq 0 99); do
			echo "BEGIN;"
			for i in $(seq $((tx * 100)) $((tx * 100 + 99))); do
				echo "INSERT INTO t VALUES($i, 'row $i', randomblob($i % 700));"
			done
			echo "COMMIT;"
		done
		echo "DELETE FROM t WHERE id % 10 = 3;"
		echo "VACUUM;"
	} | sqlite3 "$1" >/dev/null
}
sql_check() { # sql_check DB: integrity ok, 9000 rows, the right ids and sizes
	# (randomblob(0) is one byte)
	local r
	r=$(sqlite3 "$1" "PRAGMA integrity_check; SELECT count(*), sum(id), sum(length(blob)) FROM t;") || return 1
	echo "$r"
	[ "$r" = "$(python3 -c 'k = [i for i in range(10000) if i % 10 != 3]
print("ok\n%d|%d|%d" % (len(k), sum(k), sum(max(1, i % 700) for i in k)))')" ]
}
export -f sql_check
mkdir -p "$W/db"
ok "sqlite3 (rollback journal): 10k rows in 100 transactions, delete, vacuum" sql_load "$W/db/journal.db" delete
ok "sqlite3 (rollback journal): integrity_check ok, the rows are right" sql_check "$W/db/journal.db"
ok "sqlite3 (WAL): the same load" sql_load "$W/db/wal.db" wal
ok "sqlite3 (WAL): checkpointed, integrity_check ok, the rows are right" \
	bash -c 'sqlite3 "$1" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null && sql_check "$1"' _ "$W/db/wal.db"

# A snapshot of all of it, then unmount, remount, fsck.
snap() { "$M" snapshot -m "$1" >"$T/snap.out" && cat "$T/snap.out"; }
ok "snapshot of everything" snap tools
V=$(awk '{print $1}' "$T/snap.out")
ok "the snapshot equals the working tree, metadata included" treecmp "$W" "$MNT/@$V"
ok "and the sources" \
	bash -c 'for d in cp rsync tar; do python3 "$TREECMP" "$2" "$3/$d" || exit 1; done' _ "$T" "$S" "$MNT/@$V"
ok "the database in the snapshot passes integrity_check (read-only)" \
	bash -c 'cp "$1/db/journal.db" "$2/snapdb" && sqlite3 "$2/snapdb" "PRAGMA integrity_check;" | grep -qx ok' _ "$MNT/@$V" "$T"
ok "unmount" umount_fg
ok "remount" mount_fg
ok "after the remount the working tree still equals the snapshot" treecmp "$W" "$MNT/@$V"
ok "and git, sqlite and the saved file still check out" \
	bash -c 'cd "$1/git" && git fsck --full --strict --no-dangling && sql_check "$1/db/journal.db" && sql_check "$1/db/wal.db" &&
		tail -c 65 "$1/atomic/settings.json" | grep -q "^[0-9a-f]\{64\}$"' _ "$W"
ok "fsck is clean" "$M" fsck
ok "unmount" umount_fg

finish
