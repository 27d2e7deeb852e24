#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_names.sh: hostile names (spaces, newlines, control bytes, invalid
# UTF-8, 255-byte names, leading dashes, shell metacharacters) survive import
# and export, every --json output stays valid JSON with them, and import
# --delete makes the working tree an exact mirror of the source.
# TAP output; exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
export MAV_REPO="$T/repo"

json_ok() { "$@" | python3 -m json.tool >/dev/null; }
# Names below a directory as raw bytes, one per NUL.
names() { (cd "$1" && find . -mindepth 1 -printf '%P\0' | sort -z); }

S="$T/src"
python3 "$GEN" generate "$S" --seed 11 --size 4M --names hostile >/dev/null
# More bytes that must be escaped in JSON: controls, DEL, quotes, backslash,
# invalid UTF-8 (lone continuation, truncated sequence, overlong).
mkdir -p "$S/esc"
for nm in $'tab\there' $'bell\a' $'del\x7f' 'quote"back\slash' \
	$'lone\x80byte' $'trunc\xe2\x82' $'overlong\xc0\xaf' $'ok\xe2\x82\xac'; do
	printf '%s' "$nm" >"$S/esc/$nm"
done
setfattr -n user.note -v $'line1\nline2\x01' "$S/esc/bell"$'\a'

echo "1..16"

ok "init" "$M" init
ok "import of hostile names" "$M" import "$S"
ok "snapshot" "$M" snapshot -m hostile
ok "export has exactly the source's names (byte for byte)" \
	bash -c '"$1" export v1 "$2/exp" && cmp <(cd "$3" && find . -mindepth 1 -printf "%P\0" | sort -z) <(cd "$2/exp" && find . -mindepth 1 -printf "%P\0" | sort -z)' \
	_ "$M" "$T" "$S"
ok "and the same contents" diff -r --no-dereference "$S" "$T/exp"
ok "cat of a name with a newline" \
	bash -c 'cmp <("$1" cat "v1:hostile/new"$'"'"'\n'"'"'"line.txt") "$2/hostile/new"$'"'"'\n'"'"'"line.txt"' \
	_ "$M" "$S"
ok "ls -R --json is valid JSON" json_ok "$M" ls -R --json v1
ok "status --json is valid JSON" json_ok "$M" status --json
ok "diff --json is valid JSON" \
	bash -c '"$1" snapshot --allow-empty -m x >/dev/null && "$1" diff --json v2 v1 | python3 -m json.tool >/dev/null' \
	_ "$M"
escapes() {
	"$M" ls -R --json v1:esc | python3 -c '
import json, sys
raw = sys.stdin.buffer.read()
assert all(b >= 0x20 for b in raw.rstrip(b"\n")), "raw control byte"
raw.decode("utf-8")                     # the document itself is UTF-8
d = json.loads(raw)
names = sorted(e["name"] for e in d["entries"])
want = sorted(["tab\there", "bell\a", "del\x7f", "quote\"back\\slash",
               "lone\x80byte", "trunc\xe2\x82", "overlong\xc0\xaf",
               "ok\u20ac"])
assert names == want, (names, want)
x = [e for e in d["entries"] if e["name"] == "bell\a"][0]["xattrs"]
assert x == {"user.note": "line1\nline2\x01"}, x'
}
ok "JSON escapes controls; invalid UTF-8 bytes become \\u00XX" escapes
ok "a name starting with a dash works after --" \
	bash -c '"$1" ls -- "v1:hostile/-dash dir" | grep -qx "inner file.txt"' _ "$M"

# --delete: a mirror. Change the source in every way, then compare.
mirror_src() {
	rm -rf "$S/hostile/dir with space" "$S/esc/tab"$'\t'"here" "$S/images"
	mkdir -p "$S/new dir/inner"
	echo fresh >"$S/new dir/inner/file"
	rm -f "$S/captions.jsonl" && mkdir "$S/captions.jsonl" # file -> dir
	rm -rf "$S/meshes" && ln -s audio "$S/meshes"         # dir -> symlink
}
mirror_src
ok "import without --delete keeps names gone from the source" \
	bash -c '"$1" import "$2" >/dev/null && "$1" snapshot -m keep >/dev/null && "$1" ls v3:hostile | grep -qx "dir with space/"' \
	_ "$M" "$S"
ok "import --delete removes them" \
	bash -c '"$1" import --delete "$2" >/dev/null && "$1" snapshot -m mirror >/dev/null && ! "$1" ls v4:hostile | grep -q "dir with space"' \
	_ "$M" "$S"
ok "after --delete the version is an exact mirror of the source" \
	bash -c '"$1" export v4 "$2/exp4" && cmp <(cd "$3" && find . -mindepth 1 -printf "%P\0" | sort -z) <(cd "$2/exp4" && find . -mindepth 1 -printf "%P\0" | sort -z) && diff -r --no-dereference "$3" "$2/exp4"' \
	_ "$M" "$T" "$S"
ok "types changed in place (file->dir, dir->symlink)" \
	bash -c '"$1" ls -l v4 | grep -q "^d.* captions.jsonl/$" && "$1" ls -l v4 | grep -q "^l.* meshes -> audio$"' \
	_ "$M"
ok "--delete on an unchanged mirror changes nothing" \
	bash -c '"$1" import --delete "$2" >/dev/null && [ -z "$("$1" status)" ]' _ "$M" "$S"

finish
