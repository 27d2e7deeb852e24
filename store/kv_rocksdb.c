/* kv_rocksdb.c - the kv vtable over RocksDB's C API.
 *
 * This is the only file that includes <rocksdb/c.h>. The database has one
 * column family per enum mav_cf, opened together; the options per family are
 * described in store/FORMAT.md ("Column families and RocksDB options"). In
 * short: chunk values are zstd frames already, so the chunks family has
 * RocksDB compression off, and its reads bypass the block cache; every family
 * has a bloom filter (most gets of a chunk id ask chunk_ids "already stored?"
 * and miss); the small families use LZ4. No blob files: RocksDB does not
 * support them in secondary instances, which mavctl opens beside a running
 * mavfs (7.8.3 crashed there reading a blob). All share one LRU block cache
 * that also holds index and filter blocks, so memory stays bounded by
 * block_cache_bytes plus the write buffers whatever the size of the store.
 * Probes (a writer's "stored already?") do not fill the cache: each bloom
 * filter false positive cached a data block it never read again, which was
 * most of an import's growth in memory with the size of the store.
 * Flushes and compactions write with O_DIRECT where the filesystem takes it
 * (probed at open): the kernel's copy of every table file was a third of an
 * import's CPU.
 *
 * Free-space reserve. Debian's RocksDB 7.8.3 aborts the whole process when
 * the disk fills, so every write and flush first checks that the filesystem
 * keeps reserve_bytes free after it. statvfs() runs at most every 50 ms or
 * 8 MiB of writes; in between, each admitted write is charged against the
 * last answer, and a write that the estimate would refuse triggers a fresh
 * statvfs before it is refused. A write is charged twice its size (log +
 * table file). room() asks the same question without charging; writes of
 * data so admitted (MAV_KV_ADMITTED), removals (MAV_KV_FREES), flushes
 * and deletes may use half the reserve. Log files are not preallocated
 * (allow_fallocate off), so what the log takes shows in statvfs as it is
 * written.
 *
 * Durability. A MAV_KV_NO_WAL write lives only in memtables, so flush()
 * writes out the memtables of the families that got NO_WAL writes since the
 * last flush (content families first, refs last) and then syncs the log,
 * which covers every logged write. Atomic flush is off (see cf options): a
 * NO_WAL batch spanning families may survive a crash in part, which is fine
 * because such batches hold only content (chunks, blobs) that nothing
 * references until a later, logged write.
 *
 * A secondary instance (opt->secondary) follows a running primary from a
 * private directory under /tmp; its flush() means "catch up with the
 * primary", and its writes fail with -EROFS.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "mav/error.h"
#include "mav/kv.h"

#define MIB              (1024ull * 1024)
#define SPACE_MAX_AGE_NS (50ull * 1000 * 1000)
#define SPACE_MAX_CHARGE (8 * MIB)
/* How long a write of admitted data waits for RocksDB to give space back. */
#define SPACE_WAIT_MAX_NS  (60ull * 1000 * 1000 * 1000)
#define SPACE_WAIT_STEP_NS (10 * 1000 * 1000)
#define SPARE_BATCH_MAX    MIB /* writers' batches: 512 KiB and a chunk */
#define SPARES             2   /* RocksDB batches kept for reuse */
/* Room RocksDB's own compactions may need beside the reserve: two chunk
 * table files. Below it they stop; they start again above it plus
 * COMPACT_HYSTERESIS. */
#define COMPACT_HEADROOM   (128 * MIB)
#define COMPACT_HYSTERESIS (32 * MIB)

static const char *const cf_names[MAV_CF_COUNT] = {
    [MAV_CF_META] = "default",    [MAV_CF_CHUNKS] = "chunks",
    [MAV_CF_OBJECTS] = "objects", [MAV_CF_REFS] = "refs",
    [MAV_CF_WT] = "wt",           [MAV_CF_CHUNK_IDS] = "chunk_ids",
};

/* Flush order: content before what points at it. */
static const enum mav_cf flush_order[MAV_CF_COUNT] = {
    MAV_CF_CHUNKS, MAV_CF_CHUNK_IDS, MAV_CF_OBJECTS,
    MAV_CF_WT,     MAV_CF_META,      MAV_CF_REFS,
};

struct space {
	pthread_mutex_t lock;
	uint64_t avail;   /* lock: free bytes at last statvfs minus charges */
	uint64_t charged; /* lock: bytes charged since that statvfs */
	uint64_t at_ns;   /* lock: when it ran (CLOCK_MONOTONIC); 0 = never */
};

struct kvr {
	struct mav_kv kv;
	rocksdb_t *db;
	rocksdb_column_family_handle_t *cf[MAV_CF_COUNT];
	rocksdb_readoptions_t *ro;
	rocksdb_readoptions_t
	    *ro_nofill; /* chunks: keep the cache for indexes */
	/* Probes: a get that misses reads a block only on a bloom filter's
	 * false positive, and that block is seldom wanted again. */
	rocksdb_readoptions_t *ro_probe;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo_plain, *wo_sync, *wo_nowal;
	rocksdb_flushoptions_t *fo;
	char *path;
	char *secpath; /* secondary's private directory, removed on close */
	bool secondary;
	uint64_t reserve;
	bool auto_compact;    /* sp.lock: RocksDB compacts on its own */
	unsigned nowal_dirty; /* atomic: 1 << cf for NO_WAL data not flushed */
	struct space sp;
	/* RocksDB batches kept cleared for the next write, so a big batch
	 * does not grow its buffer (copying itself) and fault in fresh
	 * memory every time: that was 5% of the daemon's CPU in a big
	 * write. */
	pthread_mutex_t spare_lock;
	rocksdb_writebatch_t *spare[SPARES]; /* spare_lock */
	unsigned nspare;                     /* spare_lock */
};

