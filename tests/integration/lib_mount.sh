# shellcheck shell=bash disable=SC2034 # sourced: M, GEN, ... are used by the tests
# lib_mount.sh: shared by the t_mount_*.sh tests (sourced, not run).
#
# Gives: $M (mavctl), $FS (mavfs), $GEN (gen-dataset), $T (a private temp
# dir), $MNT, MAV_REPO; ok/check (TAP lines); mount_fg/umount_fg (a
# foreground daemon whose pid is $DPID); treecmp (names, types, contents,
# modes, owners, mtimes, nlink, symlink targets, user.* xattrs, hard-link
# groups). On every exit path (lib_tap.sh's trap) everything mounted under
# $T is lazily unmounted and the daemons this test started are stopped (by
# pid) before $T is removed.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
MNT="$T/mnt"
mkdir -p "$MNT"
export MAV_REPO="$T/repo"
export MAV_AUTHOR=tester
DPID=
PIDS=()

mounts_under() { # mount points below $T, deepest first
	awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r
}

mount_cleanup() {
	local m p
	for m in $(mounts_under); do
		fusermount3 -u -z "$m" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
	done
}
at_exit mount_cleanup


is_mounted() { # is_mounted DIR: a mavfs mount sits on DIR
	awk -v m="$1" '$5 == m && $0 ~ / - fuse\.mavfs / { f = 1 } END { exit !f }' \
		/proc/self/mountinfo
}
wait_mounted() { # wait_mounted DIR [PID]: up to 20 s
	for _ in $(seq 200); do
		is_mounted "$1" && return 0
		[ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}
wait_gone() { # wait_gone PID: up to 20 s
	for _ in $(seq 200); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# mount_fg [REPO [MNT [OPTS...]]]: start a foreground daemon, wait for the
# mount; $DPID is its pid, its stderr goes to $T/daemon.log.
mount_fg() {
	local repo=${1:-$MAV_REPO} mnt=${2:-$MNT}
	shift 2 2>/dev/null || shift $#
	# shellcheck disable=SC2086 # MAVFS_TEST_OPTS: words on purpose (e.g. "-d")
	"$FS" "$repo" "$mnt" -f ${MAVFS_TEST_OPTS:-} "$@" 2>>"$T/daemon.log" &
	DPID=$!
	PIDS+=("$DPID")
	wait_mounted "$mnt" "$DPID" || {
		echo "mount of $repo on $mnt did not appear"
		cat "$T/daemon.log"
		return 1
	}
}
# umount_fg [MNT]: unmount and wait for the daemon to exit; its status.
umount_fg() {
	local mnt=${1:-$MNT}
	fusermount3 -u "$mnt" || return 1
	wait "$DPID"
}


