#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_crash.sh: kill -9 of the daemon loses nothing that was fsync'd.
# For 3 seeds a writer creates, appends to, overwrites, truncates and
# atomically replaces files of random sizes in a working tree, fsyncs some
# (logging name and sha256 outside the mount once fsync returned) and the
# daemon is killed while writes are in flight; after clearing the dead
# mount, fsck is clean and every logged file has exactly its logged bytes.
# A copy never fsync'd, killed once the daemon has sealed it, is whole.
# Then 3 kills while a snapshot of 8000 changed files runs: afterwards the
# version is either there in full, equal to the working tree, or not at
# all, and the working tree still holds every fsync'd byte. The repository
# is shared by all rounds, so every round rechecks the earlier ones.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

W="$MNT/main"
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi

cat >"$T/writer.py" <<'PYEOF'
import hashlib, os, random, sys
# writer.py ROOT PREFIX LOG SEED: change files under ROOT until killed; LOG
# gets "begin NAME" before a file is touched and "sync NAME SHA256 MODE SEQ"
# once its fsync (and its directory's, for a new name) has returned: before
# that fsync the file was given MODE and the xattr user.seq = SEQ.
root, prefix, logpath, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
log = open(logpath, "a", buffering=1)
content = {}

def fsync_dir(d):
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)

def write_all(fd, data, off):
    while data:  # pieces of random size: many requests in flight
        k = os.pwrite(fd, data[: rng.randrange(1, 300000)], off)
        data, off = data[k:], off + k

def stamp(fd, i):  # metadata that the fsync must keep too
    mode = rng.choice([0o600, 0o640, 0o644, 0o755])
    os.fchmod(fd, mode)
    os.setxattr(fd, "user.seq", b"%d" % i)
    return "%o %d" % (mode, i)

def size():
    return rng.choice([0, rng.randrange(1, 4096), rng.randrange(4096, 200000),
                       rng.randrange(200000, 2500000)])

for d in range(4):
    os.makedirs("%s/d%d" % (root, d), exist_ok=True)