struct riter {
	struct mav_kv_iter base;
	rocksdb_t *db;
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ro;
	const rocksdb_snapshot_t *snap; /* NULL on a secondary */
};

static int nomem(void)
{
	return mav_error_set(MAV_ENOMEM, "out of memory in the rocksdb kv");
}

/* Translate and free a RocksDB error string. */
static int map_err(char *err, const char *what)
{
	int code = -EIO;

	if (strstr(err, "No space"))
		code = -ENOSPC;
	else if (strstr(err, "Corruption"))
		code = MAV_ECORRUPT;
	mav_error_set(code, "rocksdb %s: %s", what, err);
	rocksdb_free(err);
	return code;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- free-space reserve ---- */

static uint64_t memtable_bytes(struct kvr *k, unsigned mask);

/* Whether RocksDB may compact on its own with avail bytes free. Its
 * compactions run unchecked by the reserve, and each needs room for its
 * output beside its inputs. One that met a full disk (a 61 MB table file
 * rewritten at a reserve of 24 MiB) left RocksDB 7.8 refusing every later
 * compaction until reopened ("free space is less than needed headroom"),
 * gc's too, so deleting what filled the disk gave no space back. Near the
 * reserve only gc compacts, range by range, each checked to fit
 * (compact_dead_ranges). */
static bool compactions_fit(const struct kvr *k, uint64_t avail, bool on)
{
	return avail >= sat_add(sat_add(k->reserve, COMPACT_HEADROOM),
	                        on ? 0 : COMPACT_HYSTERESIS);
}

/* Stop or restart RocksDB's automatic compactions as the free space
 * crosses the headroom (sp.lock held). */
static void auto_compactions(struct kvr *k)
{
	bool on = compactions_fit(k, k->sp.avail, k->auto_compact);
	const char *key = "disable_auto_compactions";
	const char *val = on ? "false" : "true";

	if (on == k->auto_compact || k->secondary)
		return;
	for (int i = 0; i < MAV_CF_COUNT; i++) {
		char *err = NULL;

		rocksdb_set_options_cf(k->db, k->cf[i], 1, &key, &val, &err);
		if (err) { /* keep the old setting; the next refresh retries */
			rocksdb_free(err);
			return;
		}
	}
	k->auto_compact = on;
}

static int space_refresh(struct kvr *k)
{
	struct statvfs s;
	uint64_t mem;

	if (statvfs(k->path, &s) < 0)
		return mav_error_set(-errno, "statvfs %s: %s", k->path,
		                     strerror(errno));
	k->sp.avail = (uint64_t)s.f_bavail * (uint64_t)s.f_frsize;
	/* What the memtables hold is still to be written as table files
	 * (and the log it came through is freed only after): count it as
	 * spent, or a full disk is met at the next flush or reopen. */
	mem = memtable_bytes(k, ~0u);
	k->sp.avail = k->sp.avail > mem ? k->sp.avail - mem : 0;
	k->sp.charged = 0;
	k->sp.at_ns = now_ns();
	auto_compactions(k);
	return 0;
}

/* Whether RocksDB is writing table files: a flush (whose memtable, counted
 * as spent, is on the disk in part already) or a compaction (whose inputs
 * go once its output is written). Either gives space back when it ends. */
static bool rocksdb_busy(struct kvr *k)
{
	uint64_t v;

	if (rocksdb_property_int(k->db, "rocksdb.num-running-flushes", &v) ==
	        0 &&
	    v)
		return true;
	if (rocksdb_property_int(k->db, "rocksdb.num-running-compactions",
	                         &v) == 0 &&
	    v)
		return true;
	for (int i = 0; i < MAV_CF_COUNT; i++)
		if (rocksdb_property_int_cf(k->db, k->cf[i],
		                            "rocksdb.mem-table-flush-pending",
		                            &v) == 0 &&
		    v)
			return true;
	return false;
}

/* Admit a write of need bytes (already doubled) or fail -ENOSPC; charge it
 * unless only asked. Batches that only delete may dig into half the
 * reserve: they are how space is won back (gc, unlink), and they are small;
 * so may writes of admitted data (MAV_KV_ADMITTED) and flushes, which
 * store what was admitted before, and removals (MAV_KV_FREES).
 *
 * Those (half_reserve) also wait out RocksDB's own passing use of space
 * before they are refused: while a memtable is being flushed it is counted
 * twice, as memory still to be written and as the part of its table file
 * that is on the disk already, which is up to a whole write buffer (64
 * MiB). Refused there, data a writer was told fits was dropped after its
 * write() had returned. */
static int space_admit(struct kvr *k, uint64_t need, bool half_reserve,
                       bool charge)
{
	uint64_t want =
	    sat_add(half_reserve ? k->reserve / 2 : k->reserve, need);
	uint64_t waited_ns = 0;
	int rc = 0;

	pthread_mutex_lock(&k->sp.lock);
	if (k->sp.at_ns == 0 || now_ns() - k->sp.at_ns > SPACE_MAX_AGE_NS ||
	    k->sp.charged > SPACE_MAX_CHARGE || k->sp.avail < want)
		rc = space_refresh(k);
	while (rc == 0 && k->sp.avail < want && half_reserve &&
	       waited_ns < SPACE_WAIT_MAX_NS && rocksdb_busy(k)) {
		pthread_mutex_unlock(&k->sp.lock);
		nanosleep(&(struct timespec){0, SPACE_WAIT_STEP_NS}, NULL);
		waited_ns += SPACE_WAIT_STEP_NS;
		pthread_mutex_lock(&k->sp.lock);
		rc = space_refresh(k);
	}
	if (rc < 0)
		goto out;
	if (k->sp.avail < want) {
		rc = mav_error_set(-ENOSPC,
		                   "no space left: %llu bytes free under %s, "
		                   "%llu needed plus the reserve of %llu",
		                   (unsigned long long)k->sp.avail, k->path,
		                   (unsigned long long)need,
		                   (unsigned long long)k->reserve);
		goto out;
	}
	if (charge) {
		k->sp.avail -= need;
		k->sp.charged += need;
	}
out:
	pthread_mutex_unlock(&k->sp.lock);
	return rc;
}

/* ---- options ---- */

static rocksdb_options_t *cf_options(enum mav_cf cf, rocksdb_cache_t *cache,
                                     bool auto_compact)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_block_based_table_options_t *t =
	    rocksdb_block_based_options_create();
	/* Chunks: 16 MiB, not 64. Keys come in write order, so their
	 * flushes are small files that do not overlap, and with 2 MiB
	 * writer batches an import peaks at 81 / 99 / 113 MiB for 200 MB /
	 * 1.5 GB / 4 GB, against 89 / 197 / 212 (no slower; a 1 GiB dd
	 * into a mount 505-567 MiB/s either way). */
	size_t wbuf = cf == MAV_CF_CHUNKS    ? 16 * MIB
	              : cf == MAV_CF_OBJECTS ? 32 * MIB
	              : cf == MAV_CF_WT      ? 16 * MIB
	                                     : 4 * MIB;

	rocksdb_block_based_options_set_block_cache(t, cache);
	rocksdb_block_based_options_set_format_version(t, 5);
	rocksdb_block_based_options_set_filter_policy(
	    t, rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
	    t, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
	    t, 1);
	rocksdb_options_set_block_based_table_factory(o, t);
	rocksdb_block_based_options_destroy(t);
	/* Chunks are zstd frames already; chunk ids are random bytes. */
	rocksdb_options_set_compression(o, cf == MAV_CF_CHUNKS ||
	                                           cf == MAV_CF_CHUNK_IDS
	                                       ? rocksdb_no_compression
	                                       : rocksdb_lz4_compression);
	rocksdb_options_set_write_buffer_size(o, wbuf);
	/* Two buffers, also for chunks: a third let a 4 GiB import peak at
	 * 350 MiB instead of 232 MiB, and writes were no faster with it. */
	rocksdb_options_set_max_write_buffer_number(o, 2);
	rocksdb_options_set_target_file_size_base(
	    o,
	    cf == MAV_CF_CHUNKS || cf == MAV_CF_OBJECTS ? 64 * MIB : 16 * MIB);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	rocksdb_options_set_disable_auto_compactions(o, !auto_compact);
	return o;
}

