/* test_crash.c - power loss and failing I/O at every point of a workload.
 *
 * The workload (files written, one fsynced, a snapshot, more writes, a
 * rename, a second snapshot) runs over the fault-injecting kv, once per
 * fail point: the Nth kv call and every later one fail, then the power is
 * cut. After each run the repository is reopened and must be consistent:
 * fsck finds nothing, every version that exists has exactly the content the
 * workload gave it, and a file whose fsync returned is intact. A second
 * workload does the same for branch and tag changes, a reset and gc. A
 * third kills the process after each way of sealing an append stream.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mav/error.h"
#include "mav/maint.h"
#include "mav/repo.h"
#include "mav/wt.h"

#define BIG (600u << 10)

static uint8_t big[BIG];

struct run {
	struct mav_kv *fault;
	struct mav_repo *r;
	struct mav_wt *wt;
	bool synced;   /* fsync of "durable" returned 0 */
	int snapshots; /* snapshots that returned 0 */
};

/* The new file's inode number, or an error. */
static int64_t put(struct mav_wt *wt, uint64_t dir, const char *name,
                   const void *p, size_t len)
{
	struct mav_attr a;
	int rc = mav_wt_create(&a, wt, dir, name, 0644, 0, 0);

	if (rc == 0 && mav_wt_write(wt, a.ino, 0, p, len) != (ssize_t)len)
		rc = -EIO;
	return rc < 0 ? rc : (int64_t)a.ino;
}

static void workload(struct run *x)
{
	struct mav_snapshot_opts o = {.message = "w"};
	struct mav_attr a;
	uint64_t v;
	mav_id c;
	int64_t ino;

	if (put(x->wt, MAV_WT_ROOT, "a", "alpha", 5) < 0)
		return;
	ino = put(x->wt, MAV_WT_ROOT, "durable", big, BIG);
	if (ino < 0)
		return;
	if (mav_wt_fsync(x->wt, (uint64_t)ino) < 0)
		return;
	x->synced = true;
	if (mav_wt_mkdir(&a, x->wt, MAV_WT_ROOT, "d", 0755, 0, 0) < 0)
		return;
	if (put(x->wt, a.ino, "b", "beta", 4) < 0)
		return;
	if (mav_wt_snapshot(&c, &v, x->wt, &o) < 0)
		return;
	x->snapshots++;
	if (mav_wt_write(x->wt, (uint64_t)ino, 1000, "EDIT", 4) != 4)
		return;
	if (mav_wt_rename(x->wt, MAV_WT_ROOT, "a", a.ino, "a2", 0) < 0)
		return;
	if (mav_wt_snapshot(&c, &v, x->wt, &o) < 0)
		return;
	x->snapshots++;
}

static void expect_file(struct mav_wt *wt, const char *path, const void *p,
                        size_t len)
{
	static uint8_t buf[BIG + 1];
	uint64_t dir = MAV_WT_ROOT;
	char tmp[64], *save = NULL, *part;
	struct mav_attr a = {.ino = MAV_WT_ROOT};

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (part = strtok_r(tmp, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		assert_int_equal(mav_wt_lookup(&a, wt, dir, part), 0);
		dir = a.ino;
	}
	assert_int_equal(mav_wt_read(wt, a.ino, 0, buf, sizeof(buf)),
	                 (ssize_t)len);
	assert_memory_equal(buf, p, len);
}

/* A root file holds exactly p[0..len). */
static void expect_bytes(struct mav_wt *wt, const char *name, const void *p,
                         size_t len)
{
	uint8_t *buf = malloc(len + 1);
	struct mav_attr a;

	assert_int_equal(mav_wt_lookup(&a, wt, MAV_WT_ROOT, name), 0);
	assert_int_equal(mav_wt_read(wt, a.ino, 0, buf, len + 1), (ssize_t)len);
	assert_memory_equal(buf, p, len);
	free(buf);
}

/* "durable" after the workload's edit. */
static const uint8_t *edited(void)
{
	static uint8_t e[BIG];

	memcpy(e, big, BIG);
	memcpy(e + 1000, "EDIT", 4);
	return e;
}

static void check_version(struct mav_repo *r, int n)
{
	struct mav_wt *view = NULL;
	char rev[16];
	mav_id c;

	snprintf(rev, sizeof(rev), "v%d", n);
	assert_int_equal(mav_rev_parse(&c, r, rev), 0);
	assert_int_equal(mav_wt_open_commit(&view, r, &c), 0);
	expect_file(view, "d/b", "beta", 4);
	if (n == 1) {
		expect_file(view, "a", "alpha", 5);
		expect_file(view, "durable", big, BIG);
	} else {
		expect_file(view, "d/a2", "alpha", 5);
		expect_file(view, "durable", edited(), BIG);
	}
	mav_wt_close(view);
}

static void fsck_clean(struct mav_repo *r)
{
	struct mav_fsck_report rep;

	assert_int_equal(mav_fsck(&rep, r, NULL, NULL, NULL), 0);
	assert_int_equal(rep.problems, 0);
}

/* One run failing from call n on; returns false once n is past the end. */
static bool run_once(uint64_t n, int err)
{
	struct run x = {0};
	struct mav_kv *mem = NULL;
	mav_id c;
	int versions = 0;
	uint64_t total;

	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&x.fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&x.r, x.fault, true, NULL), 0);
	assert_int_equal(mav_wt_open(&x.wt, x.r, "main"), 0);
	mav_kv_fault_fail_after(x.fault, n, err);
	workload(&x);
	total = mav_kv_fault_calls(x.fault);
	mav_wt_close(x.wt);
	mav_kv_fault_clear(x.fault);
	assert_int_equal(mav_kv_fault_crash(x.fault), 0);

	/* After the crash: consistent, and what returned is there. */
	fsck_clean(x.r);
	for (int v = 1; v <= 2; v++)
		if (mav_rev_parse(&c, x.r, v == 1 ? "v1" : "v2") == 0) {
			check_version(x.r, v);
			versions = v;
		}
	assert_true(versions >= x.snapshots);
	if (n == 0) /* no fault: the whole workload landed */
		assert_int_equal(versions, 2);
	assert_int_equal(mav_wt_open(&x.wt, x.r, "main"), 0);
	if (x.synced && versions == 0)
		expect_file(x.wt, "durable", big, BIG);
	mav_wt_close(x.wt);
	mav_repo_close(x.r);
	return n < total;
}