fsync_dir(root)
for i in range(1000000):
    names = sorted(content)
    op = rng.random()
    if not names or op < 0.45:
        name, old = "d%d/f%05d" % (rng.randrange(4), i), None
    else:
        name = rng.choice(names)
        old = content[name]
    sync = rng.random() < 0.4
    p = "%s/%s" % (root, name)
    log.write("begin %s/%s\n" % (prefix, name))
    if old is not None and op > 0.9:  # atomic replace: temp, fsync, rename
        new = rng.randbytes(size())
        tmp = p + ".tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
        write_all(fd, new, 0)
        meta = stamp(fd, i)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, p)
        sync = True
    else:
        fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
        if old is None:
            new = rng.randbytes(size())
            write_all(fd, new, 0)
        elif op < 0.65:  # append
            extra = rng.randbytes(size() // 4)
            write_all(fd, extra, len(old))
            new = old + extra
        elif op < 0.8:  # overwrite somewhere, maybe past the end
            off = rng.randrange(len(old) + 1)
            patch = rng.randbytes(rng.randrange(1, 100000))
            write_all(fd, patch, off)
            new = old[:off] + patch + old[off + len(patch):]
        else:  # truncate, shorter or longer
            n = rng.randrange(2 * len(old) + 10)
            os.ftruncate(fd, n)
            new = old[:n] + b"\0" * (n - len(old))
        if sync:  # fdatasync must keep a truncation's new size too
            meta = stamp(fd, i)
            (os.fdatasync if rng.random() < 0.5 else os.fsync)(fd)
        os.close(fd)
    content[name] = new
    if sync:
        if old is None or op > 0.9:
            fsync_dir(os.path.dirname(p))
        log.write("sync %s/%s %s %s\n" % (prefix, name, hashlib.sha256(new).hexdigest(), meta))
PYEOF

cat >"$T/check.py" <<'PYEOF'
import hashlib, os, sys
# check.py WT LOG...: every name whose last log line is "sync" has exactly
# the logged bytes (and mode and user.seq, where logged); every file in WT
# reads without error.
wt, bad, n = sys.argv[1], 0, 0
for logpath in sys.argv[2:]:
    last = {}
    for line in open(logpath):
        w = line.split()
        if len(w) >= 2:
            last[w[1]] = w[2:] if w[0] == "sync" and len(w) in (3, 5) else None
    for name, synced in sorted(last.items()):
        if synced is None:
            continue
        sha, meta = synced[0], synced[1:]
        n += 1
        p = os.path.join(wt, name)
        try:
            with open(p, "rb") as f:
                data = f.read()
            if meta:
                got = (os.stat(p).st_mode & 0o7777, os.getxattr(p, "user.seq"))
        except OSError as e:
            print("%s: %s" % (name, e))
            bad += 1
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            print("%s: %d bytes, not the fsync'd content" % (name, len(data)))
            bad += 1
        if meta and got != (int(meta[0], 8), meta[1].encode()):
            print("%s: mode %o, user.seq %r; fsync'd %s, %s" % (name, got[0], got[1], *meta))
            bad += 1
files = 0
for top, dirs, names in os.walk(wt):
    for x in names:
        try:
            with open(os.path.join(top, x), "rb") as f:
                while f.read(1 << 20):
                    pass
            files += 1
        except OSError as e:
            print("%s/%s: %s" % (top, x, e))
            bad += 1
print("%d fsync'd files checked, %d files read, %d bad" % (n, files, bad))
sys.exit(1 if bad or n == 0 else 0)
PYEOF

# wait_lines FILE PATTERN COUNT: up to 30 s for COUNT lines matching PATTERN
wait_lines() {
	for _ in $(seq 300); do
		[ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
# after_kill: the daemon is gone; clear the dead mount, let the writer (if
# any, pid $1) fail and exit.
after_kill() {
	wait "$DPID" 2>/dev/null
	fusermount3 -u -z "$MNT" || return 1
	if [ -n "${1:-}" ]; then
		wait_gone "$1" || kill -9 "$1"
		wait "$1" 2>/dev/null
	fi
	! is_mounted "$MNT"
}
LOGS=()

echo "1..72"

for seed in 1 2 3; do
	ok "seed $seed: mount" mount_fg
	log="$T/log.$seed"
	LOGS+=("$log")
	python3 "$T/writer.py" "$W/c$seed" "c$seed" "$log" "$seed" 2>"$T/writer.$seed.err" &
	wp=$!
	PIDS+=("$wp")
	delay=$(python3 -c 'import random, sys; print(random.Random(int(sys.argv[1])).uniform(0.1, 1.5))' "$seed")
	ok "seed $seed: the writer has fsync'd 5 files" wait_lines "$log" "^sync " 5
	sleep "$delay"
	# The writer must be mid-run when the daemon dies. Checked before the
	# kill: once the daemon is gone the writer's next call fails and it
	# may exit before a check after the kill (seen once in scripts/test).
	ok "seed $seed: writer still running; kill -9 the daemon after $delay s more" \
		bash -c 'kill -0 "$1" && kill -9 "$2"' _ "$wp" "$DPID"
	wait "$DPID" 2>/dev/null
	ok "seed $seed: the dead mount is cleared, the writer stops" after_kill "$wp"
	echo "# seed $seed: $(grep -c '^sync ' "$log") fsyncs logged, last line: $(tail -1 "$log" | cut -c1-40)"
	ok "seed $seed: fsck is clean" "$M" fsck
	ok "seed $seed: remount" mount_fg
	ok "seed $seed: every fsync'd file of this and earlier rounds is exact" \
		python3 "$T/check.py" "$W" "${LOGS[@]}"
	ok "seed $seed: unmount" umount_fg
done

# Files written and never fsync'd are sealed by the daemon once idle for
# 2 s, as one group: their chunks skip the log, and one flush makes them
# durable before their records are written. A kill -9 after that loses
# none of them.
python3 "$GEN" generate "$T/quiet-src" --seed 7 --size 6M >/dev/null
ok "quiet: mount" mount_fg
ok "quiet: cp -a of a small dataset, no fsync" cp -a "$T/quiet-src" "$W/quiet"
sleep 6 # the daemon seals files idle for 2 s, every 2 s
ok "quiet: kill -9 the daemon once they are sealed" kill -9 "$DPID"
ok "quiet: the dead mount is cleared" after_kill
ok "quiet: fsck is clean" "$M" fsck
ok "quiet: remount" mount_fg
ok "quiet: every file is there, whole, with its metadata" \
	treecmp "$T/quiet-src" "$W/quiet"
ok "quiet: unmount" umount_fg

# fsync_some DIR LOG PREFIX: fsync every other file of DIR, log it as sync'd
cat >"$T/fsync_some.py" <<'PYEOF'
import hashlib, os, sys
d, logpath, prefix = sys.argv[1:4]
with open(logpath, "w") as log:
    for i, p in enumerate(sorted(os.path.join(t, n) for t, _, ns in os.walk(d) for n in ns)):
        if i % 2:
            continue
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        with open(p, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        log.write("sync %s/%s %s\n" % (prefix, os.path.relpath(p, d), sha))
PYEOF
versions() { find "$MNT" -mindepth 1 -maxdepth 1 -name '@v*' -printf '%f\n' | sort -V; }
# snap_outcome K OLD_VERSIONS SNAPSHOT_STATUS: the killed snapshot either
# made one full version equal to the working tree, or none.
snap_outcome() {
	local k=$1 old=$2 rc=$3 new
	new=$(comm -13 <(echo "$old" | sort) <(versions | sort))
	echo "versions before: $(echo "$old" | tr '\n' ' ') new: ${new:-none}; mavctl snapshot exited $rc"
	if [ -z "$new" ]; then
		[ "$rc" -ne 0 ] || {
			echo "mavctl snapshot succeeded, yet no new version"
			return 1
		}
		return 0
	fi
	[ "$(echo "$new" | wc -l)" -eq 1 ] || return 1
	"$M" log | grep -q "^${new#@} " || {
		echo "$new is not in mavctl log"
		return 1
	}
	treecmp "$T/many$k" "$MNT/$new/many$k" && treecmp "$W" "$MNT/$new"
}

for k in 1 2 3; do
	python3 "$GEN" manyfiles "$T/many$k" --files 8000 --seed "$k" >/dev/null
	ok "snapshot kill $k: mount" mount_fg
	ok "snapshot kill $k: copy 8000 files in, fsync half of them" \
		bash -c 'cp -a "$1/many$2" "$3/many$2" &&
			python3 "$1/fsync_some.py" "$3/many$2" "$1/snaplog.$2" "many$2"' _ "$T" "$k" "$W"
	LOGS+=("$T/snaplog.$k")
	old=$(versions)
	rpcs=$(grep -c 'rpc: .*snapshot' "$T/daemon.log")
	"$M" snapshot -m "crash $k" >"$T/snap.$k" 2>&1 &
	sp=$!
	delay=$(echo "0.02 0.12 0.25" | cut -d' ' -f"$k")
	ok "snapshot kill $k: the daemon got the snapshot request" \
		wait_lines "$T/daemon.log" 'rpc: .*snapshot' $((rpcs + 1))
	sleep "$delay"
	{ kill -9 "$DPID" && wait "$DPID"; } 2>/dev/null
	wait "$sp"
	src=$?
	echo "# snapshot kill $k: killed $delay s into it; mavctl: $(head -c 100 "$T/snap.$k")"
	ok "snapshot kill $k: the dead mount is cleared" after_kill
	ok "snapshot kill $k: fsck is clean" "$M" fsck
	ok "snapshot kill $k: remount" mount_fg
	ok "snapshot kill $k: the version is there in full and equals the working tree, or is not there" \
		snap_outcome "$k" "$old" "$src"
	ok "snapshot kill $k: the working tree holds every fsync'd file, all rounds" \
		python3 "$T/check.py" "$W" "${LOGS[@]}"
	ok "snapshot kill $k: unmount" umount_fg
done

# An append stream past 16 MiB stops logging its chunks, so its fsync must
# flush them before the record that points at them is synced. After the
# kill the file holds the fsync'd 40 MiB, or (if it was sealed while idle)
# those and the 30 MiB appended after them.
big_stream() {
	mkdir -p "$W/big" && head -c $((40 << 20)) /dev/urandom >"$T/big1" &&
		head -c $((30 << 20)) /dev/urandom >"$T/big2" &&
		dd if="$T/big1" of="$W/big/stream.bin" bs=1M conv=fsync status=none &&
		dd if="$T/big2" of="$W/big/stream.bin" bs=1M oflag=append \
			conv=notrunc status=none
}
big_intact() {
	local size
	size=$(stat -c %s "$W/big/stream.bin") || return 1
	echo "stream.bin: $size bytes after the kill"
	case $size in
	$((40 << 20))) cmp "$T/big1" "$W/big/stream.bin" ;;
	$((70 << 20))) cat "$T/big1" "$T/big2" | cmp - "$W/big/stream.bin" ;;
	*) return 1 ;;
	esac
}
# A small file written through the log that shares chunks with the big
# stream's unlogged tail must not lean on them: its fsync'd bytes survive
# the kill even though the big file's tail does not have to.
# (8 MiB from the unlogged part of the unsynced 30 MiB, which starts 16 MiB
# into that stream; the file starts mid-chunk, so
# FastCDC falls back in step with the big file's cuts after its first.)
shared_tail() {
	python3 - "$T/big2" "$W/big/shared.bin" <<'PYEOF'
import os, sys
data = open(sys.argv[1], "rb").read()[18 << 20:26 << 20]
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
dfd = os.open(os.path.dirname(sys.argv[2]), os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)
PYEOF
}
shared_intact() {
	head -c $((26 << 20)) "$T/big2" | tail -c $((8 << 20)) | cmp - "$W/big/shared.bin"
}
ok "big stream: mount" mount_fg
ok "big stream: 40 MiB written and fsync'd, 30 MiB appended without fsync" big_stream
ok "big stream: a small file of 8 MiB from the unsynced tail, fsync'd" shared_tail
{ kill -9 "$DPID" && wait "$DPID"; } 2>/dev/null
ok "big stream: the dead mount is cleared" after_kill
ok "big stream: fsck is clean" "$M" fsck
ok "big stream: remount" mount_fg
ok "big stream: the fsync'd 40 MiB are intact (and the rest all or nothing)" big_intact
ok "big stream: the small fsync'd file sharing its chunks is intact" shared_intact
ok "big stream: unmount" umount_fg

ok "a last mount" mount_fg
ok "a change and a snapshot work, the version equals the working tree" \
	bash -c 'echo last >"$3/last" && "$1" snapshot -m after >"$2/last" && python3 "$TREECMP" "$3" "$4/@$(cut -d" " -f1 "$2/last")"' \
	_ "$M" "$T" "$W" "$MNT"
ok "unmount" umount_fg
ok "fsck is clean at the end" "$M" fsck

finish
