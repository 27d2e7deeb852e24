#!/usr/bin/env bash
# mount-read.sh: read benchmarks of read-only snapshots served by mavfs,
# against native ext4, libfuse's passthrough_ll, restic mount and borg mount.
#
#   scripts/bench/mount-read.sh [SECTION...]   (default: all, in one run)
#
# Sections:
#   cold    cold reads (page cache dropped, every FUSE daemon freshly
#           mounted) of the big files (video/, weights/; one cat, MB/s) and of
#           all images (2 parallel cat processes over a fixed list; files/s)
#   warm    warm rereads of every image (one process: open, read, close of
#           each file), after a first warm-up pass
#   meta    a 100k-file snapshot: `find . | wc -l`, lstat of every file
#           (python loop over a fixed list), `ls -lR`; cold and warm
#   loader  PyTorch DataLoader (num_workers=2, batch_size=32) reading every
#           image as raw bytes: cold epoch and warm epoch, mav vs native
#   rss     mavfs peak RSS (VmHWM) with -o chunk_cache=64M while serving the
#           100k-file snapshot: after 10k and 100k stats, a second stat
#           pass, find, ls -lR, reading 10k files, then all files in
#           four cold passes
#   flat    one directory of 100k entries (a paged tree): cold lstat of one
#           name, cold `ls -f`, cold lstat of every name; mavfs peak RSS
#           with the default tree cache and with -o tree_cache=4M
#
# Environment:
#   BENCH_SIZE       generated dataset size (default 1.5G)
#   BENCH_FILES      files in the many-files tree and in the flat
#                    directory (default 100000)
#   BENCH_RUNS       timed runs per measurement, median reported (default 3)
#   BENCH_PEERS      compared FUSE peers (default "pt restic borg")
#   BENCH_DIR        where the scratch directory goes (default /var/tmp)
#   BENCH_KEEP=1     keep the scratch directory
#   BENCH_RESULTS    also append KEY<TAB>VALUE lines to this file
#   MAVCTL, MAVFS    binaries to use instead of building them
#   BENCH_BUILD      build directory (default build-bench in the checkout)
#   BENCH_PT_OPTS    extra -o options for passthrough_ll
#
# Needs root (drop_caches, mounts), /dev/fuse, restic, borgbackup with
# python3-llfuse or python3-pyfuse3, python3-torch for /usr/bin/python3:
# scripts/install-deps --bench. Ratios are against native ext4 in the same
# run; "cold" drops the page cache, dentries and inodes and restarts the
# FUSE daemons (so no daemon-side cache helps); "warm" follows a full pass.
set -euo pipefail

HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
# shellcheck source=scripts/bench/lib.sh
. "$HERE/lib.sh"
# shellcheck source=scripts/bench/mount-lib.sh
. "$HERE/mount-lib.sh"

BENCH_SIZE=${BENCH_SIZE:-1.5G}
BENCH_FILES=${BENCH_FILES:-100000}
RUNS=${BENCH_RUNS:-3}
PEERS=${BENCH_PEERS:-pt restic borg}
PY=/usr/bin/python3

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
sections=()
for a in "$@"; do
	case "$a" in
	cold | warm | meta | loader | rss | flat) sections+=("$a") ;;
	all) sections+=(cold warm meta loader rss flat) ;;
	*) usage ;;
	esac
