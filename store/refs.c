/* refs.c - branches, tags and version numbers; revision parsing.
 *
 * Keys in MAV_CF_REFS: "b/<branch>" and "t/<tag>" hold a 32-byte commit id
 * (a branch with no snapshot holds zeros); "v/" + 8-byte big-endian N holds
 * the commit of vN, so versions iterate in numeric order. Updates are
 * compare-and-swap under repo->ref_lock, applied together with the content
 * they point at in one synced WriteBatch (content first, ref last).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mav/error.h"
#include "mav/wt.h"
#include "repo_internal.h"

#define REF_KEY_MAX 300

/* Encode a ref name into its key; versions "v/N" become "v/" + BE64. */
static int ref_key(uint8_t *key, size_t *klen, const char *ref)
{
	size_t n = strlen(ref);

	if (n < 3 || ref[1] != '/' || !strchr("btv", ref[0]))
		return mav_error_set(MAV_EINVAL, "bad ref name '%s'", ref);
	if (ref[0] == 'v') {
		char *end;
		uint64_t v;

		errno = 0;
		v = strtoull(ref + 2, &end, 10);
		if (*end || errno || v == 0)
			return mav_error_set(MAV_EINVAL, "bad version ref '%s'",
			                     ref);
		key[0] = 'v';
		key[1] = '/';
		for (int i = 0; i < 8; i++)
			key[2 + i] = (uint8_t)(v >> (56 - 8 * i));
		*klen = 10;
		return 0;
	}
	if (n > REF_KEY_MAX)
		return mav_error_set(MAV_EINVAL, "ref name too long");
	memcpy(key, ref, n);
	*klen = n;
	return 0;
}

static uint64_t version_of_key(const uint8_t *k)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | k[2 + i];
	return v;
}

int mav_ref_get(mav_id *out, struct mav_repo *r, const char *ref)
{
	uint8_t key[REF_KEY_MAX];
	void *v = NULL;
	size_t klen, vlen;
	int rc = ref_key(key, &klen, ref);

	if (rc < 0)
		return rc;
	rc = mav_kv_get(r->kv, MAV_CF_REFS, key, klen, &v, &vlen);
	if (rc == MAV_ENOTFOUND)
		rc = mav_error_set(rc, "no such ref '%s'", ref);
	else if (rc == 0 && vlen != MAV_ID_LEN)
		rc = mav_error_set(MAV_ECORRUPT, "ref '%s' is corrupt", ref);
	if (rc == 0)
		memcpy(out->b, v, MAV_ID_LEN);
	free(v);
	return rc;
}

static int check_old(struct mav_repo *r, const struct mav_ref_update *u)
{
	mav_id cur;
	int rc = mav_ref_get(&cur, r, u->ref);

	if (rc == MAV_ENOTFOUND && !u->old)
		return 0;
	if (rc < 0 && rc != MAV_ENOTFOUND)
		return rc;
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(MAV_ECONFLICT,
		                     "'%s' was deleted meanwhile", u->ref);
	if (!u->old)
		return mav_error_set(MAV_EEXIST, "'%s' already exists", u->ref);
	if (mav_id_cmp(&cur, u->old) != 0)
		return mav_error_set(MAV_ECONFLICT,
		                     "'%s' moved meanwhile; retry", u->ref);
	return 0;
}

int mav_ref_update(struct mav_repo *r, struct mav_kv_batch *b,
                   const struct mav_ref_update *u, size_t n)
{
	struct mav_kv_batch *own = NULL;
	uint8_t key[REF_KEY_MAX];
	size_t klen = 0;
	int rc = 0;

	if (!b) {
		rc = mav_kv_batch_new(&own);
		if (rc < 0)
			return rc;
		b = own;
	}
	pthread_mutex_lock(&r->ref_lock);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = check_old(r, &u[i]);
		if (rc == 0)
			rc = ref_key(key, &klen, u[i].ref);
		if (rc < 0)
			break;
		if (u[i].new_id)
			rc = mav_kv_batch_put(b, MAV_CF_REFS, key, klen,
			                      u[i].new_id->b, MAV_ID_LEN);
		else
			rc = mav_kv_batch_del(b, MAV_CF_REFS, key, klen);
	}
	if (rc == 0)
		rc = mav_repo_write(r, b, MAV_KV_SYNC);
	pthread_mutex_unlock(&r->ref_lock);
	mav_kv_batch_free(own);
	return rc;
}

int mav_refs_load(struct mav_repo *r)
{
	struct mav_kv_iter *it = NULL;
	uint8_t hi[10] = {'v',  '/',  0xff, 0xff, 0xff,
	                  0xff, 0xff, 0xff, 0xff, 0xff};
	uint64_t last = 0;
	int rc = mav_kv_iter_new(&it, r->kv, MAV_CF_REFS);

	if (rc < 0)
		return rc;
	/* The largest version key is the last "v/" key: seek to "v/" and
	 * walk (versions are few compared with anything else we store). */
	mav_kv_iter_seek(it, "v/", 2);
	while (mav_kv_iter_valid(it)) {
		size_t klen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);

		if (klen != 10 || memcmp(k, "v/", 2) != 0 ||
		    memcmp(k, hi, 10) > 0)
			break;
		last = version_of_key(k);
		mav_kv_iter_next(it);
	}
	rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	r->next_version = last + 1;
	return rc;
}

int mav_ref_next_version(uint64_t *out, struct mav_repo *r)
{
	pthread_mutex_lock(&r->ref_lock);
	*out = r->next_version++;
	pthread_mutex_unlock(&r->ref_lock);
	return 0;
}

static bool plain_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 200 || name[0] == '@' || name[0] == '.' ||
	    name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c == '/' || c == ':' || c == '\\' || c == 0x7f)
			return false;
	}
	return true;
}

