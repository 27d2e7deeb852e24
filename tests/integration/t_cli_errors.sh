#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_errors.sh: mavctl's failures are one line on stderr ("mavctl:
# COMMAND: message") with a distinct exit status per class (2 usage, 3 not a
# repository, 4 not found, 5 locked, 8 conflict, 1 generic); --help works
# everywhere; an unreadable source file stops import naming the file and
# leaves nothing half-imported. TAP output; exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
LOCKPID=
at_exit '[ -n "$LOCKPID" ] && kill "$LOCKPID" 2>/dev/null'
unset MAV_REPO
R="$T/repo"

# exits WANT CMD...: CMD exits WANT, stdout empty, and stderr is exactly one
# line "mavctl: <command>: <message>" (the command part optional).
exits() {
	local want=$1 got
	shift
	"$@" >"$T/stdout" 2>"$T/err"
	got=$?
	echo "exit $got (want $want); stderr: $(cat "$T/err")"
	[ "$got" -eq "$want" ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
		grep -Eq '^mavctl: [^ ]' "$T/err" && [ ! -s "$T/stdout" ]
}

mkdir -p "$T/src/sub" "$T/plain"
echo one >"$T/src/a.txt"
echo two >"$T/src/sub/b.txt"
"$M" -R "$R" init >/dev/null || exit 1
"$M" -R "$R" import "$T/src" >/dev/null || exit 1
"$M" -R "$R" snapshot -m one >/dev/null || exit 1

echo "1..33"

cd "$T" || exit 1
ok "no repository anywhere: exit 3" exits 3 "$M" log
ok "the message says how to name one" \
	grep -q '^mavctl: log: not a mav repository' "$T/err"
ok "-R to a missing path: exit 3" exits 3 "$M" -R "$T/nope" ls v1
ok "-R to a plain directory: exit 3" exits 3 "$M" -R "$T/plain" status
ok "MAV_REPO to a plain directory: exit 3" \
	exits 3 env MAV_REPO="$T/plain" "$M" branch
export MAV_REPO="$R"
ok "MAV_REPO names the repository" bash -c '"$1" log | grep -q "^v1 "' _ "$M"

ok "no command: exit 2" exits 2 "$M"
ok "unknown command: exit 2" exits 2 "$M" frobnicate
ok "unknown option: exit 2" exits 2 "$M" log --frob
ok "option of another command: exit 2" exits 2 "$M" log --stat
ok "missing option value: exit 2" exits 2 "$M" log --branch
ok "missing operand: exit 2" exits 2 "$M" cat
ok "too many operands: exit 2" exits 2 "$M" diff v1 v1 v1
ok "bad -j: exit 2" exits 2 "$M" import -j 0 "$T/src"
ok "bad chunk sizes: exit 2" exits 2 "$M" init --chunk-avg 3000 "$T/r2"
ok "bad size suffix: exit 2" exits 2 "$M" init --chunk-min 16Q "$T/r3"

ok "missing path: exit 4" exits 4 "$M" cat v1:nope.txt
ok "missing directory on the way: exit 4" exits 4 "$M" ls v1:nope/deeper
ok "a file used as a directory: exit 4" exits 4 "$M" cat v1:a.txt/x
ok "unknown revision: exit 4" exits 4 "$M" cat v9:a.txt
ok "missing branch: exit 4" exits 4 "$M" log --branch nope
ok "import of a missing SRC: exit 4" exits 4 "$M" import "$T/nope"
ok "cat of a directory fails (exit 1)" exits 1 "$M" cat v1:sub
ok "init over an existing repository: exit 8" exits 8 "$M" init "$R"

help_all() {
	local c
	"$M" --help | grep -q '^  5  repository locked or busy$' || return 1
	for c in init import snapshot status log show ls cat export diff \
		branch tag reset du fsck gc mount umount; do
		"$M" "$c" --help | grep -q "^usage: mavctl \[-R REPO\] $c" ||
			{ echo "no help for $c"; return 1; }
	done
	"$M" help ls | grep -q '^usage: mavctl \[-R REPO\] ls'
}
ok "--help on mavctl (exit table) and on every command" help_all

# Unreadable file: without the capabilities that let root read anything.
echo secret >"$T/src/sub/locked.bin"
echo fine >"$T/src/zzz.txt"
chmod 000 "$T/src/sub/locked.bin"
# shellcheck disable=SC2054 # the commas belong to setpriv's arguments
NOCAP=(setpriv --bounding-set=-dac_override,-dac_read_search
	--inh-caps=-dac_override,-dac_read_search)
ok "import of an unreadable file fails (exit 1)" \
	exits 1 "${NOCAP[@]}" "$M" import "$T/src"
ok "the error names the file" grep -q "sub/locked.bin" "$T/err"
ok "the unreadable file is not in the working tree" \
	bash -c '! "$1" status | grep -q locked' _ "$M"
ok "fsck is clean after the failed import" "$M" fsck
chmod 644 "$T/src/sub/locked.bin"
ok "once readable, import succeeds and adds it" \
	bash -c '"$1" import "$2" >/dev/null && "$1" status | grep -qx "A sub/locked.bin"' \
	_ "$M" "$T/src"

# Locked: another process holds the repository's writer lock (REPO/lock,
# see store/FORMAT.md) and no daemon socket answers.
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(600)' "$R/lock" >"$T/lockout" &
LOCKPID=$!
for _ in $(seq 50); do grep -q locked "$T/lockout" && break; sleep 0.1; done
ok "a state change while another process holds it: exit 5" \
	exits 5 "$M" snapshot -m locked
ok "reading while another process holds it still works" \
	bash -c '"$1" log | grep -q "^v1 " && "$1" cat v1:a.txt | grep -qx one' _ "$M"
kill "$LOCKPID" 2>/dev/null
wait "$LOCKPID" 2>/dev/null
LOCKPID=
ok "after the lock is gone, snapshot works" \
	bash -c '"$1" snapshot -m two | grep -q "^v2 "' _ "$M"

finish
