# shellcheck shell=bash disable=SC2034 # sourced: M, FS, GEN are for the tests
# lib_tap.sh: what every integration test shares (sourced, not run).
#
# Gives: $MAV_SRC, $MAV_BIN, $M (mavctl), $FS (mavfs), $GEN (gen-dataset),
# $TREECMP, $T (a private temp dir, removed on every exit path unless
# MAV_KEEP is set), at_exit CMD (run CMD, in order, before $T goes), and TAP helpers:
# ok DESC CMD... (one line from CMD's status, its output as comments on
# failure), fails_with PATTERN CMD... and finish (the summary and status).
set -uo pipefail

MAV_SRC=${MAV_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
MAV_BIN=${MAV_BIN:-$MAV_SRC/build/bin}
M="$MAV_BIN/mavctl"
FS="$MAV_BIN/mavfs"
GEN="$MAV_SRC/scripts/gen-dataset"
export TREECMP="$MAV_SRC/tests/integration/treecmp.py"
T=$(mktemp -d /tmp/mav-test.XXXXXX)
AT_EXIT=()

at_exit() { AT_EXIT+=("$1"); }
tap_cleanup() {
	local c
	for c in "${AT_EXIT[@]}"; do
		eval "$c"
	done
	if [ -n "${MAV_KEEP:-}" ]; then
		echo "# kept $T" >&2
	else
		chmod -R u+rwX "$T" 2>/dev/null
		rm -rf "$T"
	fi
}
trap tap_cleanup EXIT
trap 'exit 130' INT TERM

n=0
fails=0
ok() { # ok DESCRIPTION CMD...: one TAP line from CMD's status
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$T/out" 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' "$T/out"
		fails=$((fails + 1))
	fi
}
fails_with() { # fails_with PATTERN CMD...: CMD fails and says PATTERN
	local pat=$1
	shift
	if "$@" >"$T/fw" 2>&1; then
		echo "succeeded, expected failure"
		cat "$T/fw"
		return 1
	fi
	grep -q -- "$pat" "$T/fw" || {
		echo "error does not mention '$pat':"
		cat "$T/fw"
		return 1
	}
}
# treecmp A B [--no-mtime]: the trees hold the same names, types, modes,
# owners, sizes, link counts, mtimes, bytes, symlink targets, user.* xattrs
# and hard-link groups.
treecmp() { python3 "$TREECMP" "$@"; }
# The awkward cases every source tree gets on top of a generated dataset.
add_awkward() {
	local s=$1
	mkdir -p "$s/odd/deeper/deepest" "$s/odd/empty-dir"
	: >"$s/odd/empty"
	printf 'hello\n' >"$s/odd/hello.txt"
	ln "$s/odd/hello.txt" "$s/odd/hello-hardlink"
	ln "$s/odd/hello.txt" "$s/odd/deeper/hello-hardlink-2"
	ln -s ../hello.txt "$s/odd/deeper/rel-link"
	ln -s /nonexistent/target "$s/odd/dangling"
	ln -s loop-b "$s/odd/loop-a"
	ln -s loop-a "$s/odd/loop-b"
	ln -s . "$s/odd/self"
	setfattr -n user.license -v CC-BY-4.0 "$s/odd/hello.txt"
	setfattr -n user.mav.source -v "camera 7" "$s/odd/deeper"
	printf 'x%.0s' $(seq 1 3000) >"$s/odd/deeper/deepest/text"
	setfattr -n user.bin -v 0x00ff10 "$s/odd/deeper/deepest/text"
	chmod 0751 "$s/odd/deeper/deepest/text"
	chmod 0700 "$s/odd/deeper/deepest"
	chown 1234:5678 "$s/odd/hello.txt"
	touch -h -d '2001-02-03 04:05:06.123456789' "$s/odd/dangling" \
		"$s/odd/loop-a"
	touch -d '1999-12-31 23:59:59.5' "$s/odd/empty-dir"
}
finish() {
	echo "# $fails of $n failed"
	[ "$fails" -eq 0 ]
}
