/* repo.c - opening a repository; storing and reading chunks and objects.
 *
 * A repository directory holds `db/` (RocksDB). MAV_CF_META keeps the format
 * version and the config fixed at init (chunker parameters, zstd level,
 * free-space reserve). Chunks are stored as frames under their id; objects
 * (blobs, trees, commits) as their encodings under their id. Both are
 * idempotent: storing what exists is success and costs a lookup.
 *
 * Reads go through two caches: decompressed chunks (a read of any range of a
 * chunk copies from the cached plain bytes) and decoded trees (shared,
 * refcounted, so a 100k-entry directory is decoded once per cache life).
 * Reads verify the frame's XXH3 checksum; fsck also re-hashes every id.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/frame.h"
#include "prefetch.h"
#include "repo_internal.h"

#define DEFAULT_CHUNK_CACHE (256ull << 20)
#define DEFAULT_TREE_CACHE  (64ull << 20)

void mav_repo_config_default(struct mav_repo_config *cfg)
{
	cfg->chunk_min = MAV_CHUNK_MIN_DEFAULT;
	cfg->chunk_avg = MAV_CHUNK_AVG_DEFAULT;
	cfg->chunk_max = MAV_CHUNK_MAX_DEFAULT;
	cfg->zstd_level = 3;
	cfg->reserve_bytes = 64ull << 20;
}

static int config_encode(uint8_t **out, size_t *len,
                         const struct mav_repo_config *cfg)
{
	struct mav_wbuf b;

	mav_wbuf_init(&b, 32);
	mav_wbuf_put_magic(&b, "MAVG", 1);
	mav_wbuf_put_u32(&b, cfg->chunk_min);
	mav_wbuf_put_u32(&b, cfg->chunk_avg);
	mav_wbuf_put_u32(&b, cfg->chunk_max);
	mav_wbuf_put_u32(&b, (uint32_t)cfg->zstd_level);
	mav_wbuf_put_u64(&b, cfg->reserve_bytes);
	return mav_wbuf_finish(&b, out, len);
}

static int config_decode(struct mav_repo_config *cfg, const void *buf,
                         size_t len)
{
	struct mav_rbuf rd;
	uint8_t version;
	uint32_t level = 0;
	int rc;

	mav_rbuf_init(&rd, buf, len, "repository config");
	rc = mav_rbuf_get_magic(&rd, "MAVG", 1, &version);
	if (rc < 0)
		return rc;
	mav_rbuf_get_u32(&rd, &cfg->chunk_min);
	mav_rbuf_get_u32(&rd, &cfg->chunk_avg);
	mav_rbuf_get_u32(&rd, &cfg->chunk_max);
	mav_rbuf_get_u32(&rd, &level);
	mav_rbuf_get_u64(&rd, &cfg->reserve_bytes);
	cfg->zstd_level = (int)level;
	return mav_rbuf_end(&rd);
}

static int repo_new(struct mav_repo **out, struct mav_kv *kv,
                    const struct mav_repo_options *opt)
{
	struct mav_repo *r = calloc(1, sizeof(*r));
	uint64_t cc = opt && opt->chunk_cache_bytes ? opt->chunk_cache_bytes
	                                            : DEFAULT_CHUNK_CACHE;
	uint64_t tc = opt && opt->tree_cache_bytes ? opt->tree_cache_bytes
	                                           : DEFAULT_TREE_CACHE;
	int rc;

	*out = NULL;
	if (!r)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	r->kv = kv;
	r->lock_fd = -1;
	r->secondary = opt && opt->secondary;
	pthread_mutex_init(&r->ref_lock, NULL);
	pthread_mutex_init(&r->loc_lock, NULL);
	rc = mav_cache_new(&r->chunks, cc, free);
	if (rc == 0)
		rc = mav_cache_new(&r->trees, tc, mav_odb_holder_free);
	if (rc == 0)
		rc = mav_cache_new(&r->blobs, tc, mav_odb_holder_free);
	if (rc < 0) {
		r->kv = NULL;
		mav_repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Write the format, config, the empty blob and tree, and branch main. */