/* Second workload, on what the first made with no fault: branch dev at
 * v1, tag t2 at v2, main's working tree reset to v1, gc. Each either
 * happened whole or not at all, and gc never takes what a ref reaches. */
struct refs_run {
	mav_id v1, v2;
	bool branched, tagged, reset, gced;
};

static void refs_workload(struct run *x, struct refs_run *y)
{
	struct mav_ref_update tag = {"t/t2", NULL, &y->v2};
	struct mav_gc_report g;

	if (mav_branch_create(x->r, "dev", &y->v1) < 0)
		return;
	y->branched = true;
	if (mav_ref_update(x->r, NULL, &tag, 1) < 0)
		return;
	y->tagged = true;
	if (mav_wt_reset(x->wt, &y->v1) < 0)
		return;
	y->reset = true;
	if (mav_gc(&g, x->r, NULL, NULL) < 0)
		return;
	y->gced = true;
}

/* ref is absent, or is want; it must be want if must. */
static void expect_ref(struct mav_repo *r, const char *ref, const mav_id *want,
                       bool must)
{
	mav_id got;
	int rc = mav_ref_get(&got, r, ref);

	if (rc == MAV_ENOTFOUND && !must)
		return;
	assert_int_equal(rc, 0);
	assert_memory_equal(&got, want, sizeof(got));
}

/* Working tree of main: all of v1 or all of v2, v1 if reset. */
static void expect_tree(struct run *x, bool reset)
{
	struct mav_attr a;
	bool at_v1;

	assert_int_equal(mav_wt_open(&x->wt, x->r, "main"), 0);
	at_v1 = mav_wt_lookup(&a, x->wt, MAV_WT_ROOT, "a") == 0;
	assert_true(at_v1 || !reset);
	if (at_v1) {
		expect_file(x->wt, "a", "alpha", 5);
		expect_file(x->wt, "durable", big, BIG);
	} else {
		expect_file(x->wt, "d/a2", "alpha", 5);
		expect_file(x->wt, "durable", edited(), BIG);
	}
	expect_file(x->wt, "d/b", "beta", 4);
	mav_wt_close(x->wt);
}

/* One run failing from the nth call of the second workload on; returns
 * the calls that workload made. */
static uint64_t refs_run_once(uint64_t n, int err)
{
	struct run x = {0};
	struct refs_run y = {0};
	struct mav_kv *mem = NULL;
	uint64_t total;

	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&x.fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&x.r, x.fault, true, NULL), 0);
	assert_int_equal(mav_wt_open(&x.wt, x.r, "main"), 0);
	workload(&x);
	assert_int_equal(x.snapshots, 2);
	assert_int_equal(mav_rev_parse(&y.v1, x.r, "v1"), 0);
	assert_int_equal(mav_rev_parse(&y.v2, x.r, "v2"), 0);
	total = mav_kv_fault_calls(x.fault);
	mav_kv_fault_fail_after(x.fault, n, err);
	refs_workload(&x, &y);
	total = mav_kv_fault_calls(x.fault) - total;
	mav_wt_close(x.wt);
	mav_kv_fault_clear(x.fault);
	assert_int_equal(mav_kv_fault_crash(x.fault), 0);

	fsck_clean(x.r);
	check_version(x.r, 1);
	check_version(x.r, 2);
	expect_ref(x.r, "b/dev", &y.v1, y.branched);
	expect_ref(x.r, "t/t2", &y.v2, y.tagged);
	expect_tree(&x, y.reset);
	if (n == 0)
		assert_true(y.gced);
	mav_repo_close(x.r);
	return total;
}

static void test_every_fail_point(void **state)
{
	uint64_t n = 1;

	(void)state;
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	run_once(0, 0);
	while (run_once(n, -EIO))
		n++;
	assert_true(n > 20); /* the sweep really covered the workload */
	print_message("%llu fail points\n", (unsigned long long)n);
	for (n = 1; run_once(n, -ENOSPC); n += 3)
		;
}