done
((${#sections[@]})) || sections=(cold warm meta loader rss flat)
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }
peer() { [[ " $PEERS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- setup --

need=$(($(mb_size_bytes "$BENCH_SIZE") * 4 + 2 * 1024 * 1024 * 1024))
mb_setup mount-read "$need"
W=$BENCH_WORK
D=$W/data # D/src: the dataset; D/many: the many-files tree
mkdir -p "$D" "$W/mnt"

setup_data() {
	[[ -d $D/src ]] && return 0
	bench_log "generating a $BENCH_SIZE dataset"
	"$ROOT/scripts/gen-dataset" generate "$D/src" --seed 1 --size "$BENCH_SIZE" \
		>>"$BENCH_LOG"
	(cd "$D/src" && find images -type f -print0 | sort -z) >"$W/images.list"
	(cd "$D/src" && find video weights -type f -print0 | sort -z) >"$W/big.list"
	IMG_N=$(tr -cd '\0' <"$W/images.list" | wc -c)
	IMG_B=$(cd "$D/src" && xargs -0 stat -c %s <"$W/images.list" |
		awk '{ s += $1 } END { print s }')
	BIG_B=$(cd "$D/src" && xargs -0 stat -c %s <"$W/big.list" |
		awk '{ s += $1 } END { print s }')
	bench_log "mav: import and snapshot v1"
	"$MAVCTL" -R "$W/mav" init >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mav" import "$D/src" >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mav" snapshot -m v1 >>"$BENCH_LOG"
	if peer restic; then
		bench_log "restic: init and backup"
		restic -r "$W/restic" init >>"$BENCH_LOG" 2>&1
		(cd "$D" && restic -r "$W/restic" backup src) >>"$BENCH_LOG" 2>&1
	fi
	if peer borg; then
		bench_log "borg: init and create"
		borg init -e none "$W/borg" >>"$BENCH_LOG" 2>&1
		(cd "$D" && borg create "$W/borg::v1" src) >>"$BENCH_LOG" 2>&1
	fi
	sync
}

setup_many() {
	[[ -d $D/many ]] && return 0
	bench_log "generating $BENCH_FILES small files"
	"$ROOT/scripts/gen-dataset" manyfiles "$D/many" --files "$BENCH_FILES" \
		--seed 1 >>"$BENCH_LOG"
	(cd "$D/many" && find . -type f -print0 | sort -z) >"$W/many.list"
	bench_log "mav: import and snapshot the many-files tree"
	"$MAVCTL" -R "$W/mavmany" init >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mavmany" import "$D/many" >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mavmany" snapshot -m many >>"$BENCH_LOG"
	sync
}

setup_flat() {
	[[ -d $D/flat ]] && return 0
	bench_log "generating one directory of $BENCH_FILES files"
	"$ROOT/scripts/gen-dataset" manyfiles "$D/flat" --files "$BENCH_FILES" \
		--per-dir "$BENCH_FILES" --seed 4 >>"$BENCH_LOG"
	(cd "$D/flat/d000" && ls -f | grep -v '^\.\.\?$' | sort) >"$W/flat.list"
	bench_log "mav: import and snapshot the flat directory"
	"$MAVCTL" -R "$W/mavflat" init >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mavflat" import "$D/flat" >>"$BENCH_LOG"
	"$MAVCTL" -R "$W/mavflat" snapshot -m flat >>"$BENCH_LOG"
	sync
}

# fs_up FS TREE: mount FS's view of TREE (src, many or flat) if it is a FUSE
# peer; sets DIR to the directory that holds the tree's files.
fs_up() {
	local fs=$1 tree=$2 m=$W/mnt/$1
	case "$fs" in
	native) DIR=$D/$tree ;;
	mav)
		case $tree in
		src) mb_mount_mav "$W/mav" "$m" "${MAV_OPTS:-}" ;;
		many) mb_mount_mav "$W/mavmany" "$m" "${MAV_OPTS:-}" ;;
		flat) mb_mount_mav "$W/mavflat" "$m" "${MAV_OPTS:-}" ;;
		esac
		DIR=$m/@v1
		;;
	pt)
		mb_mount_pt "$D/$tree" "$m"
		DIR=$m
		;;
	restic)
		mb_mount_restic "$W/restic" "$m"
		DIR=$(restic_dir "$m")
		;;
	borg)
		mb_mount_borg "$W/borg::v1" "$m"
		DIR=$m/src
		;;
	esac
	[[ -d $DIR ]] || mb_die "$fs: no $DIR"
}

# restic keeps the path as given to backup, under snapshots/latest/.
restic_dir() {
	local d
	for d in "$1/snapshots/latest/src" "$1/snapshots/latest$D/src"; do
		[[ -d $d ]] && {
			echo "$d"
			return
		}
	done
	echo "$1/snapshots/latest/src"
}

fs_down() {
	[[ $1 == native ]] && return 0
	mb_umount "$W/mnt/$1"
}