/* Whether dir takes O_DIRECT writes (most local filesystems do, not every
 * FUSE or network one). */
static bool direct_writes_work(const char *dir)
{
	char path[4096];
	void *buf = NULL;
	bool ok = false;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/.direct-probe-XXXXXX",
	                     dir) >= sizeof(path))
		return false;
	fd = mkostemp(path, O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (posix_memalign(&buf, 4096, 4096) == 0) {
		memset(buf, 0, 4096);
		ok = pwrite(fd, buf, 4096, 0) == 4096;
	}
	free(buf);
	close(fd);
	unlink(path);
	return ok;
}

/* o with allow_fallocate off (the C API has no setter for it). RocksDB
 * preallocates every log file to 1.1x the largest write buffer (72 MB
 * here): space the free-space reserve does not see go until it is gone,
 * so on a small disk data that was admitted could no longer be sealed. */
static rocksdb_options_t *without_fallocate(rocksdb_options_t *o)
{
	rocksdb_options_t *n = rocksdb_options_create();
	char *err = NULL;

	rocksdb_get_options_from_string(o, "allow_fallocate=false", n, &err);
	if (err) { /* an older RocksDB: keep its default */
		free(err);
		rocksdb_options_destroy(n);
		return o;
	}
	rocksdb_options_destroy(o);
	return n;
}

/* How many table files the primary keeps open: half the descriptors the
 * process may have, after raising its soft limit to the hard one (as a
 * server does; mavfs also needs descriptors for its clients). RocksDB's
 * default (-1) keeps every table file open, so a repository of more table
 * files than the limit (a 1 TB store is ~16k) failed to open at all, and
 * it opened every one of them first: 45 files, 3 of an open's 20 ms. With a
 * number, RocksDB opens the rest as they are read, and at most 16 at
 * open. */