static int init_kv(struct mav_kv *kv, const struct mav_repo_config *cfg)
{
	struct mav_kv_batch *b = NULL;
	uint8_t *enc = NULL, fmt[4];
	size_t len;
	mav_id id;
	int rc;

	rc = mav_kv_batch_new(&b);
	if (rc < 0)
		goto out;
	mav_store_u32(fmt, MAV_FORMAT_VERSION);
	rc = mav_kv_batch_put(b, MAV_CF_META, MAV_META_FORMAT,
	                      strlen(MAV_META_FORMAT), fmt, 4);
	if (rc == 0)
		rc = config_encode(&enc, &len, cfg);
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_META, MAV_META_CONFIG,
		                      strlen(MAV_META_CONFIG), enc, len);
	free(enc);
	enc = NULL;
	if (rc == 0)
		rc = mav_blob_encode(&enc, &len, NULL, NULL, 0);
	if (rc == 0) {
		mav_id_hash(&id, enc, len);
		rc = mav_kv_batch_put(b, MAV_CF_OBJECTS, id.b, MAV_ID_LEN, enc,
		                      len);
	}
	free(enc);
	enc = NULL;
	if (rc == 0)
		rc = mav_tree_encode(&enc, &len, NULL, 0);
	if (rc == 0) {
		mav_id_hash(&id, enc, len);
		rc = mav_kv_batch_put(b, MAV_CF_OBJECTS, id.b, MAV_ID_LEN, enc,
		                      len);
	}
	memset(&id, 0, sizeof(id));
	if (rc == 0)
		rc = mav_kv_batch_put(b, MAV_CF_REFS, "b/main", 6, id.b,
		                      MAV_ID_LEN);
	if (rc == 0)
		rc = mav_kv_write(kv, b, MAV_KV_SYNC);
out:
	free(enc);
	mav_kv_batch_free(b);
	return rc;
}

static int check_config(const struct mav_repo_config *cfg)
{
	struct mav_chunker c;

	if (cfg->zstd_level < 0 || cfg->zstd_level > 19)
		return mav_error_set(MAV_EINVAL, "zstd level must be 0..19");
	return mav_chunker_init(&c, cfg->chunk_min, cfg->chunk_avg,
	                        cfg->chunk_max);
}

/* The chunk FastCDC cuts from a long run of zeros. */
static int zero_chunk_init(struct mav_repo *r)
{
	uint8_t *zeros = calloc(1, r->cfg.chunk_max);

	if (!zeros)
		return mav_error_set(MAV_ENOMEM, "out of memory");
	r->zero_len = mav_chunker_cut(&r->chunker, zeros, r->cfg.chunk_max);
	mav_id_hash(&r->zero_id, zeros, r->zero_len);
	free(zeros);
	return 0;
}

/* Read format and config from the meta family and set up the chunker. */
static int load_meta(struct mav_repo *r)
{
	void *v = NULL;
	size_t vlen;
	int rc;

	rc = mav_kv_get(r->kv, MAV_CF_META, MAV_META_FORMAT,
	                strlen(MAV_META_FORMAT), &v, &vlen);
	if (rc == MAV_ENOTFOUND) {
		rc = mav_error_set(MAV_ENOTREPO,
		                   "not a mav repository (no format record)");
		goto out;
	}
	if (rc < 0)
		goto out;
	if (vlen != 4) {
		rc = mav_error_set(MAV_ECORRUPT, "format record is corrupt");
		goto out;
	}
	if (mav_load_u32(v) > MAV_FORMAT_VERSION) {
		rc = mav_error_set(MAV_EVERSION,
		                   "repository format %u is newer than this "
		                   "mav (%u): upgrade mav",
		                   mav_load_u32(v), MAV_FORMAT_VERSION);
		goto out;
	}
	if (mav_load_u32(v) < MAV_FORMAT_VERSION) {
		rc = mav_error_set(MAV_EVERSION,
		                   "repository format %u is older than this "
		                   "mav (%u) reads: export it with the mav "
		                   "that wrote it and import it again",
		                   mav_load_u32(v), MAV_FORMAT_VERSION);
		goto out;
	}
	free(v);
	v = NULL;
	rc = mav_kv_get(r->kv, MAV_CF_META, MAV_META_CONFIG,
	                strlen(MAV_META_CONFIG), &v, &vlen);
	if (rc == 0)
		rc = config_decode(&r->cfg, v, vlen);
	if (rc == 0)
		rc = mav_chunker_init(&r->chunker, r->cfg.chunk_min,
		                      r->cfg.chunk_avg, r->cfg.chunk_max);
	if (rc == 0)
		rc = zero_chunk_init(r);
	if (rc == 0)
		rc = mav_refs_load(r);
out:
	free(v);
	return rc;
}