FSES=(native mav)
for p in pt restic borg; do
	peer "$p" && FSES+=("$p")
done

# ------------------------------------------------------------ readers --

read_big() { (cd "$1" && xargs -0 cat <"$W/big.list" >/dev/null); }
read_images_par() {
	(cd "$1" && xargs -0 -P 2 -n 64 cat <"$W/images.list" >/dev/null)
}
read_images_seq() { (cd "$1" && xargs -0 cat <"$W/images.list" >/dev/null); }
export -f read_big read_images_par read_images_seq
export W

# ---------------------------------------------------------- sections --

# Median of RUNS cold runs per file system, runs interleaved across file
# systems so that drift on a shared machine spreads evenly.
section_cold() {
	local fs i t
	declare -A big=() img=()
	echo
	echo "== cold reads (page cache dropped, daemons restarted); median of $RUNS"
	echo "big files: $(bench_human "$BIG_B"); images: $IMG_N files, $(bench_human "$IMG_B")"
	for ((i = 0; i < RUNS; i++)); do
		for fs in "${FSES[@]}"; do
			bench_log "cold run $((i + 1)): $fs"
			fs_up "$fs" src
			mb_cold
			mb_time bash -c 'read_big "$1"' _ "$DIR"
			big[$fs]+=" $MB_T"
			fs_down "$fs"
			fs_up "$fs" src
			mb_cold
			mb_time bash -c 'read_images_par "$1"' _ "$DIR"
			img[$fs]+=" $MB_T"
			fs_down "$fs"
		done
	done
	for fs in "${FSES[@]}"; do
		# shellcheck disable=SC2086
		t=$(bench_median ${big[$fs]})
		COLD_BIG[$fs]=$(bench_mibps "$BIG_B" "$t")
		# shellcheck disable=SC2086
		t=$(bench_median ${img[$fs]})
		COLD_IMG[$fs]=$(awk -v n="$IMG_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
		COLD_IMGB[$fs]=$(bench_mibps "$IMG_B" "$t")
	done
	mb_row "measurement" "value" "unit" "x native" ""
	for fs in "${FSES[@]}"; do
		case $fs in
		mav) mb_result "cold big files $fs" "${COLD_BIG[$fs]}" "${COLD_BIG[native]}" MiB/s ">=" 0.8 ;;
		*) mb_result "cold big files $fs" "${COLD_BIG[$fs]}" "${COLD_BIG[native]}" MiB/s ;;
		esac
	done
	for fs in "${FSES[@]}"; do
		case $fs in
		mav) mb_result "cold images $fs" "${COLD_IMG[$fs]}" "${COLD_IMG[native]}" files/s ">=" 0.8 ;;
		*) mb_result "cold images $fs" "${COLD_IMG[$fs]}" "${COLD_IMG[native]}" files/s ;;
		esac
		echo "                                   (${COLD_IMGB[$fs]} MiB/s)"
	done
	if peer restic; then
		echo "mav vs restic mount: big files $(bench_ratio "${COLD_BIG[mav]}" "${COLD_BIG[restic]}")x," \
			"images $(bench_ratio "${COLD_IMG[mav]}" "${COLD_IMG[restic]}")x (target >= 4x)"
	fi
	if peer borg; then
		echo "mav vs borg mount: big files $(bench_ratio "${COLD_BIG[mav]}" "${COLD_BIG[borg]}")x," \
			"images $(bench_ratio "${COLD_IMG[mav]}" "${COLD_IMG[borg]}")x"
	fi
}

section_warm() {
	local fs t
	declare -A rate=()
	echo
	echo "== warm rereads of every image (one process; after a warm-up pass); median of $RUNS"
	for fs in "${FSES[@]}"; do
		bench_log "warm: $fs"
		fs_up "$fs" src
		read_images_seq "$DIR"
		mb_runs "$RUNS" t bash -c 'read_images_seq "$1"' _ "$DIR"
		rate[$fs]=$(awk -v n="$IMG_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
		fs_down "$fs"
	done
	for fs in "${FSES[@]}"; do
		case $fs in
		mav) mb_result "warm images $fs" "${rate[$fs]}" "${rate[native]}" files/s ">=" 0.95 ;;
		*) mb_result "warm images $fs" "${rate[$fs]}" "${rate[native]}" files/s ;;
		esac
	done
}