static int tables_open_max(void)
{
	struct rlimit rl;
	rlim_t cap = 1 << 20;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 500;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < cap) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max < cap ? rl.rlim_max : cap;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	/* RocksDB raises anything below 20 to 20. */
	return rl.rlim_cur / 2 < 20    ? 20
	       : rl.rlim_cur / 2 > cap ? (int)cap
	                               : (int)(rl.rlim_cur / 2);
}

static rocksdb_options_t *db_options(const struct mav_kv_options *opt,
                                     bool secondary, bool direct)
{
	rocksdb_options_t *o = rocksdb_options_create();
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	rocksdb_options_set_create_if_missing(o, opt->create);
	/* Also on open, so that a repository of an older format without some
	 * family opens and is refused by its format record, with a reason. */
	rocksdb_options_set_create_missing_column_families(o, !secondary);
	rocksdb_options_set_max_background_jobs(o, ncpu < 2   ? 2
	                                           : ncpu > 4 ? 4
	                                                      : (int)ncpu);
	/* No atomic flush: Debian's 7.8.3 aborts on an assertion when a
	 * manual flush of some families meets a background one (seen in
	 * t_cli_big). Nothing needs it: NO_WAL batches hold content only, and
	 * content that survives without its referrer is merely garbage. */
	rocksdb_options_set_bytes_per_sync(o, 1 * MIB);
	rocksdb_options_set_db_write_buffer_size(o, 256 * MIB);
	rocksdb_options_set_max_total_wal_size(o, 256 * MIB);
	rocksdb_options_set_keep_log_file_num(o, 4);
	/* Flushes and compactions write table files around the page cache:
	 * through it, the kernel's copy cost a third of an import's CPU
	 * (1.1 GB import: 3.0 s -> 2.6 s; system time 2.1 s -> 0.8 s), and
	 * in a daemon taking a cp -a of 1.5 GB, 1.5-2 s of system time (cp +
	 * sync 8.9-9.2 s -> 7.1-8.3 s; a 1 GiB dd conv=fsync, which waits for
	 * a flush, ran at the same speed either way). */
	rocksdb_options_set_use_direct_io_for_flush_and_compaction(o, direct);
	rocksdb_options_set_max_log_file_size(o, 16 * MIB);
	/* Opening is the floor of every mavctl command: do not start 16
	 * threads per column family to open a few table files each, nor
	 * read every table file's properties for statistics. */
	rocksdb_options_set_max_file_opening_threads(o, 1);
	rocksdb_options_set_skip_stats_update_on_db_open(o, 1);
	/* Chunks are stored in the order they are written, so a file is
	 * read back mostly in order: let the kernel read ahead in table
	 * files (by default RocksDB tells it every read is random). */
	rocksdb_options_set_advise_random_on_open(o, 0);
	rocksdb_options_set_max_open_files(o,
	                                   secondary ? -1 : tables_open_max());
	return without_fallocate(o);
}

/* ---- opening ---- */

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int open_err(char *err, const char *path)
{
	if (strstr(err, "/LOCK:") ||
	    strstr(err, "Resource temporarily unavailable")) {
		mav_error_set(MAV_ELOCKED,
		              "database %s is in use by another writer (%s)",
		              path, err);
		rocksdb_free(err);
		return MAV_ELOCKED;
	}
	if (strstr(err, "Column family not found") ||
	    strstr(err, "column families not opened")) {
		mav_error_set(MAV_ENOTREPO,
		              "%s is not a mav database (column families "
		              "differ: %s)",
		              path, err);
		rocksdb_free(err);
		return MAV_ENOTREPO;
	}
	return map_err(err, "open");
}

/* The number of write-ahead log name ("<digits>.log"; the info log is
 * "LOG"), or 0. */
static uint64_t wal_number(const char *name)
{
	size_t n = strspn(name, "0123456789");

	return n > 0 && strcmp(name + n, ".log") == 0 ? strtoull(name, NULL, 10)
	                                              : 0;
}

/* Delete the empty write-ahead logs earlier opens left, once the database
 * is open (so no other handle writes to them). Each open starts a new log,
 * and Debian's RocksDB (7.8.3; fixed in 8.3) keeps an empty one until a
 * flush moves the log number, so every mavctl command that wrote nothing
 * left one behind: 600 commands, 600 files, and each open stats them all
 * (16 -> 22 ms of CPU). An empty log holds no record, recovery is over, and
 * RocksDB finds logs by listing the directory
 * (track_and_verify_wals_in_manifest is off), so deleting one loses
 * nothing. The newest is the one this open writes to. */
