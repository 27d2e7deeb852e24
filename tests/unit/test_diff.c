/* test_diff.c - mav_diff over trees stored in an in-memory repository. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mav/error.h"
#include "mav/kv.h"
#include "mav/maint.h"
#include "mav/object.h"
#include "mav/repo.h"

static struct mav_repo *repo;
static const mav_id zero;

static int setup(void **state)
{
	struct mav_kv *kv;

	(void)state;
	if (mav_kv_open_mem(&kv) != 0)
		return -1;
	return mav_repo_open_kv(&repo, kv, true, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	mav_repo_close(repo);
	return 0;
}

static mav_id content(const char *tag)
{
	mav_id id;

	mav_id_hash(&id, tag, strlen(tag));
	return id;
}

static struct mav_entry file(const char *name, const char *tag, uint64_t size)
{
	return (struct mav_entry){.name = (char *)name,
	                          .type = MAV_T_FILE,
	                          .mode = 0644,
	                          .size = size,
	                          .nlink = 1,
	                          .id = content(tag)};
}

static struct mav_entry dir(const char *name, mav_id id)
{
	return (struct mav_entry){.name = (char *)name,
	                          .type = MAV_T_DIR,
	                          .mode = 0755,
	                          .nlink = 1,
	                          .id = id};
}

static struct mav_entry link_to(const char *name, const char *target)
{
	return (struct mav_entry){.name = (char *)name,
	                          .type = MAV_T_SYMLINK,
	                          .mode = 0777,
	                          .size = strlen(target),
	                          .nlink = 1,
	                          .target = (char *)target};
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mav_entry *)a)->name,
	              ((const struct mav_entry *)b)->name);
}

/* Store a tree (entries in any order) and return its id. */
static mav_id tree(struct mav_entry *e, uint32_t n)
{
	struct mav_kv_batch *b;
	uint8_t *enc;
	size_t len;
	mav_id id;

	qsort(e, n, sizeof(*e), entry_cmp);
	assert_int_equal(mav_tree_encode(&enc, &len, e, n), 0);
	assert_int_equal(mav_kv_batch_new(&b), 0);
	assert_int_equal(mav_repo_put_object(repo, b, 0, &id, enc, len), 0);
	assert_int_equal(mav_repo_write(repo, b, 0), 0);
	mav_kv_batch_free(b);
	free(enc);
	return id;
}

/* The id a tree would have, without storing it. */
static mav_id tree_id_unstored(struct mav_entry *e, uint32_t n)
{
	uint8_t *enc;
	size_t len;
	mav_id id;

	qsort(e, n, sizeof(*e), entry_cmp);
	assert_int_equal(mav_tree_encode(&enc, &len, e, n), 0);
	mav_id_hash(&id, enc, len);
	free(enc);
	return id;
}

struct log {
	char text[4096];
	int calls, stop_after, stop_rc;
};

static int collect(void *ctx, const struct mav_change *c)
{
	struct log *l = ctx;
	size_t used = strlen(l->text);

	if (c->kind == 'R')
		snprintf(l->text + used, sizeof(l->text) - used, "R %s>%s;",
		         c->old_path, c->path);
	else
		snprintf(l->text + used, sizeof(l->text) - used, "%c %s;",
		         c->kind, c->path);
	l->calls++;
	return l->stop_after && l->calls == l->stop_after ? l->stop_rc : 0;
}

static void expect(const mav_id *a, const mav_id *b, const char *want)
{
	struct log l = {0};

	assert_int_equal(mav_diff(repo, a, b, collect, &l), 0);
	assert_string_equal(l.text, want);
}

/* A small project: docs/{readme,notes/todo}, img/{a.png,b.png}, run.sh,
 * latest -> img/b.png */
static mav_id base_tree(void)
{
	struct mav_entry notes[] = {file("todo", "todo1", 5)};
	struct mav_entry docs[] = {file("readme", "readme1", 10),
	                           dir("notes", tree(notes, 1))};
	struct mav_entry img[] = {file("a.png", "A", 1000),
	                          file("b.png", "B", 2000)};
	struct mav_entry root[] = {
	    dir("docs", tree(docs, 2)), dir("img", tree(img, 2)),
	    file("run.sh", "run1", 42), link_to("latest", "img/b.png")};

	root[2].mode = 0755;
	return tree(root, 4);
}

