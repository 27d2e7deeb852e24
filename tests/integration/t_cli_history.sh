#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_history.sh: versions and names. diff --stat after gen-dataset's
# mutate (the counts must be what mutate reports), renames and deletions,
# show, branches, tags, reset, and every form of revision (vN, tag, branch,
# commit-id prefix; a bad one exits 4). TAP output; exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
export MAV_REPO="$T/repo"
export MAV_AUTHOR=tester

# exits WANT CMD...: CMD fails with exactly status WANT and one stderr line
# "mavctl: ...".
exits() {
	local want=$1 got
	shift
	"$@" >/dev/null 2>"$T/err"
	got=$?
	echo "exit $got (want $want); stderr: $(cat "$T/err")"
	[ "$got" -eq "$want" ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
		grep -q '^mavctl: ' "$T/err"
}
commit_of() { "$M" show --json "$1" | python3 -c \
	'import json,sys; print(json.load(sys.stdin)["commit"]["id"])'; }

S="$T/src"
python3 "$GEN" generate "$S" --seed 3 --size 20M >/dev/null
"$M" init >/dev/null
"$M" import "$S" >/dev/null
"$M" snapshot -m "seed 3" >"$T/v1" || exit 1
V1=$(cut -d' ' -f2 "$T/v1")
python3 "$GEN" mutate "$S" --seed 4 >"$T/mutate"
# "N images: R replaced, A added; C captions edited; rewrote MESH"
read -r REPLACED ADDED < <(sed -E \
	's/^[0-9]+ images: ([0-9]+) replaced, ([0-9]+) added.*/\1 \2/' "$T/mutate")
"$M" import "$S" >/dev/null
"$M" snapshot -m mutated >/dev/null || exit 1

echo "1..24"

stat_counts() {
	local want
	# modified: the replaced images, captions.jsonl and the rewritten mesh
	want="$ADDED added, 0 removed, $((REPLACED + 2)) modified, 0 renamed"
	echo "mutate: $(cat "$T/mutate")"
	"$M" diff --stat v1 v2 | tee "$T/stat" | grep -q "files changed: $want$"
}
ok "diff --stat counts what mutate did" stat_counts
diff_lines() {
	"$M" diff v1 v2 >"$T/diff" &&
		[ "$(grep -c '^A ' "$T/diff")" -eq "$ADDED" ] &&
		[ "$(grep -c '^M ' "$T/diff")" -eq $((REPLACED + 2)) ] &&
		grep -Eq '^M captions.jsonl \([0-9]+ -> [0-9]+\)$' "$T/diff"
}
ok "diff lists A and M lines with sizes" diff_lines
diff_json() {
	"$M" diff --json v1 v2 | python3 -c '
import json, sys
d = json.load(sys.stdin)
kinds = [c["kind"] for c in d["changes"] if c["type"] != "dir"]
st = d["stat"]
assert kinds.count("A") == st["added"] and kinds.count("M") == st["modified"]
assert st["bytes_added"] == sum(c["new_size"] for c in d["changes"]
                                if c["kind"] == "A" and c["type"] != "dir")
assert d["from"] == "v1" and d["to"] == "v2"'
}
ok "diff --json parses and agrees with its stat" diff_json
ok "diff of a version with itself is empty" \
	bash -c '[ -z "$("$1" diff v1 v1)" ]' _ "$M"
ok "show v2 prints the same stat as diff v1 v2" \
	bash -c 'diff <("$1" show v2 | grep "files changed") <(grep "files changed" "$2")' \
	_ "$M" "$T/stat"

# v3: a rename and a deletion.
IMG=$(cd "$S" && find images -name '*.png' | sort | head -1)
GONE=$(cd "$S" && find images -name '*.png' | sort | tail -1)
mv "$S/$IMG" "$S/renamed.png"
rm "$S/$GONE"
"$M" import --delete "$S" >/dev/null
"$M" snapshot -m "rename and delete" >/dev/null
rename_delete() {
	"$M" diff v2 v3 >"$T/d3"
	cat "$T/d3"
	grep -Eqx "R $IMG -> renamed.png \([0-9]+\)" "$T/d3" &&
		grep -Eq "^D $GONE \([0-9]+\)$" "$T/d3" &&
		"$M" diff --stat v2 v3 | grep -q ' 0 added, 1 removed, 0 modified, 1 renamed$'
}
ok "a moved file shows as R, a removed one as D" rename_delete

# Revisions.
rev_forms() {
	[ "$(commit_of v1)" = "$V1" ] &&
		[ "$(commit_of "${V1:0:8}")" = "$V1" ] &&
		[ "$(commit_of "$V1")" = "$V1" ] &&
		[ "$(commit_of main)" = "$(commit_of v3)" ]
}
ok "rev forms: vN, id prefix, full id, branch" rev_forms
ok "unknown version v99 exits 4" exits 4 "$M" show v99
ok "garbage revision exits 4" exits 4 "$M" ls no-such-rev
ok "a too-short id prefix exits 4" exits 4 "$M" show "${V1:0:2}"

# Tags.
ok "tag release v1" "$M" tag release v1
tag_rev() { [ "$(commit_of release)" = "$V1" ]; }
ok "a tag is a revision" tag_rev
ok "tag list shows it with its version" \
	bash -c '"$1" tag | grep -Eq "^release +v1 +${2:0:12}$"' _ "$M" "$V1"
ok "tag --json parses" bash -c '"$1" tag --json | python3 -c "
import json,sys; d=json.load(sys.stdin); assert d[\"tags\"][0][\"name\"]==\"release\""' _ "$M"
ok "tagging an existing name exits 8" exits 8 "$M" tag release v2
ok "a tag named like a version is refused (exit 2)" exits 2 "$M" tag v7 v1
ok "tag -d removes it; the name no longer resolves (exit 4)" \
	bash -c '"$1" tag -d release && "$1" show release; [ $? -eq 4 ]' _ "$M"

# Branches.
ok "branch dev from v1" "$M" branch dev v1
branch_list() {
	"$M" branch | grep -Eq '^\* main +v3 ' &&
		"$M" branch | grep -Eq '^  dev +v1 ' &&
		"$M" branch --json | python3 -c '
import json, sys
b = {x["name"]: x for x in json.load(sys.stdin)["branches"]}
assert b["main"]["current"] and not b["dev"]["current"]
assert b["dev"]["version"] == 1'
}
ok "branch lists main (current) and dev" branch_list
dev_work() {
	echo "dev only" >"$T/devfile"
	mkdir -p "$T/devsrc" && cp "$T/devfile" "$T/devsrc/" &&
		"$M" import --branch dev "$T/devsrc" >/dev/null &&
		"$M" status --branch dev | grep -qx 'A devfile' &&
		"$M" snapshot --branch dev -m "on dev" | grep -q '^v4 ' &&
		[ "$("$M" log --branch dev | awk '{print $1}' | tr '\n' ' ')" = "v4 v1 " ] &&
		[ "$("$M" log --all | awk '{print $1}' | tr '\n' ' ')" = "v4 v3 v2 v1 " ] &&
		"$M" cat dev:devfile | grep -qx 'dev only' &&
		"$M" log --all | grep -E '^v4 ' | grep -q ' dev '
}
ok "work on dev: import, status, snapshot, log --branch, log --all" dev_work
ok "creating an existing branch exits 8" exits 8 "$M" branch dev
ok "an invalid branch name exits 2" exits 2 "$M" branch @bad

# Reset.
reset_main() {
	echo "scratch" >"$S/scratch.txt"
	"$M" import "$S" >/dev/null &&
		"$M" status | grep -qx 'A scratch.txt' &&
		"$M" reset v2 &&
		[ -z "$("$M" status)" ] &&
		[ "$(commit_of main)" = "$(commit_of v2)" ] &&
		"$M" diff --stat v2 main | grep -q ' 0 files changed' &&
		"$M" import "$S" >/dev/null &&
		"$M" snapshot -m "after reset" >/dev/null &&
		"$M" show --json v5 | python3 -c '
import json, sys
d = json.load(sys.stdin)["commit"]
assert d["parents"] == [sys.argv[1]], d' "$(commit_of v2)"
}
ok "reset drops changes and moves the branch; the next snapshot follows it" \
	reset_main
ok "branch -d dev; it no longer resolves (exit 4)" \
	bash -c '"$1" branch -d dev && ! "$1" branch | grep -q dev && "$1" log --branch dev; [ $? -eq 4 ]' _ "$M"

finish
