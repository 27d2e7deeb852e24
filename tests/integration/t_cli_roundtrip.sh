#!/usr/bin/env bash
# shellcheck disable=SC2016 # bash -c scripts get their values as "$1"...
# t_cli_roundtrip.sh: mavctl init, import, status, snapshot, log, ls, cat,
# export, du, fsck on a generated dataset plus the awkward cases (symlinks,
# a symlink loop, hard links, xattrs, empty files, odd modes and owners):
# export of v1 must equal the source byte for byte with its metadata.
# TAP output; exits 1 on any failure.
# shellcheck source=lib_tap.sh
. "$(dirname "$0")/lib_tap.sh"
export MAV_REPO="$T/repo"
export MAV_AUTHOR=tester



# The source: a generated dataset plus every awkward case.
S="$T/src"
python3 "$GEN" generate "$S" --seed 7 --size 20M >/dev/null
add_awkward "$S"

echo "1..30"

ok "init creates a repository" "$M" init --chunk-avg 32K
ok "import copies the tree" "$M" import "$S"
count_status() {
	local want got
	want=$(cd "$S" && find . -mindepth 1 | wc -l)
	got=$("$M" status | grep -c '^A ')
	echo "status A lines: $got, names in source: $want"
	[ "$got" -eq "$want" ]
}
ok "status lists every imported name as added" count_status
snap1() {
	"$M" snapshot -m "first import" >"$T/snap1" &&
		grep -Eq '^v1 [0-9a-f]{64}$' "$T/snap1"
}
ok "snapshot prints v1 and the commit id" snap1
V1=$(cut -d' ' -f2 "$T/snap1")
status_empty() { [ -z "$("$M" status)" ]; }
ok "status is empty after the snapshot" status_empty
log_v1() {
	"$M" log | grep -E "^v1 +${V1:0:12} .* tester +main +first import$" &&
		"$M" log --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [v["version"] for v in d["versions"]] == [1], d
assert d["versions"][0]["id"] == sys.argv[1]
assert d["versions"][0]["message"] == "first import"' "$V1"
}
ok "log shows v1 (human and --json)" log_v1
ls_all() {
	local want got
	want=$(cd "$S" && find . -mindepth 1 | wc -l)
	got=$("$M" ls -R v1 | wc -l)
	[ "$got" -eq "$want" ] &&
		"$M" ls v1 | grep -qx 'images/' &&
		"$M" ls -l v1:odd | grep -q ' loop-a -> loop-b$'
}
ok "ls -R lists every name; ls -l shows link targets" ls_all
ls_json() {
	"$M" ls -R --json v1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
e = {x["path"]: x for x in d["entries"]}
t = e["odd/deeper/deepest/text"]
assert t["mode"] == 0o751 and t["size"] == 3000, t
assert t["xattrs"] == {"user.bin": "\u0000\u00ff\u0010"}, t["xattrs"]
h = e["odd/hello.txt"]
assert (h["uid"], h["gid"], h["nlink"]) == (1234, 5678, 3), h
assert e["odd/self"]["type"] == "symlink" and e["odd/self"]["target"] == "."
assert e["odd/empty"]["size"] == 0
assert e["odd/loop-a"]["mtime"] == "2001-02-03T04:05:06.123456789Z" or \
    e["odd/loop-a"]["mtime_ns"] % 10**9 == 123456789, e["odd/loop-a"]'
}
ok "ls --json carries modes, owners, xattrs, nlink, targets" ls_json
cat_same() {
	local f
	for f in captions.jsonl odd/hello.txt odd/deeper/deepest/text \
		$(cd "$S" && find images weights -type f | head -5); do
		cmp "$S/$f" <("$M" cat "v1:$f") || return 1
	done
	[ "$("$M" cat v1:odd/empty | wc -c)" -eq 0 ]
}
ok "cat writes files byte for byte (and empty files as nothing)" cat_same
cat_range() {
	local f
	f=$(cd "$S" && find weights -type f | head -1)
	cmp <(tail -c +100001 "$S/$f" | head -c 70000) \
		<("$M" cat --offset 100000 --length 70000 "v1:$f")
}
ok "cat --offset/--length writes a byte range" cat_range
ok "export of v1 equals the source (content, modes, owners, mtimes, links, xattrs)" \
	bash -c '"$1" export v1 "$2/exp" && python3 "$TREECMP" "$3" "$2/exp"' \
	_ "$M" "$T" "$S"
ok "export refuses a non-empty destination (exit 8)" \
	bash -c '"$1" export v1 "$2"; [ $? -eq 8 ]' _ "$M" "$S"
ok "re-import of an unchanged tree leaves status empty" \
	bash -c '"$1" import "$2" >/dev/null && [ -z "$("$1" status)" ]' _ "$M" "$S"
ok "snapshot of an unchanged tree fails (exit 1)" \
	bash -c '"$1" snapshot -m nothing; [ $? -eq 1 ]' _ "$M"
ok "snapshot --allow-empty makes v2" \
	bash -c '"$1" snapshot --allow-empty -m again | grep -q "^v2 "' _ "$M"