static void test_identical_and_empty(void **state)
{
	mav_id t = base_tree(), empty;

	(void)state;
	mav_repo_empty_tree(&empty);
	expect(&t, &t, "");
	expect(&zero, &zero, "");
	expect(&zero, &empty, "");
	expect(&empty, &zero, "");
}

static void test_all_added_and_removed(void **state)
{
	mav_id t = base_tree();

	(void)state;
	expect(&zero, &t,
	       "A docs;A docs/notes;A docs/notes/todo;A docs/readme;A img;"
	       "A img/a.png;A img/b.png;A latest;A run.sh;");
	expect(&t, &zero,
	       "D docs;D docs/notes;D docs/notes/todo;D docs/readme;D img;"
	       "D img/a.png;D img/b.png;D latest;D run.sh;");
}

static void test_modifications(void **state)
{
	struct mav_xattr lic = {"user.mav.license", (uint8_t *)"CC0", 3};
	struct mav_entry notes[] = {file("todo", "todo2", 6)};
	struct mav_entry docs[] = {file("readme", "readme1", 10),
	                           dir("notes", tree(notes, 1))};
	struct mav_entry img[] = {file("a.png", "A", 1000),
	                          file("b.png", "B", 2000)};
	struct mav_entry root[] = {dir("docs", tree(docs, 2)), dir("img", zero),
	                           file("run.sh", "run1", 42),
	                           link_to("latest", "img/a.png")};
	mav_id a = base_tree(), b;
	struct log l = {0};

	(void)state;
	img[0].mtime_ns = 123456; /* owner and mtime are not changes */
	img[0].uid = 1000;
	img[1].nxattrs = 1; /* metadata is */
	img[1].xattrs = &lic;
	root[1].id = tree(img, 2);
	root[2].mode = 0644; /* lost its x bit */
	b = tree(root, 4);
	expect(&a, &b, "M docs/notes/todo;M img/b.png;M latest;M run.sh;");
	assert_int_equal(mav_diff(repo, &a, &b, collect, &l), 0);
	assert_int_equal(l.calls, 4);
}

static int size_cb(void *ctx, const struct mav_change *c)
{
	int *seen = ctx;

	(*seen)++;
	assert_string_equal(c->path, "f");
	assert_int_equal(c->kind, 'M');
	assert_int_equal(c->type, MAV_T_FILE);
	assert_int_equal(c->old_size, 10);
	assert_int_equal(c->new_size, 20);
	return 0;
}

static void test_sizes_reported(void **state)
{
	struct mav_entry a[] = {file("f", "v1", 10)};
	struct mav_entry b[] = {file("f", "v2", 20)};
	mav_id ta = tree(a, 1), tb = tree(b, 1);
	int seen = 0;

	(void)state;
	assert_int_equal(mav_diff(repo, &ta, &tb, size_cb, &seen), 0);
	assert_int_equal(seen, 1);
}

static void test_type_change(void **state)
{
	struct mav_entry inner[] = {file("x", "X", 3), file("y", "Y", 4)};
	struct mav_entry a[] = {file("thing", "T", 9), file("z", "Z", 1)};
	struct mav_entry b[] = {dir("thing", tree(inner, 2)),
	                        file("z", "Z", 1)};
	mav_id ta = tree(a, 2), tb = tree(b, 2);

	(void)state;
	expect(&ta, &tb, "M thing;A thing/x;A thing/y;");
	expect(&tb, &ta, "M thing;D thing/x;D thing/y;");
}

static void test_renames(void **state)
{
	struct mav_entry a[] = {file("a.bin", "data", 100),
	                        file("edit.bin", "e1", 50),
	                        file("empty1", "", 0), file("keep", "k", 1)};
	struct mav_entry b[] = {file("b.bin", "data", 100),
	                        file("edited.bin", "e2", 51),
	                        file("empty2", "", 0), file("keep", "k", 1)};
	mav_id ta = tree(a, 4), tb = tree(b, 4);

	(void)state;
	/* Same content: a rename, reported last. Edited: D + A. Empty
	 * files are never renames (all empty files share one id). */
	expect(&ta, &tb,
	       "D edit.bin;A edited.bin;D empty1;A empty2;R a.bin>b.bin;");
}