static void test_refs_and_gc_fail_points(void **state)
{
	uint64_t calls;

	(void)state;
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	calls = refs_run_once(0, 0);
	for (uint64_t n = 1; n <= calls + 1; n++)
		refs_run_once(n, n % 2 ? -EIO : -ENOSPC);
	print_message("%llu fail points\n", (unsigned long long)calls);
	assert_true(calls > 8); /* the sweep really covered the workload */
}

/* Kill the process (logged writes survive, unflushed NO_WAL ones do not)
 * after files were sealed in each of the ways a stream's unlogged chunks
 * are made durable before its record is written: many small files sealed
 * together (one flush), a small file fsynced alone (its chunks and blob
 * logged again) and a big one fsynced alone (a flush). Every sealed file
 * must read back whole. */
static void test_kill_after_seals(void **state)
{
	static uint8_t data[20u << 20];
	struct run x = {0};
	struct mav_kv *mem = NULL;
	const size_t small = 300u << 10, nsmall = 24;
	char name[16];
	uint64_t ino;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 11);
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&x.fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&x.r, x.fault, true, NULL), 0);
	assert_int_equal(mav_wt_open(&x.wt, x.r, "main"), 0);
	for (size_t i = 0; i < nsmall; i++) { /* each its own bytes */
		snprintf(name, sizeof(name), "s%zu", i);
		assert_true(
		    put(x.wt, MAV_WT_ROOT, name, data + i * small, small) > 0);
	}
	assert_int_equal(mav_wt_seal_idle(x.wt, 0), (int)nsmall);
	ino = (uint64_t)put(x.wt, MAV_WT_ROOT, "big", data, sizeof(data));
	assert_int_equal(mav_wt_fsync(x.wt, ino), 0);
	/* Last: no flush of another seal covers it. */
	ino = (uint64_t)put(x.wt, MAV_WT_ROOT, "alone", data + 8000, small);
	assert_int_equal(mav_wt_fsync(x.wt, ino), 0);
	assert_true(put(x.wt, MAV_WT_ROOT, "late", data + 99, small) > 0);

	/* The kill: the daemon writes nothing more. */
	mav_kv_fault_fail_after(x.fault, 1, -EIO);
	mav_wt_close(x.wt);
	mav_kv_fault_clear(x.fault);
	assert_int_equal(mav_kv_fault_kill(x.fault), 0);

	fsck_clean(x.r);
	assert_int_equal(mav_wt_open(&x.wt, x.r, "main"), 0);
	for (size_t i = 0; i < nsmall; i++) {
		snprintf(name, sizeof(name), "s%zu", i);
		expect_bytes(x.wt, name, data + i * small, small);
	}
	expect_bytes(x.wt, "alone", data + 8000, small);
	expect_bytes(x.wt, "big", data, sizeof(data));
	mav_wt_close(x.wt);
	mav_repo_close(x.r);
}

/* A small append to a file whose chunk list is paged (more than 2048
 * chunks: small chunk sizes make 1 MiB enough) cannot be logged again
 * page by page: its fsync flushes instead. Killed after it, the file is
 * whole. */
static void test_kill_after_paged_append(void **state)
{
	static uint8_t data[1u << 20];
	struct mav_repo_config cfg;
	struct mav_kv *fault = NULL, *mem = NULL;
	struct mav_repo *r = NULL;
	struct mav_wt *wt = NULL;
	const size_t head = sizeof(data) - 3000;
	int64_t ino;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 9);
	mav_repo_config_default(&cfg);
	cfg.chunk_min = 64;
	cfg.chunk_avg = 128;
	cfg.chunk_max = 512;
	assert_int_equal(mav_kv_open_mem(&mem), 0);
	assert_int_equal(mav_kv_fault_wrap(&fault, mem), 0);
	assert_int_equal(mav_repo_open_kv(&r, fault, true, &cfg), 0);
	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	ino = put(wt, MAV_WT_ROOT, "paged", data, head);
	assert_true(ino > 0);
	assert_int_equal(mav_wt_fsync(wt, (uint64_t)ino), 0);
	assert_int_equal(mav_wt_write(wt, (uint64_t)ino, head, data + head,
	                              sizeof(data) - head),
	                 (ssize_t)(sizeof(data) - head));
	assert_int_equal(mav_wt_fsync(wt, (uint64_t)ino), 0);

	mav_kv_fault_fail_after(fault, 1, -EIO);
	mav_wt_close(wt);
	mav_kv_fault_clear(fault);
	assert_int_equal(mav_kv_fault_kill(fault), 0);

	fsck_clean(r);
	assert_int_equal(mav_wt_open(&wt, r, "main"), 0);
	expect_bytes(wt, "paged", data, sizeof(data));
	mav_wt_close(wt);
	mav_repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_fail_point),
	    cmocka_unit_test(test_refs_and_gc_fail_points),
	    cmocka_unit_test(test_kill_after_seals),
	    cmocka_unit_test(test_kill_after_paged_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