log_order() {
	[ "$("$M" log | awk '{print $1}' | tr '\n' ' ')" = "v2 v1 " ] &&
		[ "$("$M" log --all | awk '{print $1}' | tr '\n' ' ')" = "v2 v1 " ]
}
ok "log lists versions newest first" log_order
show_v1() {
	"$M" show v1 | grep -q "^commit  $V1$" &&
		"$M" show --json v1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["commit"]["version"] == 1 and d["commit"]["parents"] == []
assert d["stat"]["added"] > 40 and d["stat"]["removed"] == 0, d["stat"]'
}
ok "show prints the commit and a stat against its parent" show_v1
du_json() {
	"$M" du --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["logical_bytes"] >= d["unique_bytes"] > 0, d
assert d["stored_bytes"] > 0 and d["chunks"] > 0, d
assert d["dedup_ratio"] >= 1.9, d   # v1 and v2 share everything' &&
		"$M" du v1 | grep -q '^dedup'
}
ok "du reports logical, unique, stored bytes and ratios" du_json
# Text compresses with the default zstd level (3); --zstd-level 0 stores
# frames raw, and du's compression ratio says which.
compression() {
	mkdir -p "$T/text" &&
		python3 -c 'import sys
for i in range(20000):
    print("{\"path\": \"images/%06d.png\", \"license\": \"CC-BY-4.0\"}" % i)' \
			>"$T/text/captions.jsonl" &&
		"$M" -R "$T/zdef" init >/dev/null && "$M" -R "$T/zraw" init --zstd-level 0 >/dev/null &&
		"$M" -R "$T/zdef" import "$T/text" >/dev/null && "$M" -R "$T/zraw" import "$T/text" >/dev/null &&
		"$M" -R "$T/zdef" snapshot -m t >/dev/null && "$M" -R "$T/zraw" snapshot -m t >/dev/null &&
		"$M" -R "$T/zdef" du --json >"$T/zdef.json" && "$M" -R "$T/zraw" du --json >"$T/zraw.json" &&
		python3 -c '
import json, sys
z, r = (json.load(open(p)) for p in sys.argv[1:3])
assert z["compression_ratio"] > 4 and z["stored_bytes"] * 4 < z["unique_bytes"], z
assert r["compression_ratio"] <= 1 and r["stored_bytes"] >= r["unique_bytes"], r' \
			"$T/zdef.json" "$T/zraw.json" &&
		"$M" -R "$T/zraw" cat v1:captions.jsonl | cmp - "$T/text/captions.jsonl"
}
ok "zstd by default, raw with --zstd-level 0: du's compression ratio says so" compression
# The default import runs a worker per core; one worker gives the same
# version, to the last tree id. (Not with hard links: a link group's id is
# random, so its trees differ between any two imports.)
same_root_any_jobs() {
	local r
	python3 "$GEN" generate "$T/jsrc" --seed 9 --size 6M >/dev/null || return 1
	for j in 1 default; do
		r="$T/jobs-$j"
		"$M" -R "$r" init >/dev/null || return 1
		if [ "$j" = default ]; then
			"$M" -R "$r" import "$T/jsrc" >/dev/null || return 1
		else
			"$M" -R "$r" import -j "$j" "$T/jsrc" >/dev/null || return 1
		fi
		"$M" -R "$r" snapshot -m j >/dev/null &&
			"$M" -R "$r" show --json v1 | python3 -c 'import json, sys
print(json.load(sys.stdin)["commit"]["root"])' >"$r.root" || return 1
	done
	[ -s "$T/jobs-1.root" ] && cmp "$T/jobs-1.root" "$T/jobs-default.root"
}
ok "import with one worker and with the default makes the same root tree" same_root_any_jobs
ok "fsck is clean (exit 0)" "$M" fsck
ok "fsck --json parses and says ok" \
	bash -c '"$1" fsck --json | python3 -c "import json,sys; assert json.load(sys.stdin)[\"ok\"]"' _ "$M"
ok "gc after all this frees nothing referenced (fsck still clean)" \
	bash -c '"$1" gc && "$1" fsck && "$1" cat v1:odd/hello.txt | grep -qx hello' _ "$M"
