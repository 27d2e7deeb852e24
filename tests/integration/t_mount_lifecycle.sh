#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_lifecycle.sh: starting and stopping mavfs. Clear errors for a
# missing mountpoint, a file as mountpoint, a busy mountpoint, a dead FUSE
# mount, something that is not a repository, a repository held by another
# daemon; daemon mode returns once the mount is up and exits on unmount;
# SIGTERM and SIGINT unmount cleanly and keep data still in the kernel's
# writeback cache; unmount with open files (refused, then lazy: the open
# file keeps reading right); a stale socket is replaced; a killed daemon
# leaves a dead mount that can be cleared, and fsync'd data survives.
# TAP output; exits 1 on any failure.
. "$(dirname "$0")/lib_mount.sh"

S="$T/src"
python3 "$GEN" generate "$S" --seed 9 --size 6M >/dev/null
if ! { "$M" init >/dev/null && "$M" import "$S" >/dev/null &&
	"$M" snapshot -m one >/dev/null; }; then
	echo "Bail out! could not build the repository"
	exit 1
fi
M2="$T/mnt2"
mkdir -p "$M2" "$T/notrepo"
: >"$T/afile"
BIG=$(cd "$S" && find . -type f -size +200k | head -1)

# daemon_pid MNT: the pid of the daemon serving MNT (it was started by this
# test; found through its unique command line, then killed by pid only).
daemon_pid() { pgrep -f -x "$FS $MAV_REPO $1( .*)?" | head -1; }

echo "1..37"

ok "missing mountpoint: says so" fails_with "does not exist" \
	"$FS" "$MAV_REPO" "$T/nonexistent"
ok "mountpoint is a file: says so" fails_with "not a directory" \
	"$FS" "$MAV_REPO" "$T/afile"
ok "not a repository: says so" fails_with "not a mav repository" \
	"$FS" "$T/notrepo" "$MNT"
ok "missing repository: says so" fails_with "No such file" \
	"$FS" "$T/norepo" "$MNT"
ok "repository inside the mountpoint: refused" fails_with "inside the mountpoint" \
	"$FS" "$MAV_REPO" "$T"
# Another process (a mavctl import, say) holds the repository's writer lock.
locked_out() {
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(60)' "$MAV_REPO/lock" >"$T/lockout" &
	local holder=$! rc=0
	for _ in $(seq 50); do grep -q locked "$T/lockout" && break; sleep 0.1; done
	fails_with "in use by another process" "$FS" "$MAV_REPO" "$MNT" -f || rc=1
	kill "$holder"
	wait "$holder" 2>/dev/null
	return $rc
}
ok "a repository another process holds: in use by another process" locked_out
ok "nothing was left mounted by the failures" bash -c '! grep -q "$1" /proc/self/mountinfo' _ "$T"

# Daemon mode.
ok "daemon mode returns 0 with the mount up" \
	bash -c '"$1" "$2" "$3" && grep -q "^$2 $3 fuse.mavfs " /proc/mounts && ls "$3/@v1" >/dev/null' \
	_ "$FS" "$MAV_REPO" "$MNT"
DP=$(daemon_pid "$MNT")
[ -n "$DP" ] && PIDS+=("$DP")
ok "the daemon is a separate process with the socket up" \
	bash -c '[ -n "$1" ] && [ -S "$2/mavfs.sock" ]' _ "$DP" "$MAV_REPO"
ok "a second daemon on the same repository: in use by another process" \
	fails_with "in use by another process" "$FS" "$MAV_REPO" "$M2"
ok "another repository on a busy mountpoint: refused as busy" \
	bash -c '"$1" init "$2/repo2" >/dev/null && ! "$3" "$2/repo2" "$4" 2>"$2/err" && grep -q busy "$2/err"' \
	_ "$M" "$T" "$FS" "$MNT"
ok "fusermount3 -u: the daemon exits, the socket goes" \
	bash -c 'fusermount3 -u "$1" && for i in $(seq 100); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done &&
		! kill -0 "$2" 2>/dev/null && [ ! -e "$3/mavfs.sock" ]' _ "$MNT" "$DP" "$MAV_REPO"
ok "the repository is free afterwards" "$M" log
# SIGTERM to a daemon in the background: the same clean end.
term_daemon() {
	"$FS" "$MAV_REPO" "$MNT" && printf 'kept\n' >"$MNT/main/by-daemon.txt" || return 1
	local dp
	dp=$(daemon_pid "$MNT")
	[ -n "$dp" ] && PIDS+=("$dp") && kill -TERM "$dp" || return 1
	for _ in $(seq 100); do kill -0 "$dp" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$dp" 2>/dev/null && ! grep -q " $MNT fuse" /proc/mounts &&
		[ ! -e "$MAV_REPO/mavfs.sock" ] &&
		"$M" status | grep -qx "A by-daemon.txt"
}
ok "SIGTERM to a background daemon: unmounted, gone, the write kept" term_daemon