static void drop_empty_wals(const char *path)
{
	DIR *d = opendir(path);
	uint64_t newest = 0, n;
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d)))
		if ((n = wal_number(e->d_name)) > newest)
			newest = n;
	rewinddir(d);
	while ((e = readdir(d))) {
		n = wal_number(e->d_name);
		if (n == 0 || n >= newest ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_size == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int open_db(struct kvr *k, const struct mav_kv_options *opt)
{
	rocksdb_options_t *dbo = db_options(
	    opt, k->secondary, !k->secondary && direct_writes_work(k->path));
	rocksdb_options_t *cfo[MAV_CF_COUNT];
	uint64_t cache_bytes =
	    opt->block_cache_bytes ? opt->block_cache_bytes : 64 * MIB;
	rocksdb_cache_t *cache = k->cache =
	    rocksdb_cache_create_lru(cache_bytes);
	struct statvfs sv;
	char *err = NULL;
	int rc = 0;

	/* Decided before the open, which may start compactions at once. A
	 * database yet to be created compacts nothing. */
	k->auto_compact =
	    k->secondary || statvfs(k->path, &sv) < 0 ||
	    compactions_fit(k, (uint64_t)sv.f_bavail * sv.f_frsize, true);
	for (int i = 0; i < MAV_CF_COUNT; i++)
		cfo[i] = cf_options(i, cache, k->auto_compact);
	if (k->secondary)
		k->db = rocksdb_open_as_secondary_column_families(
		    dbo, k->path, k->secpath, MAV_CF_COUNT, cf_names,
		    (const rocksdb_options_t *const *)cfo, k->cf, &err);
	else
		k->db = rocksdb_open_column_families(
		    dbo, k->path, MAV_CF_COUNT, cf_names,
		    (const rocksdb_options_t *const *)cfo, k->cf, &err);
	if (err)
		rc = open_err(err, k->path);
	if (rc == 0 && !k->secondary)
		drop_empty_wals(k->path);
	if (rc == 0 && k->secondary) {
		rocksdb_try_catch_up_with_primary(k->db, &err);
		if (err)
			rc = map_err(err, "catch up with primary");
	}
	/* The database holds its own references to options and cache; k
	 * keeps the cache to read its usage. */
	for (int i = 0; i < MAV_CF_COUNT; i++)
		rocksdb_options_destroy(cfo[i]);
	rocksdb_options_destroy(dbo);
	return rc;
}

static int check_present(const char *path, const struct mav_kv_options *opt)
{
	char cur[4096];
	struct stat st;

	if (opt->create && !opt->secondary)
		return 0;
	if ((size_t)snprintf(cur, sizeof(cur), "%s/CURRENT", path) >=
	    sizeof(cur))
		return mav_error_set(MAV_EINVAL, "path too long: %s", path);
	if (stat(cur, &st) < 0)
		return mav_error_set(
		    MAV_ENOTREPO, "no database at %s (no CURRENT file)", path);
	return 0;
}

static int kvr_init(struct kvr *k, const char *path,
                    const struct mav_kv_options *opt)
{
	k->secondary = opt->secondary;
	k->reserve = opt->reserve_bytes;
	pthread_mutex_init(&k->sp.lock, NULL);
	pthread_mutex_init(&k->spare_lock, NULL);
	k->path = strdup(path);
	k->ro = rocksdb_readoptions_create();
	k->ro_nofill = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(k->ro_nofill, 0);
	k->ro_probe = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(k->ro_probe, 0);
	/* Every chunk frame carries its own XXH3 checksum, checked before it
	 * is decoded; RocksDB's CRC32c over the same bytes is a software loop
	 * in Debian's portable build, a third of a warm read's CPU. */
	rocksdb_readoptions_set_verify_checksums(k->ro_nofill, 0);
	k->wo_plain = rocksdb_writeoptions_create();
	k->wo_sync = rocksdb_writeoptions_create();
	k->wo_nowal = rocksdb_writeoptions_create();
	k->fo = rocksdb_flushoptions_create();
	if (!k->path)
		return nomem();
	rocksdb_writeoptions_set_sync(k->wo_sync, 1);
	rocksdb_writeoptions_disable_WAL(k->wo_nowal, 1);
	rocksdb_flushoptions_set_wait(k->fo, 1);
	if (!k->secondary)
		return 0;
	k->secpath = strdup("/tmp/mav-kv-secondary-XXXXXX");
	if (!k->secpath)
		return nomem();
	if (!mkdtemp(k->secpath)) {
		int e = errno;

		free(k->secpath);
		k->secpath = NULL;
		return mav_error_set(-e,
		                     "cannot create a directory for the "
		                     "secondary under /tmp: %s",
		                     strerror(e));
	}
	return 0;
}

static void kvr_close(void *self)
{
	struct kvr *k = self;

	for (int i = 0; i < MAV_CF_COUNT; i++)
		if (k->cf[i])
			rocksdb_column_family_handle_destroy(k->cf[i]);
	if (k->db)
		rocksdb_close(k->db);
	if (k->cache)
		rocksdb_cache_destroy(k->cache);
	rocksdb_readoptions_destroy(k->ro);
	rocksdb_readoptions_destroy(k->ro_nofill);
	rocksdb_readoptions_destroy(k->ro_probe);
	rocksdb_writeoptions_destroy(k->wo_plain);
	rocksdb_writeoptions_destroy(k->wo_sync);
	rocksdb_writeoptions_destroy(k->wo_nowal);
	rocksdb_flushoptions_destroy(k->fo);
	while (k->nspare)
		rocksdb_writebatch_destroy(k->spare[--k->nspare]);
	if (k->secpath)
		rm_tree(k->secpath);
	pthread_mutex_destroy(&k->spare_lock);
	pthread_mutex_destroy(&k->sp.lock);
	free(k->secpath);
	free(k->path);
	free(k);
}

/* ---- reads ---- */

/* fn(ctx, value) on the value where RocksDB holds it (pinned in the block
 * cache or a buffer of its own until the slice is destroyed). */
static int view(struct kvr *k, const rocksdb_readoptions_t *ro, enum mav_cf cf,
                const void *key, size_t klen, mav_kv_view_fn fn, void *ctx)
{
	rocksdb_pinnableslice_t *ps;
	const char *v;
	char *err = NULL;
	size_t n;
	int rc;

	if (cf == MAV_CF_CHUNKS)
		ro = k->ro_nofill;
	ps = rocksdb_get_pinned_cf(k->db, ro, k->cf[cf], key, klen, &err);
	if (err)
		return map_err(err, "get");
	if (!ps)
		return mav_error_set(MAV_ENOTFOUND, "key not found in %s",
		                     cf_names[cf]);
	v = rocksdb_pinnableslice_value(ps, &n);
	rc = fn(ctx, v, n);
	rocksdb_pinnableslice_destroy(ps);
	return rc;
}

static int kvr_get_view(void *self, enum mav_cf cf, const void *key,
                        size_t klen, mav_kv_view_fn fn, void *ctx)
{
	struct kvr *k = self;

	return view(k, k->ro, cf, key, klen, fn, ctx);
}

static int kvr_probe_view(void *self, enum mav_cf cf, const void *key,
                          size_t klen, mav_kv_view_fn fn, void *ctx)
{
	struct kvr *k = self;

	return view(k, k->ro_probe, cf, key, klen, fn, ctx);
}

struct copy_out {
	void **val;
	size_t *vlen;
};

static int copy_out(void *ctx, const void *v, size_t n)
{
	struct copy_out *c = ctx;

	if (c->vlen)
		*c->vlen = n;
	if (!c->val)
		return 0;
	*c->val = malloc(n ? n : 1);
	if (!*c->val)
		return nomem();
	memcpy(*c->val, v, n);
	return 0;
}

static int kvr_get(void *self, enum mav_cf cf, const void *key, size_t klen,
                   void **val, size_t *vlen)
{
	struct copy_out c = {val, vlen};

	return (val || vlen ? kvr_get_view : kvr_probe_view)(
	    self, cf, key, klen, copy_out, &c);
}

/* ---- writes ---- */

struct add_ctx {
	struct kvr *k;
	rocksdb_writebatch_t *wb;
	unsigned cfs; /* families the batch touches */
};

static int add_op(void *ctx, enum mav_cf cf, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
	struct add_ctx *c = ctx;

	c->cfs |= 1u << cf;
	if (val)
		rocksdb_writebatch_put_cf(c->wb, c->k->cf[cf], key, klen, val,
		                          vlen);
	else
		rocksdb_writebatch_delete_cf(c->wb, c->k->cf[cf], key, klen);
	return 0;
}

static int read_only(const struct kvr *k)
{
	return mav_error_set(-EROFS,
	                     "database %s is open as a read-only "
	                     "secondary",
	                     k->path);
}

static int is_put(void *ctx, enum mav_cf cf, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
	(void)ctx;
	(void)cf;
	(void)key;
	(void)klen;
	(void)vlen;
	return val != NULL;
}

static rocksdb_writebatch_t *take_batch(struct kvr *k)
{
	rocksdb_writebatch_t *wb = NULL;

	pthread_mutex_lock(&k->spare_lock);
	if (k->nspare)
		wb = k->spare[--k->nspare];
	pthread_mutex_unlock(&k->spare_lock);
	return wb ? wb : rocksdb_writebatch_create();
}

/* Keep wb for the next write unless enough are kept or it is bigger than
 * the writers' usual batches (its buffer would stay that big). */
static void give_batch(struct kvr *k, rocksdb_writebatch_t *wb)
{
	size_t n;

	rocksdb_writebatch_data(wb, &n);
	pthread_mutex_lock(&k->spare_lock);
	if (n <= SPARE_BATCH_MAX && k->nspare < SPARES) {
		rocksdb_writebatch_clear(wb);
		k->spare[k->nspare++] = wb;
		wb = NULL;
	}
	pthread_mutex_unlock(&k->spare_lock);
	if (wb)
		rocksdb_writebatch_destroy(wb);
}

static int kvr_write(void *self, const struct mav_kv_batch *b, unsigned flags)
{
	struct kvr *k = self;
	struct add_ctx c = {k, NULL, 0};
	uint64_t need = 2 * ((uint64_t)mav_kv_batch_bytes(b) +
	                     32 * (uint64_t)mav_kv_batch_count(b));
	char *err = NULL;
	int rc;

	if (k->secondary)
		return read_only(k);
	rc = space_admit(k, need,
	                 (flags & (MAV_KV_ADMITTED | MAV_KV_FREES)) ||
	                     !mav_kv_batch_foreach(b, is_put, NULL),
	                 true);
	if (rc < 0)
		return rc;
	if (mav_kv_batch_count(b) == 0) {
		/* Nothing to write, but a synced write still promises that
		 * everything before it is durable. */
		if (flags & MAV_KV_SYNC)
			rocksdb_flush_wal(k->db, 1, &err);
		return err ? map_err(err, "sync log") : 0;
	}
	c.wb = take_batch(k);
	mav_kv_batch_foreach(b, add_op, &c);
	rocksdb_write(k->db,
	              (flags & MAV_KV_SYNC)     ? k->wo_sync
	              : (flags & MAV_KV_NO_WAL) ? k->wo_nowal
	                                        : k->wo_plain,
	              c.wb, &err);
	give_batch(k, c.wb);
	if (err)
		return map_err(err, "write");
	/* Marked after the write so a concurrent flush cannot clear the mark
	 * of data it did not see. */
	if (flags & MAV_KV_NO_WAL)
		__atomic_fetch_or(&k->nowal_dirty, c.cfs, __ATOMIC_SEQ_CST);
	return 0;
}

/* Bytes in the memtables of the families in mask (what a flush writes). */
static uint64_t memtable_bytes(struct kvr *k, unsigned mask)
{
	uint64_t sum = 0, v;

	for (int i = 0; i < MAV_CF_COUNT; i++)
		if ((mask & 1u << i) &&
		    rocksdb_property_int_cf(k->db, k->cf[i],
		                            "rocksdb.cur-size-all-mem-tables",
		                            &v) == 0)
			sum += v;
	return sum;
}

/* Logged writes are durable once the log is synced; only families holding
 * NO_WAL data need their memtables written out, content first. */
static int flush_memtables(struct kvr *k)
{
	unsigned dirty =
	    __atomic_exchange_n(&k->nowal_dirty, 0, __ATOMIC_SEQ_CST);
	char *err = NULL;
	int rc;

	/* The memtables' bytes are counted as spent already (space_refresh):
	 * the flush needs only the half reserve beside them. */
	rc = space_admit(k, 0, true, false);
	for (int i = 0; i < MAV_CF_COUNT && rc == 0; i++) {
		if (!(dirty & 1u << flush_order[i]))
			continue;
		rocksdb_flush_cf(k->db, k->fo, k->cf[flush_order[i]], &err);
		if (err)
			rc = map_err(err, "flush");
	}
	if (rc < 0)
		__atomic_fetch_or(&k->nowal_dirty, dirty, __ATOMIC_SEQ_CST);
	return rc;
}

static int kvr_flush(void *self)
{
	struct kvr *k = self;
	char *err = NULL;
	int rc;

	if (k->secondary) {
		rocksdb_try_catch_up_with_primary(k->db, &err);
		return err ? map_err(err, "catch up with primary") : 0;
	}
	rc = flush_memtables(k);
	if (rc < 0)
		return rc;
	rocksdb_flush_wal(k->db, 1, &err);
	return err ? map_err(err, "sync log") : 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* Whether [lo, hi] of the chunks family holds a key (a live one: deleted
 * keys are not seen). */
static bool range_live(struct kvr *k, const char *lo, size_t lolen,
                       const char *hi, size_t hilen)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
	    k->db, k->ro_nofill, k->cf[MAV_CF_CHUNKS]);
	bool live = false;

	rocksdb_iter_seek(it, lo, lolen);
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *key = rocksdb_iter_key(it, &klen);

		live = key_cmp(key, klen, hi, hilen) <= 0;
	}
	rocksdb_iter_destroy(it);
	return live;
}