many_dirs() {
	rm -rf "$T/exp2"
	"$M" export v2 "$T/exp2" && python3 "$TREECMP" "$S" "$T/exp2"
}
ok "export of v2 (same tree, after gc) equals the source" many_dirs
# Deleted chunks keep their space until compaction reaches them, which for
# a repository nobody writes to is never: gc must give the space back.
gc_gives_space_back() {
	local before after
	mkdir -p "$T/junk" && head -c 24000000 /dev/urandom >"$T/junk/j.bin" &&
		"$M" branch scratch v2 || return 1
	before=$(du -sb "$MAV_REPO" | cut -f1)
	"$M" import "$T/junk" --branch scratch &&
		"$M" reset v2 --branch scratch >/dev/null &&
		"$M" gc | grep -q ' [1-9][0-9]* chunks' || return 1
	after=$(du -sb "$MAV_REPO" | cut -f1)
	echo "repository bytes: $before before the import, $after after gc"
	[ "$after" -lt $((before + 4000000)) ] && "$M" fsck >/dev/null
}
ok "gc gives back the disk space of the chunks it frees" gc_gives_space_back
relinked() {
	chmod 0600 "$S/odd/hello.txt" # one inode, three names
	echo "more" >>"$S/odd/deeper/deepest/text"
	rm -rf "$T/exp3"
	"$M" import "$S" >/dev/null &&
		[ "$("$M" status | sort | tr '\n' ' ')" = "M odd/deeper/deepest/text M odd/deeper/hello-hardlink-2 M odd/hello-hardlink M odd/hello.txt " ] &&
		[ "$("$M" status --json | python3 -c 'import json, sys
for c in json.load(sys.stdin)["changes"]: print(c["kind"], c["path"])' | sort | tr '\n' ' ')" = \
			"$("$M" status | sort | tr '\n' ' ')" ] &&
		"$M" snapshot -m "chmod a hard-linked file" >/dev/null &&
		"$M" export v3 "$T/exp3" && python3 "$TREECMP" "$S" "$T/exp3"
}
ok "re-import after a hard-linked file changed keeps every name right" relinked
progress_on_tty() {
	mkdir -p "$T/prog" && head -c 3000000 /dev/urandom >"$T/prog/p.bin" &&
		"$M" import "$T/prog" 2>"$T/plain.err" >/dev/null &&
		! grep -q 'files, .*/s' "$T/plain.err" &&
		echo more >>"$T/prog/p.bin" &&
		script -qec "$M import $T/prog" /dev/null >"$T/tty.out" &&
		tr '\r' '\n' <"$T/tty.out" | grep -q '^import: .* files, .*/s'
}
ok "import shows a progress line on a terminal only" progress_on_tty
# export and fsck too: lines such as "fsck: 12 chunks, 3.0 MB, ...".
progress_others() {
	"$M" export v1 "$T/exp-plain" 2>"$T/plain.err" >/dev/null &&
		"$M" fsck 2>>"$T/plain.err" >/dev/null &&
		! grep -q 'files, \|chunks, ' "$T/plain.err" &&
		script -qec "$M export v1 $T/exp-tty" /dev/null >"$T/tty.out" &&
		tr '\r' '\n' <"$T/tty.out" | grep -q '^export: [1-9][0-9]* files, .*/s' &&
		script -qec "$M fsck" /dev/null >"$T/tty.out" &&
		tr '\r' '\n' <"$T/tty.out" | grep -q '^fsck: [1-9][0-9]* chunks, .*/s' &&
		"$M" gc 2>"$T/plain.err" >/dev/null && ! grep -q 'keys, ' "$T/plain.err" &&
		script -qec "$M gc" /dev/null >"$T/tty.out" &&
		tr '\r' '\n' <"$T/tty.out" | grep -q '^gc: [1-9][0-9]* chunks and keys, .*/s'
}
ok "export, fsck and gc show one on a terminal only" progress_others

# ext4 keeps times to 2446; trees keep int64 nanoseconds, to 2262-04-11.
# A later time is clamped to that end, as ext4 clamps to its own (it
# used to wrap around to 1715).
far_future() {
	local r=$T/far-repo
	mkdir "$T/far" && printf 'x\n' >"$T/far/f" &&
		touch -d '2300-01-01' "$T/far/f" &&
		"$M" -R "$r" init >/dev/null && "$M" -R "$r" import "$T/far" &&
		"$M" -R "$r" snapshot >/dev/null &&
		"$M" -R "$r" ls --json v1 | grep -q '"mtime_ns":9223372036854775807,'
}
ok "import clamps an mtime past 2262 to 2262-04-11" far_future

# Named pipes and sockets' names are imported, listed, kept by a re-import
# and exported again; device nodes are skipped (they were all skipped).
special_import() {
	local r=$T/sp-repo src=$T/sp
	mkdir "$src" && mkfifo -m 640 "$src/p" &&
		python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$src/s" &&
		mknod "$src/null" c 1 3 &&
		"$M" -R "$r" init >/dev/null && "$M" -R "$r" import "$src" 2>"$T/sp-err" &&
		grep -q "skipping '.*null': a device node" "$T/sp-err" &&
		"$M" -R "$r" snapshot >/dev/null &&
		"$M" -R "$r" ls -l v1 >"$T/sp-ls" && grep -q '^prw-r----- .* p$' "$T/sp-ls" &&
		grep -q '^s.* s$' "$T/sp-ls" && ! grep -q null "$T/sp-ls" &&
		"$M" -R "$r" import "$src" 2>/dev/null && [ -z "$("$M" -R "$r" status)" ] &&
		"$M" -R "$r" export v1 "$T/sp-out" && [ -p "$T/sp-out/p" ] && [ -S "$T/sp-out/s" ]
}
ok "import takes named pipes and sockets, skips device nodes" special_import

finish