# Signals: data still in the kernel's writeback cache is written first.
sig_test() { # sig_test SIGNAL FILE
	local sig=$1 f=$2
	mount_fg "$MAV_REPO" "$MNT" || return 1
	python3 - "$MNT/main/$f" "$T/ready.$f" <<'PYEOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"kept across %s\n" % sys.argv[1].encode() * 5000)
open(sys.argv[2], "w").close()
time.sleep(60)
PYEOF
	local w=$!
	PIDS+=("$w")
	for _ in $(seq 100); do [ -e "$T/ready.$f" ] && break; sleep 0.1; done
	kill -"$sig" "$DPID"
	wait "$DPID"
	local rc=$?
	kill "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	[ "$rc" -eq 0 ] || {
		echo "daemon exited $rc"
		return 1
	}
	! is_mounted "$MNT"
}
ok "SIGTERM: the daemon unmounts and exits 0" sig_test TERM sigterm.txt
ok "SIGINT: the same" sig_test INT sigint.txt
check_kept() {
	local f
	for f in sigterm.txt sigint.txt; do
		python3 -c 'import sys; sys.stdout.buffer.write(b"kept across %s\n" % sys.argv[1].encode() * 5000)' \
			"$MNT/main/$f" | cmp - "$MNT/main/$f" || return 1
	done
}
ok "remount after the signals" mount_fg
ok "data written before the signals (file still open) was kept" check_kept
ok "unmount" umount_fg

# Unmount with open files.
ok "mount again" mount_fg
exec 7<"$MNT/@v1/$BIG"
ok "fusermount3 -u with a file open: refused, mount still serving" \
	bash -c '! fusermount3 -u "$1" 2>/dev/null && ls "$1/@v1" >/dev/null' _ "$MNT"
ok "lazy unmount detaches at once" bash -c 'fusermount3 -u -z "$1" && ! grep -q " $1 " /proc/mounts' _ "$MNT"
ok "the open file still reads its bytes" cmp - "$S/$BIG" <&7
ok "the daemon is still serving it" kill -0 "$DPID"
exec 7<&-
ok "closing the last file ends the daemon (exit 0)" \
	bash -c 'for i in $(seq 100); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.1; done; exit 1' _ "$DPID"
wait "$DPID" 2>/dev/null

# A stale socket left by a dead daemon is replaced.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])' "$MAV_REPO/mavfs.sock"
ok "a stale socket file does not stop a mount" mount_fg
ok "and mavctl reaches the new daemon" \
	bash -c '"$1" status >/dev/null && grep -q "rpc: uid .*: status" "$2/daemon.log"' _ "$M" "$T"

# A daemon that dies leaves a dead mount.
ok "write and fsync a file, then kill -9 the daemon" \
	bash -c 'python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b\"durable\\n\"); os.fsync(fd); os.close(fd)" "$1/main/durable.txt" && kill -9 "$2"' \
	_ "$MNT" "$DPID"
wait "$DPID" 2>/dev/null
ok "mounting on the dead mount: says what to do" \
	fails_with "fusermount3 -u" "$FS" "$MAV_REPO" "$MNT"
ok "fusermount3 -u clears it" fusermount3 -u "$MNT"
ok "remount after the crash" mount_fg
ok "the fsync'd file survived the crash" \
	bash -c '[ "$(cat "$1/main/durable.txt")" = durable ]' _ "$MNT"
ok "versions are intact after the crash" \
	bash -c 'cmp "$1/@v1/$3" "$2/$3"' _ "$MNT" "$S" "$BIG"
ok "unmount" umount_fg

# Awkward repository paths: a comma and spaces (mount options are escaped),
# and one too long for a socket address (rpc goes through /proc/self/fd).
ODD="$T/odd, name/$(printf 'x%.0s' $(seq 1 110))"
mkdir -p "$ODD/mnt 1"
ok "a repository path with a comma, spaces and 200 bytes mounts" \
	bash -c '"$1" init "$2/re po" >/dev/null && "$3" "$2/re po" "$2/mnt 1" &&
		grep -qF "$(printf "%s" "$2/re po" | sed "s/ /\\\\040/g") " /proc/mounts' _ "$M" "$ODD" "$FS"
ok "and mavctl reaches its daemon through the long socket path" \
	bash -c 'echo hi >"$1/mnt 1/main/hi" && "$2" -R "$1/re po" snapshot -m long | grep -q "^v1 " &&
		[ "$(cat "$1/mnt 1/@v1/hi")" = hi ]' _ "$ODD" "$M"
ok "unmount it" bash -c 'fusermount3 -u "$1/mnt 1" && for i in $(seq 100); do [ -e "$1/re po/mavfs.sock" ] || exit 0; sleep 0.1; done; exit 1' _ "$ODD"

finish