/* Whether a compaction that may rewrite `bytes` of table files fits now
 * (it may use half the reserve, as deletes may). */
static bool compaction_fits(struct kvr *k, uint64_t bytes)
{
	bool fits;

	pthread_mutex_lock(&k->sp.lock);
	fits = space_refresh(k) == 0 &&
	       k->sp.avail >= sat_add(k->reserve / 2, bytes);
	pthread_mutex_unlock(&k->sp.lock);
	return fits;
}

static bool is_chunks_file(const rocksdb_livefiles_t *lf, int i)
{
	return strcmp(rocksdb_livefiles_column_family_name(lf, i),
	              cf_names[MAV_CF_CHUNKS]) == 0;
}

/* Table files of the chunks family whose whole key range gc emptied are
 * compacted one range at a time: what such a compaction writes is at most
 * what it reads of other files overlapping the range (with chunk keys in
 * write order, usually none), not the dead file itself, so it fits where
 * one compaction of the whole family does not. After a full disk this is
 * what gives the space back. */
static void compact_dead_ranges(struct kvr *k, rocksdb_compactoptions_t *co)
{
	const rocksdb_livefiles_t *lf = rocksdb_livefiles(k->db);
	int n = lf ? rocksdb_livefiles_count(lf) : 0;

	for (int i = 0; i < n; i++) {
		uint64_t others = 0;
		size_t lolen, hilen;
		const char *lo, *hi;

		if (!is_chunks_file(lf, i))
			continue;
		lo = rocksdb_livefiles_smallestkey(lf, i, &lolen);
		hi = rocksdb_livefiles_largestkey(lf, i, &hilen);
		if (range_live(k, lo, lolen, hi, hilen))
			continue;
		for (int j = 0; j < n; j++) {
			size_t l2, h2;
			const char *lo2, *hi2;

			if (j == i || !is_chunks_file(lf, j))
				continue;
			lo2 = rocksdb_livefiles_smallestkey(lf, j, &l2);
			hi2 = rocksdb_livefiles_largestkey(lf, j, &h2);
			if (key_cmp(lo2, l2, hi, hilen) <= 0 &&
			    key_cmp(lo, lolen, hi2, h2) <= 0)
				others += rocksdb_livefiles_size(lf, j);
		}
		if (compaction_fits(k, others))
			rocksdb_compact_range_cf_opt(k->db,
			                             k->cf[MAV_CF_CHUNKS], co,
			                             lo, lolen, hi, hilen);
	}
	if (lf)
		rocksdb_livefiles_destroy(lf);
}