static void test_moved_directory(void **state)
{
	struct mav_entry files[] = {file("f1", "one", 11),
	                            file("f2", "two", 22)};
	mav_id sub = tree(files, 2);
	struct mav_entry a[] = {dir("old", sub), file("z", "Z", 1)};
	struct mav_entry b[] = {dir("new", sub), file("z", "Z", 1)};
	mav_id ta = tree(a, 2), tb = tree(b, 2);

	(void)state;
	expect(&ta, &tb, "A new;D old;R old/f1>new/f1;R old/f2>new/f2;");
}

static void test_walk_order(void **state)
{
	struct mav_entry inner[] = {file("b", "ab", 1)};
	struct mav_entry root[] = {dir("a", tree(inner, 1)),
	                           file("a-c", "ac", 1), file("a.d", "ad", 1)};
	mav_id t = tree(root, 3);

	(void)state;
	/* Depth first, names in byte order within a directory. */
	expect(&zero, &t, "A a;A a/b;A a-c;A a.d;");
}

/* Identical subtrees are never opened: here they are not even stored, so
 * opening one would fail with MAV_ENOTFOUND. */
static void test_skips_identical_subtrees(void **state)
{
	struct mav_entry big[] = {file("huge", "H", 1 << 30)};
	mav_id absent = tree_id_unstored(big, 1);
	struct mav_entry s1[] = {file("f", "v1", 1)};
	struct mav_entry s2[] = {file("f", "v2", 2)};
	struct mav_entry a[] = {dir("big", absent), dir("small", tree(s1, 1))};
	struct mav_entry b[] = {dir("big", absent), dir("small", tree(s2, 1))};
	mav_id ta = tree(a, 2), tb = tree(b, 2);
	struct log l = {0};

	(void)state;
	expect(&ta, &tb, "M small/f;");
	/* And the control: a missing tree that must be opened is an error. */
	assert_int_equal(mav_diff(repo, &zero, &ta, collect, &l),
	                 MAV_ENOTFOUND);
}

static void test_callback_stops(void **state)
{
	mav_id t = base_tree();
	struct log l = {.stop_after = 2, .stop_rc = 7};

	(void)state;
	assert_int_equal(mav_diff(repo, &zero, &t, collect, &l), 7);
	assert_int_equal(l.calls, 2);
	assert_string_equal(l.text, "A docs;A docs/notes;");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100 directories of 1000 files; one file changes. */
static void test_large_tree_small_change(void **state)
{
	enum { DIRS = 100, FILES = 1000 };
	struct mav_entry *f = calloc(FILES, sizeof(*f));
	struct mav_entry *d = calloc(DIRS, sizeof(*d));
	char(*names)[16] = calloc(DIRS + FILES, 16);
	mav_id ta, tb;
	double t0, t1;

	(void)state;
	assert_non_null(f);
	assert_non_null(d);
	assert_non_null(names);
	for (int i = 0; i < FILES; i++)
		snprintf(names[i], 16, "f%05d", i);
	for (int i = 0; i < DIRS; i++)
		snprintf(names[FILES + i], 16, "d%03d", i);
	for (int k = 0; k < DIRS; k++) {
		for (int i = 0; i < FILES; i++) {
			f[i] = file(names[i], names[i], 100);
			f[i].id.b[0] = (uint8_t)k;
		}
		d[k] = dir(names[FILES + k], tree(f, FILES));
	}
	ta = tree(d, DIRS);
	f[500].id.b[1] ^= 1; /* f is still directory d099's listing */
	d[99].id = tree(f, FILES);
	tb = tree(d, DIRS);
	t0 = now_s();
	expect(&ta, &tb, "M d099/f00500;");
	t1 = now_s();
	printf("# diff of 100k-file trees, one change: %.2f ms\n",
	       (t1 - t0) * 1e3);
	free(names);
	free(d);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identical_and_empty),
	    cmocka_unit_test(test_all_added_and_removed),
	    cmocka_unit_test(test_modifications),
	    cmocka_unit_test(test_sizes_reported),
	    cmocka_unit_test(test_type_change),
	    cmocka_unit_test(test_renames),
	    cmocka_unit_test(test_moved_directory),
	    cmocka_unit_test(test_walk_order),
	    cmocka_unit_test(test_skips_identical_subtrees),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_large_tree_small_change),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
