#!/usr/bin/env bash
# shellcheck source=tests/integration/lib_mount.sh
# t_mount_random.sh: seeded random POSIX operations through a real mount,
# each applied to the working tree and to a directory on the real disk
# (mount_random.py): same results, same errno, equal trees after every
# step; every 50 steps a snapshot that must equal a copy of the reference
# taken at that moment (and the mtimes the working tree showed), right
# away, at the end of its seed, after all seeds and after a remount. Then
# unmount and fsck. TAP output; exits 1 on any failure. MAV_RANDOM_SEEDS
# and MAV_RANDOM_STEPS override the seeds and the step count (a failing
# seed reruns alone with the same steps).
. "$(dirname "$0")/lib_mount.sh"

SEEDS=${MAV_RANDOM_SEEDS:-"1 2 3"}
STEPS=${MAV_RANDOM_STEPS:-1200}
PY="$(dirname "$0")/mount_random.py"
mkdir -p "$T/ref" "$T/snaps"
if ! "$M" init >/dev/null; then
	echo "Bail out! could not create the repository"
	exit 1
fi
rnd() { python3 "$PY" "$@" --mnt "$MNT" --snaps "$T/snaps"; }

read -ra seeds <<<"$SEEDS"
echo "1..$((${#seeds[@]} + 8))"
ok "mount" mount_fg
for seed in "${seeds[@]}"; do
	ok "seed $seed: $STEPS random steps, mount equals disk, snapshots frozen" \
		rnd run --seed "$seed" --steps "$STEPS" --every 50 --ref "$T/ref" \
		--mavctl "$M"
	sed -n -e 's/^seed /# seed /p' -e '/^# outcomes/p' "$T/out"
done
ok "every snapshot still equals its copy after all seeds" rnd recheck
ok "unmount" umount_fg
ok "remount" mount_fg
ok "after a remount the working tree equals the reference" \
	rnd compare --ref "$T/ref"
ok "after a remount every snapshot equals its copy" rnd recheck
ok "unmount" umount_fg
ok "fsck is clean" "$M" fsck

finish