/* Whether one compaction of the whole chunks family fits: room for a copy
 * of its table files beside the whole reserve. */
static bool whole_compaction_fits(struct kvr *k)
{
	uint64_t live = 0;

	rocksdb_property_int_cf(k->db, k->cf[MAV_CF_CHUNKS],
	                        "rocksdb.total-sst-files-size", &live);
	return compaction_fits(k, sat_add(k->reserve / 2, live));
}

/* A deleted chunk frame keeps its space until compaction reaches the table
 * file that holds it, which for a family nobody writes to may be never: gc
 * asks for one full compaction of the chunks family. That needs room for a
 * copy of its table files; without it, gc first compacts the ranges it
 * emptied (compact_dead_ranges), which may make the room. Without room
 * still, nothing more is done, and a later gc tries again. */
static int kvr_compact(void *self)
{
	rocksdb_compactoptions_t *co;
	struct kvr *k = self;

	if (k->secondary)
		return mav_error_set(-EROFS, "compact on a read-only instance");
	co = rocksdb_compactoptions_create();
	/* kForce: rewrite the last level too, where the old frames are. */
	rocksdb_compactoptions_set_bottommost_level_compaction(co, 2);
	if (!whole_compaction_fits(k))
		compact_dead_ranges(k, co);
	if (whole_compaction_fits(k))
		rocksdb_compact_range_cf_opt(k->db, k->cf[MAV_CF_CHUNKS], co,
		                             NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(co);
	return 0;
}

/* ---- iterators ---- */

static void riter_seek(struct mav_kv_iter *base, const void *key, size_t klen)
{
	rocksdb_iter_seek(((struct riter *)base)->it, key, klen);
}

static void riter_seek_last(struct mav_kv_iter *base)
{
	rocksdb_iter_seek_to_last(((struct riter *)base)->it);
}

static bool riter_valid(const struct mav_kv_iter *base)
{
	return rocksdb_iter_valid(((const struct riter *)base)->it);
}

static void riter_next(struct mav_kv_iter *base)
{
	struct riter *r = (struct riter *)base;

	if (rocksdb_iter_valid(r->it))
		rocksdb_iter_next(r->it);
}

static const void *riter_key(const struct mav_kv_iter *base, size_t *klen)
{
	return rocksdb_iter_key(((const struct riter *)base)->it, klen);
}

static const void *riter_value(const struct mav_kv_iter *base, size_t *vlen)
{
	return rocksdb_iter_value(((const struct riter *)base)->it, vlen);
}

static int riter_status(const struct mav_kv_iter *base)
{
	char *err = NULL;

	rocksdb_iter_get_error(((const struct riter *)base)->it, &err);
	return err ? map_err(err, "iterate") : 0;
}

static void riter_free(struct mav_kv_iter *base)
{
	struct riter *r = (struct riter *)base;

	if (r->it)
		rocksdb_iter_destroy(r->it);
	if (r->snap)
		rocksdb_release_snapshot(r->db, r->snap);
	rocksdb_readoptions_destroy(r->ro);
	free(r);
}

static const struct mav_kv_iter_ops riter_ops = {
    .seek = riter_seek,
    .seek_last = riter_seek_last,
    .valid = riter_valid,
    .next = riter_next,
    .key = riter_key,
    .value = riter_value,
    .status = riter_status,
    .free = riter_free,
};

static int kvr_iter(void *self, enum mav_cf cf, struct mav_kv_iter **out)
{
	struct kvr *k = self;
	struct riter *r = calloc(1, sizeof(*r));

	if (!r)
		return nomem();
	r->base.ops = &riter_ops;
	r->db = k->db;
	r->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(r->ro, cf != MAV_CF_CHUNKS);
	/* A RocksDB iterator already reads one point in time; the explicit
	 * snapshot pins it for the iterator's life. Secondaries do not
	 * support snapshots: their view only moves on catch-up. */
	if (!k->secondary) {
		r->snap = rocksdb_create_snapshot(k->db);
		rocksdb_readoptions_set_snapshot(r->ro, r->snap);
	}
	r->it = rocksdb_create_iterator_cf(k->db, r->ro, k->cf[cf]);
	*out = &r->base;
	return 0;
}

static int kvr_room(void *self, uint64_t bytes)
{
	struct kvr *k = self;

	if (k->secondary)
		return mav_error_set(-EROFS,
		                     "a secondary instance is read-only");
	return space_admit(k, sat_add(bytes, bytes), false, false);
}

static uint64_t kvr_cache_bytes(void *self)
{
	struct kvr *k = self;

	return rocksdb_cache_get_usage(k->cache);
}

static const struct mav_kv_ops rocksdb_ops = {
    .get = kvr_get,
    .get_view = kvr_get_view,
    .probe_view = kvr_probe_view,
    .write = kvr_write,
    .iter = kvr_iter,
    .flush = kvr_flush,
    .compact = kvr_compact,
    .room = kvr_room,
    .cache_bytes = kvr_cache_bytes,
    .close = kvr_close,
};

int mav_kv_open_rocksdb(struct mav_kv **out, const char *path,
                        const struct mav_kv_options *opt)
{
	static const struct mav_kv_options defaults;
	struct kvr *k = NULL;
	int rc;

	*out = NULL;
	if (!opt)
		opt = &defaults;
	rc = check_present(path, opt);
	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (!k)
		return nomem();
	k->kv.ops = &rocksdb_ops;
	k->kv.self = k;
	rc = kvr_init(k, path, opt);
	if (rc == 0)
		rc = open_db(k, opt);
	if (rc < 0) {
		kvr_close(k);
		return rc;
	}
	*out = &k->kv;
	return 0;
}