# The three metadata passes over the many-files tree.
meta_find() { (cd "$1" && find . | wc -l >/dev/null); }
meta_stat() {
	/usr/bin/python3 -c '
import os, sys
os.chdir(sys.argv[1])
names = open(sys.argv[2], "rb").read().split(b"\0")
n = int(sys.argv[3]) if len(sys.argv) > 3 else len(names)
for p in names[:n]:
    if p:
        os.lstat(p)' "$1" "$W/many.list" ${2:+"$2"}
}
meta_lslr() { (cd "$1" && ls -lR >/dev/null); }
export -f meta_find meta_lslr meta_stat

# No passthrough here: passthrough_ll keeps an O_PATH descriptor per inode
# the kernel knows, and a 100k-file tree exceeds the open-files limit (EMFILE
# after ~20,000 on the machine this was written on, hard limit not raisable).
meta_fses() { printf '%s\n' native mav; }

section_meta() {
	local fs op mode t i ts
	declare -A res=()
	setup_many
	echo
	echo "== a $BENCH_FILES-file snapshot: find, lstat of every file, ls -lR; median of $RUNS"
	echo "cold: page cache, dentries and inodes dropped and daemons restarted before each run"
	echo "warm: after one untimed pass of the same command, same mount"
	for op in find stat lslr; do
		for fs in $(meta_fses); do
			bench_log "meta $op cold: $fs"
			ts=()
			for ((i = 0; i < RUNS; i++)); do
				fs_up "$fs" many
				mb_cold
				meta_time "$op" "$DIR"
				ts+=("$MB_T")
				fs_down "$fs"
			done
			res[$op.cold.$fs]=$(bench_median "${ts[@]}")
			bench_log "meta $op warm: $fs"
			fs_up "$fs" many
			meta_time "$op" "$DIR"
			ts=()
			for ((i = 0; i < RUNS; i++)); do
				meta_time "$op" "$DIR"
				ts+=("$MB_T")
			done
			res[$op.warm.$fs]=$(bench_median "${ts[@]}")
			[[ $fs == mav ]] && META_HWM=$(mb_hwm "$MB_PID")
			fs_down "$fs"
		done
	done
	mb_row "measurement" "seconds" "" "x native" "(native time / time)"
	for op in find stat lslr; do
		for mode in cold warm; do
			for fs in $(meta_fses); do
				t=${res[$op.$mode.$fs]}
				meta_row "$op" "$mode" "$fs" "$t" "${res[$op.$mode.native]}"
			done
		done
	done
	echo "mavfs peak RSS over the warm passes (default chunk_cache=256M):" \
		"$((META_HWM / 1024)) MiB (last mount, ls -lR)"
}

meta_time() {
	case $1 in
	find) mb_time bash -c 'meta_find "$1"' _ "$2" ;;
	stat) mb_time bash -c 'meta_stat "$1"' _ "$2" ;;
	lslr) mb_time bash -c 'meta_lslr "$1"' _ "$2" ;;
	esac
}

meta_row() { # OP MODE FS SECONDS NATIVE_SECONDS
	local r chk=
	r=$(bench_ratio "$5" "$4")
	if [[ $3 == mav ]]; then
		case $1.$2 in
		find.*) chk="target >= 1.0: $(bench_check x "$r" ">=" 1.0)" ;;
		stat.*) chk="target >= 0.8: $(bench_check x "$r" ">=" 0.8)" ;;
		lslr.*) chk="(ceiling with xattrs ~0.1)" ;;
		esac
	fi
	mb_row "$1 $2 $3" "$(printf '%.3f' "$4")" "s" "${r}x" "$chk"
	bench_record "$1 $2 $3" "$4 s ${r}x"
}