bool mav_branch_name_valid(const char *name)
{
	return plain_name(name);
}

static bool looks_like_version(const char *s)
{
	if (s[0] != 'v' || !s[1])
		return false;
	for (s++; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

bool mav_tag_name_valid(const char *name)
{
	return plain_name(name) && !looks_like_version(name);
}

int mav_ref_list(struct mav_repo *r, char kind, mav_ref_fn fn, void *ctx)
{
	struct mav_kv_iter *it = NULL;
	char prefix[2] = {kind, '/'}, name[REF_KEY_MAX + 1];
	int rc = mav_kv_iter_new(&it, r->kv, MAV_CF_REFS);

	if (rc < 0)
		return rc;
	for (mav_kv_iter_seek(it, prefix, 2); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		const void *v = mav_kv_iter_value(it, &vlen);
		mav_id id;

		if (klen < 3 || memcmp(k, prefix, 2) != 0)
			break;
		if (vlen != MAV_ID_LEN || klen > REF_KEY_MAX ||
		    (kind == 'v' && klen != 10)) {
			rc = mav_error_set(MAV_ECORRUPT, "corrupt ref record");
			break;
		}
		if (kind == 'v')
			snprintf(name, sizeof(name), "v%" PRIu64,
			         version_of_key(k));
		else {
			memcpy(name, k + 2, klen - 2);
			name[klen - 2] = '\0';
		}
		memcpy(id.b, v, MAV_ID_LEN);
		rc = fn(ctx, name, &id);
		if (rc)
			break;
	}
	if (rc == 0)
		rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	return rc;
}

/* Commit-id prefix search over the objects family. */
static int commit_by_prefix(mav_id *out, struct mav_repo *r, const char *hex)
{
	struct mav_kv_iter *it = NULL;
	int matches = 0, rc;
	size_t ndigits, plen;
	bool odd;
	mav_id prefix;
	uint8_t *p = prefix.b;

	if (mav_id_from_hex(&prefix, &ndigits, hex) < 0 || ndigits < 4)
		return mav_error_set(MAV_ENOTFOUND,
		                     "unknown revision '%s' (not a version, "
		                     "tag, branch or commit id)",
		                     hex);
	plen = (ndigits + 1) / 2;
	odd = ndigits % 2;
	rc = mav_kv_iter_new(&it, r->kv, MAV_CF_OBJECTS);
	if (rc < 0)
		return rc;
	for (mav_kv_iter_seek(it, p, plen - odd); mav_kv_iter_valid(it);
	     mav_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = mav_kv_iter_key(it, &klen);
		const void *v = mav_kv_iter_value(it, &vlen);

		if (klen != MAV_ID_LEN || memcmp(k, p, plen - odd) != 0)
			break;
		if (odd && (k[plen - 1] & 0xf0) != p[plen - 1])
			continue;
		if (mav_object_kind(v, vlen) != 'C')
			continue;
		if (++matches > 1)
			break;
		memcpy(out->b, k, MAV_ID_LEN);
	}
	rc = mav_kv_iter_status(it);
	mav_kv_iter_free(it);
	if (rc < 0)
		return rc;
	if (matches > 1)
		return mav_error_set(MAV_EBADREV, "revision '%s' is ambiguous",
		                     hex);
	if (matches == 0)
		return mav_error_set(MAV_ENOTFOUND, "unknown revision '%s'",
		                     hex);
	return 0;
}

int mav_rev_parse(mav_id *out, struct mav_repo *r, const char *rev)
{
	char ref[REF_KEY_MAX + 3];
	int rc;

	if (!rev[0] || strlen(rev) > REF_KEY_MAX)
		return mav_error_set(MAV_EBADREV, "bad revision '%s'", rev);
	if (looks_like_version(rev)) {
		snprintf(ref, sizeof(ref), "v/%s", rev + 1);
		rc = mav_ref_get(out, r, ref);
		return rc == MAV_ENOTFOUND
		           ? mav_error_set(rc, "no version %s", rev)
		           : rc;
	}
	snprintf(ref, sizeof(ref), "t/%s", rev);
	rc = mav_ref_get(out, r, ref);
	if (rc != MAV_ENOTFOUND)
		return rc;
	snprintf(ref, sizeof(ref), "b/%s", rev);
	rc = mav_ref_get(out, r, ref);
	if (rc == 0 && mav_id_is_zero(out))
		return mav_error_set(MAV_ENOTFOUND,
		                     "branch '%s' has no snapshot yet", rev);
	if (rc != MAV_ENOTFOUND)
		return rc;
	return commit_by_prefix(out, r, rev);
}

int mav_branch_create(struct mav_repo *r, const char *name,
                      const mav_id *commit)
{
	char ref[REF_KEY_MAX + 3];
	struct mav_ref_update u = {.ref = ref, .old = NULL, .new_id = commit};

	if (!mav_branch_name_valid(name))
		return mav_error_set(MAV_EINVAL, "invalid branch name '%s'",
		                     name);
	snprintf(ref, sizeof(ref), "b/%s", name);
	return mav_ref_update(r, NULL, &u, 1);
}

int mav_branch_delete(struct mav_repo *r, const char *name)
{
	char ref[REF_KEY_MAX + 3];
	mav_id cur;
	struct mav_ref_update u = {.ref = ref, .old = &cur, .new_id = NULL};
	int rc;

	snprintf(ref, sizeof(ref), "b/%s", name);
	rc = mav_ref_get(&cur, r, ref);
	if (rc == MAV_ENOTFOUND)
		return mav_error_set(rc, "no branch '%s'", name);
	if (rc == 0)
		rc = mav_wt_destroy(r, name);
	if (rc == 0)
		rc = mav_ref_update(r, NULL, &u, 1);
	return rc;
}