int mav_repo_open_kv(struct mav_repo **out, struct mav_kv *kv, bool init,
                     const struct mav_repo_config *cfg)
{
	struct mav_repo_config def;
	struct mav_repo *r = NULL;
	int rc;

	*out = NULL;
	if (!cfg) {
		mav_repo_config_default(&def);
		cfg = &def;
	}
	rc = init ? check_config(cfg) : 0;
	if (rc == 0 && init)
		rc = init_kv(kv, cfg);
	if (rc == 0)
		rc = repo_new(&r, kv, NULL);
	else
		mav_kv_close(kv);
	if (rc < 0)
		return rc;
	rc = load_meta(r);
	if (rc < 0) {
		mav_repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int db_path(char *buf, size_t cap, const char *path)
{
	if ((size_t)snprintf(buf, cap, "%s/db", path) >= cap)
		return mav_error_set(MAV_EINVAL, "repository path too long");
	return 0;
}

/* Take REPO/lock before RocksDB sees the directory: RocksDB rotates its info
 * log before it takes its own lock, so a second writer must be turned away
 * earlier, or its failed open renames the running daemon's files. */
static int lock_repo(int *fd_out, const char *path)
{
	char lp[PATH_MAX];
	int fd;

	*fd_out = -1;
	if ((size_t)snprintf(lp, sizeof(lp), "%s/lock", path) >= sizeof(lp))
		return mav_error_set(MAV_EINVAL, "repository path too long");
	fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return mav_error_set(-errno, "cannot open %s: %s", lp,
		                     strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return mav_error_set(
			    MAV_ELOCKED,
			    "repository %s is in use by another "
			    "process (a mavfs mount?)",
			    path);
		return mav_error_set(-e, "cannot lock %s: %s", lp, strerror(e));
	}
	*fd_out = fd;
	return 0;
}

int mav_repo_init(const char *path, const struct mav_repo_config *cfg)
{
	struct mav_kv_options ko = {.create = true};
	struct mav_repo_config def;
	struct mav_kv *kv = NULL;
	char db[PATH_MAX];
	struct stat st;
	int rc, fd = -1;

	if (!cfg) {
		mav_repo_config_default(&def);
		cfg = &def;
	}
	rc = check_config(cfg);
	if (rc == 0)
		rc = db_path(db, sizeof(db), path);
	if (rc < 0)
		return rc;
	if (stat(db, &st) == 0)
		return mav_error_set(MAV_EEXIST, "%s is already a repository",
		                     path);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return mav_error_set(-errno, "cannot create %s: %s", path,
		                     strerror(errno));
	ko.reserve_bytes = cfg->reserve_bytes;
	rc = lock_repo(&fd, path);
	if (rc == 0)
		rc = mav_kv_open_rocksdb(&kv, db, &ko);
	if (rc == 0)
		rc = init_kv(kv, cfg);
	mav_kv_close(kv);
	if (fd >= 0)
		close(fd);
	return rc;
}

int mav_repo_open(struct mav_repo **out, const char *path,
                  const struct mav_repo_options *opt)
{
	struct mav_kv_options ko = {.secondary = opt && opt->secondary};
	struct mav_repo *r = NULL;
	struct mav_kv *kv = NULL;
	char db[PATH_MAX];
	struct stat st;
	int rc, fd = -1;

	*out = NULL;
	rc = db_path(db, sizeof(db), path);
	if (rc < 0)
		return rc;
	if (stat(db, &st) < 0 || !S_ISDIR(st.st_mode))
		return mav_error_set(MAV_ENOTREPO, "%s is not a mav repository",
		                     path);
	if (!ko.secondary) {
		rc = lock_repo(&fd, path);
		if (rc < 0)
			return rc;
	}
	/* The reserve is in the config, which is in the db: open with a
	 * default reserve, then apply the configured one. */
	ko.reserve_bytes = 64ull << 20;
	rc = mav_kv_open_rocksdb(&kv, db, &ko);
	if (rc == 0)
		rc = repo_new(&r, kv, opt);
	else
		kv = NULL;
	if (rc < 0) {
		mav_kv_close(kv);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	r->lock_fd = fd;
	r->path = strdup(path);
	rc =
	    r->path ? load_meta(r) : mav_error_set(MAV_ENOMEM, "out of memory");
	if (rc == 0 && !ko.secondary &&
	    r->cfg.reserve_bytes != ko.reserve_bytes) {
		mav_kv_close(r->kv);
		r->kv = NULL;
		ko.reserve_bytes = r->cfg.reserve_bytes;
		rc = mav_kv_open_rocksdb(&r->kv, db, &ko);
	}
	if (rc < 0) {
		mav_repo_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void mav_repo_close(struct mav_repo *r)
{
	if (!r)
		return;
	mav_prefetch_free(r->prefetch); /* before the caches it fills */
	mav_prefetch_free(r->tree_prefetch);
	mav_prefetch_free(r->file_prefetch);
	mav_cache_free(r->chunks);
	mav_cache_free(r->trees);
	mav_cache_free(r->blobs);
	mav_kv_close(r->kv);
	if (r->lock_fd >= 0)
		close(r->lock_fd); /* after RocksDB is closed: releases flock */
	pthread_mutex_destroy(&r->ref_lock);
	pthread_mutex_destroy(&r->loc_lock);
	free(r->path);
	free(r);
}

const struct mav_repo_config *mav_repo_config(const struct mav_repo *r)
{
	return &r->cfg;
}

struct mav_kv *mav_repo_kv(struct mav_repo *r)
{
	return r->kv;
}

const char *mav_repo_path(const struct mav_repo *r)
{
	return r->path;
}

int mav_repo_write(struct mav_repo *r, struct mav_kv_batch *b, unsigned flags)
{
	int rc;

	if (r->secondary)
		return mav_error_set(-EROFS, "repository opened read-only");
	rc = mav_odb_place(r, b);
	if (rc == 0)
		rc = mav_kv_write(r->kv, b, flags);
	/* Counted after the write: a flush that read the count before it
	 * may have missed it, and leaves it pending. */
	if (rc == 0 && (flags & MAV_KV_NO_WAL))
		__atomic_add_fetch(&r->nowal_writes, 1, __ATOMIC_SEQ_CST);
	return rc;
}

int mav_repo_flush(struct mav_repo *r)
{
	uint64_t seen = __atomic_load_n(&r->nowal_writes, __ATOMIC_SEQ_CST);
	uint64_t was = __atomic_load_n(&r->nowal_flushed, __ATOMIC_SEQ_CST);
	int rc = mav_kv_flush(r->kv);

	while (rc == 0 && was < seen &&
	       !__atomic_compare_exchange_n(&r->nowal_flushed, &was, seen,
	                                    false, __ATOMIC_SEQ_CST,
	                                    __ATOMIC_SEQ_CST))
		;
	return rc;
}