section_loader() {
	local fs i l ep
	declare -A c=() w=()
	[[ -x $PY ]] && $PY -c 'import torch' 2>/dev/null ||
		mb_die "loader: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"
	echo
	echo "== PyTorch DataLoader (torch $($PY -c 'import torch; print(torch.__version__)')," \
		"$($PY --version 2>&1)), num_workers=2, batch_size=32, every image as raw bytes"
	echo "cold epoch: page cache dropped, daemon restarted; warm epoch: the next epoch; median of $RUNS"
	for ((i = 0; i < RUNS; i++)); do
		for fs in native mav; do
			bench_log "loader run $((i + 1)): $fs"
			fs_up "$fs" src
			mb_cold
			$PY "$HERE/mount-loader.py" "$DIR" "$W/images.list" --epochs 3 \
				>"$W/loader.out" 2>>"$BENCH_LOG" || mb_die "loader on $fs failed"
			cat "$W/loader.out" >>"$BENCH_LOG"
			c[$fs]+=" $(awk '$2 == 1 { print $8 }' "$W/loader.out")"
			w[$fs]+=" $(awk '$2 == 3 { print $8 }' "$W/loader.out")"
			if [[ $fs == mav && $i == 0 ]]; then
				$PY "$HERE/mount-loader.py" "$DIR" "$W/images.list" --epochs 2 \
					--unbuffered >"$W/loader.out" 2>>"$BENCH_LOG"
				LOADER_UNBUF=$(awk '$2 == 2 { print $8 }' "$W/loader.out")
			fi
			fs_down "$fs"
		done
	done
	for fs in native mav; do
		# shellcheck disable=SC2086
		c[$fs]=$(bench_median ${c[$fs]})
		# shellcheck disable=SC2086
		w[$fs]=$(bench_median ${w[$fs]})
		c[$fs]=$(awk -v n="$IMG_N" -v t="${c[$fs]}" 'BEGIN { printf "%.0f", n / t }')
		w[$fs]=$(awk -v n="$IMG_N" -v t="${w[$fs]}" 'BEGIN { printf "%.0f", n / t }')
	done
	mb_result "loader cold epoch native" "${c[native]}" "${c[native]}" files/s
	mb_result "loader cold epoch mav" "${c[mav]}" "${c[native]}" files/s ">=" 0.8
	mb_result "loader warm epoch native" "${w[native]}" "${w[native]}" files/s
	mb_result "loader warm epoch mav" "${w[mav]}" "${w[native]}" files/s
	l=$(awk -v n="$IMG_N" -v t="$LOADER_UNBUF" 'BEGIN { printf "%.0f", n / t }')
	mb_result "loader warm mav, open(buffering=0)" "$l" "${w[native]}" files/s
	echo "(warm = the third epoch; open(buffering=0) skips the isatty ioctl, one run)"
}

section_rss() {
	local pid n10 h pass
	setup_many
	echo
	echo "== mavfs peak RSS (VmHWM) serving the $BENCH_FILES-file snapshot, -o chunk_cache=64M"
	n10=$((BENCH_FILES / 10))
	fs_up mav many
	pid=$MB_PID
	MAV_OPTS=
	mb_cold
	rss_step() {
		h=$(mb_hwm "$pid")
		mb_row "$1" "$((h / 1024))" "MiB" "" "(VmRSS $(($(mb_rss "$pid") / 1024)) MiB)"
		bench_record "rss $1" "$h KiB"
	}
	rss_step "after mount"
	mb_time bash -c 'meta_stat "$1" "$2"' _ "$DIR" "$n10"
	rss_step "lstat of $n10 files"
	mb_time bash -c 'meta_stat "$1"' _ "$DIR"
	rss_step "lstat of all files"
	mb_cold
	mb_time bash -c 'meta_stat "$1"' _ "$DIR"
	rss_step "lstat of all files, 2nd (cold)"
	meta_time find "$DIR"
	rss_step "find"
	meta_time lslr "$DIR"
	rss_step "ls -lR"
	mb_time bash -c 'cd "$1" && head -z -n "$2" "$W/many.list" | xargs -0 cat >/dev/null' \
		_ "$DIR" "$n10"
	rss_step "read $n10 files"
	mb_time bash -c 'cd "$1" && xargs -0 cat <"$W/many.list" >/dev/null' _ "$DIR"
	rss_step "read all files"
	# Two more cold passes: the peak must level off once the caches are
	# full, whatever the number of files read.
	for pass in 2nd 3rd 4th; do
		mb_cold
		mb_time bash -c 'cd "$1" && xargs -0 cat <"$W/many.list" >/dev/null' _ "$DIR"
		rss_step "read all files, $pass (cold)"
	done
	fs_down mav
}

# One directory of BENCH_FILES entries: the store keeps it as ~310 pages
# under an index, and a lookup or a listing loads only the pages it needs.
flat_one() { stat -c %s "$1/d000/$2" >/dev/null; }
flat_ls() { (cd "$1/d000" && ls -f | wc -l >/dev/null); }
flat_stat() {
	(cd "$1/d000" && python3 -c 'import os, sys
for n in open(sys.argv[1]).read().split("\n")[:-1]: os.lstat(n)' "$W/flat.list")
}
export -f flat_one flat_ls flat_stat

section_flat() {
	local fs op opts t mid i ts
	declare -A res=()
	setup_flat
	mid=$(sed -n "$((BENCH_FILES / 2))p" "$W/flat.list")
	echo
	echo "== one directory of $BENCH_FILES entries, cold (page cache dropped, daemon restarted); median of $RUNS"
	for op in one ls stat; do
		for fs in native mav; do
			bench_log "flat $op: $fs"
			ts=()
			for ((i = 0; i < RUNS; i++)); do
				flat_cold "$fs" "$op" "$mid"
				ts+=("$MB_T")
			done
			res[$op.$fs]=$(bench_median "${ts[@]}")
		done
	done
	mb_row "measurement" "seconds" "" "x native" "(native time / time)"
	for op in one ls stat; do
		for fs in native mav; do
			t=${res[$op.$fs]}
			mb_row "flat $op $fs" "$(printf '%.4f' "$t")" "s" \
				"$(bench_ratio "${res[$op.native]}" "$t")x" ""
			bench_record "flat $op $fs" "$t s"
		done
	done
	for opts in "" tree_cache=4M; do
		MAV_OPTS=$opts
		fs_up mav flat
		mb_cold
		flat_ls "$DIR"
		flat_stat "$DIR"
		t=$(mb_hwm "$MB_PID")
		mb_row "mavfs peak RSS after ls -f and lstat of all (${opts:-defaults})" \
			"$((t / 1024))" "MiB" "" ""
		bench_record "flat rss ${opts:-defaults}" "$t KiB"
		fs_down mav
	done
	MAV_OPTS=
}

# flat_cold FS OP NAME: a fresh mount (mav) and a cold cache, then OP timed.
flat_cold() {
	local fs=$1 op=$2
	fs_up "$fs" flat
	mb_cold
	case $op in
	one) mb_time bash -c 'flat_one "$1" "$2"' _ "$DIR" "$3" ;;
	ls) mb_time bash -c 'flat_ls "$1"' _ "$DIR" ;;
	stat) mb_time bash -c 'flat_stat "$1"' _ "$DIR" ;;
	esac
	fs_down "$fs"
}

# ---------------------------------------------------------------- main --

declare -A COLD_BIG=() COLD_IMG=() COLD_IMGB=()
IMG_N=0 IMG_B=0 BIG_B=0 META_HWM=0 LOADER_UNBUF=0
MAV_OPTS=
echo "mav mount read benchmark"
mb_versions
echo "dataset:  $BENCH_SIZE (seed 1); many-files tree: $BENCH_FILES files"
echo "peers:    native ext4, mav @v1 (mavfs defaults), $PEERS"
if want cold || want warm || want loader; then
	setup_data
fi
want cold && section_cold
want warm && section_warm
want meta && section_meta
want loader && section_loader
if want rss; then
	MAV_OPTS=chunk_cache=64M
	section_rss
	MAV_OPTS=
fi
want flat && section_flat
echo
echo "noise: other processes took up to ${MB_OTHERS_MAX}% of the CPU during a timed job of 1 s or more"
echo "log: $BENCH_LOG (removed with the scratch directory unless BENCH_KEEP=1)"
