/* object.c - blob, tree and commit encodings (see store/FORMAT.md).
 *
 * Encodings are canonical: one in-memory value has exactly one encoding
 * (sorted entries, no optional padding, no trailing bytes), so equal
 * content gives equal ids. Encoders refuse values that could not be decoded
 * back (MAV_EINVAL); decoders refuse anything an encoder could not have
 * written (MAV_ECORRUPT), newer versions with MAV_EVERSION.
 *
 * Each decoded object is one malloc: the struct, its arrays and its
 * strings are carved from a single block by a bump "arena". Decoding runs
 * the same parser twice: first with no memory, which validates every byte
 * and measures the block, then into the block. Nothing is allocated for
 * input that fails, and the block is bounded by a small multiple of the
 * input length, so a hostile count cannot make us allocate gigabytes.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mav/error.h"
#include "mav/object.h"

#define OBJ_VERSION        1
#define NAME_MAX_LEN       255
#define TARGET_MAX_LEN     4095 /* PATH_MAX - 1 */
#define XATTR_NAME_MAX_LEN 255
#define XATTR_VALUE_MAX    65536 /* Linux XATTR_SIZE_MAX */
#define BLOB_ITEM_LEN      (MAV_ID_LEN + 4)
#define BLOB_PAGE_ITEM_LEN (MAV_ID_LEN + 4 + 8)
/* Blob pages: at least PAGE_MIN chunks, at most PAGE_MAX, and otherwise
 * ending after a chunk whose id's first two bytes have the PAGE_MASK bits
 * clear (about one in 512). */
#define PAGE_MIN  64
#define PAGE_MAX  MAV_BLOB_FLAT_MAX
#define PAGE_MASK 0x1ff
/* Smallest index item: id, count, 1-byte first name. */
#define PAGE_ITEM_MIN_LEN (MAV_ID_LEN + 4 + 2 + 1)
/* Smallest tree entry: 1-byte name, no target, no xattrs. */
#define ENTRY_MIN_LEN (2 + 1 + 1 + 4 * 3 + 8 + 8 + 4 + 8 + MAV_ID_LEN + 4 + 2)

/* ---- the arena: measure first (base NULL), then carve ---- */

struct arena {
	uint8_t *base; /* NULL while measuring */
	size_t used;
};

static void *arena_take(struct arena *a, size_t n, size_t align)
{
	size_t off = (a->used + align - 1) & ~(align - 1);

	a->used = off + n;
	return a->base ? a->base + off : NULL;
}

/* A NUL-terminated copy of n bytes (NULL while measuring). */
static char *arena_str(struct arena *a, const uint8_t *s, size_t n)
{
	char *d = arena_take(a, n + 1, 1);

	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Run parse twice (measure, then fill) and hand out the block. */
typedef int (*parse_fn)(void **obj, struct arena *a, const void *buf,
                        size_t len);

static int decode_arena(void **out, parse_fn parse, const void *buf, size_t len,
                        const char *what)
{
	struct arena a = {NULL, 0};
	void *obj = NULL;
	int rc;

	*out = NULL;
	rc = parse(&obj, &a, buf, len);
	if (rc < 0)
		goto out;
	a.base = malloc(a.used);
	if (!a.base) {
		rc = mav_error_set(MAV_ENOMEM, "%s: %zu bytes", what, a.used);
		goto out;
	}
	a.used = 0;
	rc = parse(&obj, &a, buf, len);
	if (rc < 0) { /* cannot happen: the same bytes passed once */
		free(a.base);
		goto out;
	}
	*out = a.base;
out:
	return rc;
}

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool has_byte(const uint8_t *p, size_t n, uint8_t c)
{
	return n && memchr(p, c, n) != NULL;
}

char mav_object_kind(const void *buf, size_t len)
{
	if (!buf || len < 4)
		return 0;
	if (memcmp(buf, "MAVB", 4) == 0)
		return 'B';
	if (memcmp(buf, "MAVP", 4) == 0)
		return 'P';
	if (memcmp(buf, "MAVT", 4) == 0)
		return 'T';
	if (memcmp(buf, "MAVI", 4) == 0)
		return 'I';
	if (memcmp(buf, "MAVC", 4) == 0)
		return 'C';
	return 0;
}

/* ---- blobs ---- */

int mav_blob_encode(uint8_t **out, size_t *outlen, const mav_id *ids,
                    const uint32_t *lens, uint32_t n)
{
	struct mav_wbuf w;
	uint64_t size = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (lens[i] == 0)
			return mav_error_set(MAV_EINVAL,
			                     "blob: chunk %u is empty", i);
		size += lens[i];
	}
	mav_wbuf_init(&w, 17 + (size_t)n * BLOB_ITEM_LEN);
	mav_wbuf_put_magic(&w, "MAVB", OBJ_VERSION);
	mav_wbuf_put_u64(&w, size);
	mav_wbuf_put_u32(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		mav_wbuf_put_bytes(&w, ids[i].b, MAV_ID_LEN);
		mav_wbuf_put_u32(&w, lens[i]);
	}
	return mav_wbuf_finish(&w, out, outlen);
}

static int blob_parse(void **obj, struct arena *a, const void *buf, size_t len)
{
	struct mav_rbuf r;
	struct mav_blob *b;
	uint64_t size, sum = 0, *ends;
	const uint8_t *idp;
	mav_id *ids;
	uint32_t n, clen;
	uint8_t version;

	mav_rbuf_init(&r, buf, len, "blob");
	mav_rbuf_get_magic(&r, "MAVB", OBJ_VERSION, &version);
	mav_rbuf_get_u64(&r, &size);
	if (mav_rbuf_get_u32(&r, &n) < 0)
		return r.err;
	if (mav_rbuf_left(&r) / BLOB_ITEM_LEN != n ||
	    mav_rbuf_left(&r) % BLOB_ITEM_LEN)
		return mav_rbuf_fail(&r, "chunk count does not match length");
	b = arena_take(a, sizeof(*b), alignof(struct mav_blob));
	ends = arena_take(a, (size_t)n * sizeof(*ends), alignof(uint64_t));
	ids = arena_take(a, (size_t)n * sizeof(*ids), alignof(mav_id));
	for (uint32_t i = 0; i < n; i++) {
		mav_rbuf_view(&r, &idp, MAV_ID_LEN);
		if (mav_rbuf_get_u32(&r, &clen) < 0)
			return r.err;
		if (ids)
			memcpy(ids[i].b, idp, MAV_ID_LEN);
		if (clen == 0)
			return mav_rbuf_fail(&r, "empty chunk");
		sum += clen;
		if (ends)
			ends[i] = sum;
	}
	if (sum != size)
		return mav_rbuf_fail(&r, "chunk lengths do not add up to size");
	if (b) {
		b->size = size;
		b->n = n;
		b->ids = n ? ids : NULL;
		b->ends = n ? ends : NULL;
	}
	*obj = b;
	return mav_rbuf_end(&r);
}

int mav_blob_decode(struct mav_blob **out, const void *buf, size_t len)
{
	return decode_arena((void **)out, blob_parse, buf, len, "blob");
}

void mav_blob_free(struct mav_blob *b)
{
	free(b);
}

int64_t mav_blob_locate(const struct mav_blob *b, uint64_t off)
{
	uint32_t lo = 0, hi;

	if (!b || off >= b->size || b->n == 0)
		return -1;
	hi = b->n - 1;
	while (lo < hi) { /* first i with ends[i] > off */
		uint32_t mid = lo + (hi - lo) / 2;

		if (b->ends[mid] > off)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t mav_blob_chunk_start(const struct mav_blob *b, uint32_t i)
{
	if (i == 0 || b->n == 0)
		return 0;
	return i <= b->n ? b->ends[i - 1] : b->size;
}

struct mav_blob *mav_blob_alloc(uint64_t size, uint32_t n)
{
	/* The struct, then the ends (8-aligned after it), then the ids. */
	struct mav_blob *b = malloc(
	    sizeof(*b) + (size_t)n * (sizeof(uint64_t) + sizeof(mav_id)));

	if (!b)
		return NULL;
	b->size = size;
	b->n = n;
	b->ends = n ? (uint64_t *)(b + 1) : NULL;
	b->ids = n ? (mav_id *)(b->ends + n) : NULL;
	return b;
}

/* ---- paged blobs ---- */

uint32_t mav_blob_page_end(const mav_id *ids, uint32_t from, uint32_t n)
{
	for (uint32_t i = from; i < n; i++) {
		uint32_t len = i - from + 1;

		if (len >= PAGE_MAX ||
		    (len >= PAGE_MIN &&
		     ((ids[i].b[0] | (uint32_t)ids[i].b[1] << 8) & PAGE_MASK) ==
		         0))
			return i + 1;
	}
	return n;
}

int mav_blob_index_encode(uint8_t **out, size_t *outlen,
                          const struct mav_blob_page *p, uint32_t npages)
{
	struct mav_wbuf w;
	uint64_t size = 0, n = 0;

	for (uint32_t i = 0; i < npages; i++) {
		if (p[i].n == 0 || p[i].size < p[i].n)
			return mav_error_set(
			    MAV_EINVAL,
			    "blob index: page %u has %u chunks "
			    "of %llu bytes",
			    i, p[i].n, (unsigned long long)p[i].size);
		size += p[i].size;
		n += p[i].n;
	}
	if (npages == 0 || n > UINT32_MAX)
		return mav_error_set(MAV_EINVAL,
		                     "blob index: %u pages of %llu chunks",
		                     npages, (unsigned long long)n);
	mav_wbuf_init(&w, 21 + (size_t)npages * BLOB_PAGE_ITEM_LEN);
	mav_wbuf_put_magic(&w, "MAVP", OBJ_VERSION);
	mav_wbuf_put_u64(&w, size);
	mav_wbuf_put_u32(&w, (uint32_t)n);
	mav_wbuf_put_u32(&w, npages);
	for (uint32_t i = 0; i < npages; i++) {
		mav_wbuf_put_bytes(&w, p[i].id.b, MAV_ID_LEN);
		mav_wbuf_put_u32(&w, p[i].n);
		mav_wbuf_put_u64(&w, p[i].size);
	}
	return mav_wbuf_finish(&w, out, outlen);
}

static int blob_index_parse(void **obj, struct arena *a, const void *buf,
                            size_t len)
{
	struct mav_blob_index *x;
	struct mav_blob_page *p;
	struct mav_rbuf r;
	uint64_t size, sum = 0, n_sum = 0;
	uint32_t n, np;
	uint8_t version;

	mav_rbuf_init(&r, buf, len, "blob index");
	mav_rbuf_get_magic(&r, "MAVP", OBJ_VERSION, &version);
	mav_rbuf_get_u64(&r, &size);
	mav_rbuf_get_u32(&r, &n);
	if (mav_rbuf_get_u32(&r, &np) < 0)
		return r.err;
	if (np == 0 || mav_rbuf_left(&r) / BLOB_PAGE_ITEM_LEN != np ||
	    mav_rbuf_left(&r) % BLOB_PAGE_ITEM_LEN)
		return mav_rbuf_fail(&r, "page count does not match length");
	x = arena_take(a, sizeof(*x), alignof(struct mav_blob_index));
	p = arena_take(a, (size_t)np * sizeof(*p),
	               alignof(struct mav_blob_page));
	for (uint32_t i = 0; i < np; i++) {
		struct mav_blob_page f;

		mav_rbuf_get_bytes(&r, f.id.b, MAV_ID_LEN);
		mav_rbuf_get_u32(&r, &f.n);
		if (mav_rbuf_get_u64(&r, &f.size) < 0)
			return r.err;
		if (f.n == 0 || f.size < f.n)
			return mav_rbuf_fail(&r,
			                     "page with no chunks or bytes");
		sum += f.size;
		n_sum += f.n;
		if (sum < f.size)
			return mav_rbuf_fail(&r, "page sizes overflow");
		if (p)
			p[i] = f;
	}
	if (sum != size || n_sum != n)
		return mav_rbuf_fail(&r, "pages do not add up to the blob");
	if (x)
		*x = (struct mav_blob_index){size, n, np, p};
	*obj = x;
	return mav_rbuf_end(&r);
}

int mav_blob_index_decode(struct mav_blob_index **out, const void *buf,
                          size_t len)
{
	return decode_arena((void **)out, blob_index_parse, buf, len,
	                    "blob index");
}

void mav_blob_index_free(struct mav_blob_index *x)
{
	free(x);
}

/* ---- trees: checks shared by the encoder and the decoder ---- */

static bool name_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	if (has_byte(p, n, '/') || has_byte(p, n, '\0'))
		return false;
	return !(p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')));
}

bool mav_name_valid(const char *name)
{
	return name && name_ok((const uint8_t *)name, strnlen(name, 256));
}

static bool xattr_name_ok(const uint8_t *p, size_t n)
{
	return n > 0 && n <= XATTR_NAME_MAX_LEN && !has_byte(p, n, '\0');
}

/* What is wrong with an entry's fixed fields, or NULL. */
static const char *entry_fault(uint8_t type, uint32_t mode, uint64_t size,
                               const mav_id *id, const uint8_t *target,
                               size_t tlen)
{
	if (type < MAV_T_FILE || type > MAV_T_SOCK)
		return "unknown type";
	if (mode & ~07777u)
		return "mode has bits beyond 07777";
	if (type == MAV_T_DIR && size != 0)
		return "directory with nonzero size";
	if ((type == MAV_T_FIFO || type == MAV_T_SOCK) &&
	    (size != 0 || !mav_id_is_zero(id)))
		return "pipe or socket with content";
	if (type != MAV_T_SYMLINK)
		return tlen ? "link target on a non-symlink" : NULL;
	if (tlen == 0 || tlen > TARGET_MAX_LEN || has_byte(target, tlen, 0))
		return "bad symlink target";
	if (size != tlen)
		return "symlink size is not its target length";
	if (!mav_id_is_zero(id))
		return "symlink with a content id";
	return NULL;
}

/* ---- tree encoding ---- */

static int xattrs_put(struct mav_wbuf *w, const struct mav_entry *e)
{
	const uint8_t *prev = NULL;
	size_t plen = 0;

	if (e->nxattrs > UINT16_MAX || (e->nxattrs && !e->xattrs))
		return mav_error_set(MAV_EINVAL, "tree entry %s: %u xattrs",
		                     e->name, e->nxattrs);
	mav_wbuf_put_u16(w, (uint16_t)e->nxattrs);
	for (uint32_t i = 0; i < e->nxattrs; i++) {
		const struct mav_xattr *x = &e->xattrs[i];
		const uint8_t *nm = (const uint8_t *)(x->name ? x->name : "");
		size_t n = strnlen((const char *)nm, XATTR_NAME_MAX_LEN + 1);

		if (!xattr_name_ok(nm, n) || x->len > XATTR_VALUE_MAX ||
		    (x->len && !x->value))
			return mav_error_set(MAV_EINVAL,
			                     "tree entry %s: bad xattr %.40s",
			                     e->name, (const char *)nm);
		if (prev && bytes_cmp(prev, plen, nm, n) >= 0)
			return mav_error_set(MAV_EINVAL,
			                     "tree entry %s: xattrs not sorted "
			                     "and unique at %.40s",
			                     e->name, (const char *)nm);
		mav_wbuf_put_u16(w, (uint16_t)n);
		mav_wbuf_put_bytes(w, nm, n);
		mav_wbuf_put_u32(w, x->len);
		mav_wbuf_put_bytes(w, x->value, x->len);
		prev = nm;
		plen = n;
	}
	return 0;
}

static int entry_put(struct mav_wbuf *w, const struct mav_entry *e,
                     const struct mav_entry *prev)
{
	size_t n = e->name ? strnlen(e->name, NAME_MAX_LEN + 1) : 0;
	size_t tlen = e->target ? strnlen(e->target, TARGET_MAX_LEN + 1) : 0;
	const char *fault;

	if (!mav_name_valid(e->name))
		return mav_error_set(MAV_EINVAL, "tree: bad entry name %.60s",
		                     e->name ? e->name : "(null)");
	if (prev && strcmp(prev->name, e->name) >= 0)
		return mav_error_set(MAV_EINVAL,
		                     "tree: entries not sorted and unique at "
		                     "%s",
		                     e->name);
	fault = entry_fault(e->type, e->mode, e->size, &e->id,
	                    (const uint8_t *)e->target, tlen);
	if (fault)
		return mav_error_set(MAV_EINVAL, "tree entry %s: %s", e->name,
		                     fault);
	mav_wbuf_put_u16(w, (uint16_t)n);
	mav_wbuf_put_bytes(w, e->name, n);
	mav_wbuf_put_u8(w, e->type);
	mav_wbuf_put_u32(w, e->mode);
	mav_wbuf_put_u32(w, e->uid);
	mav_wbuf_put_u32(w, e->gid);
	mav_wbuf_put_u64(w, e->size);
	mav_wbuf_put_u64(w, (uint64_t)e->mtime_ns);
	mav_wbuf_put_u32(w, e->nlink);
	mav_wbuf_put_u64(w, e->link_id);
	mav_wbuf_put_bytes(w, e->id.b, MAV_ID_LEN);
	mav_wbuf_put_u32(w, (uint32_t)tlen);
	mav_wbuf_put_bytes(w, e->target, tlen);
	return xattrs_put(w, e);
}

int mav_tree_encode(uint8_t **out, size_t *outlen, const struct mav_entry *e,
                    uint32_t n)
{
	struct mav_wbuf w;
	int rc = 0;

	mav_wbuf_init(&w, 9 + (size_t)n * (ENTRY_MIN_LEN + 24));
	mav_wbuf_put_magic(&w, "MAVT", OBJ_VERSION);
	mav_wbuf_put_u32(&w, n);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = entry_put(&w, &e[i], i ? &e[i - 1] : NULL);
	if (rc < 0) {
		mav_wbuf_free(&w);
		return rc;
	}
	return mav_wbuf_finish(&w, out, outlen);
}

/* ---- tree decoding ---- */

static int xattrs_parse(struct mav_rbuf *r, struct mav_entry *e,
                        struct arena *a)
{
	const uint8_t *nm, *prev = NULL, *val;
	struct mav_xattr *xs;
	uint16_t nx, nlen;
	uint32_t vlen;
	size_t plen = 0;

	if (mav_rbuf_get_u16(r, &nx) < 0)
		return r->err;
	/* nx <= 65535: bounded, and checked against the bytes below. */
	xs = arena_take(a, nx * sizeof(*xs), alignof(struct mav_xattr));
	for (uint16_t i = 0; i < nx; i++) {
		mav_rbuf_get_u16(r, &nlen);
		mav_rbuf_view(r, &nm, nlen);
		if (mav_rbuf_get_u32(r, &vlen) < 0)
			return r->err;
		if (!xattr_name_ok(nm, nlen) || vlen > XATTR_VALUE_MAX)
			return mav_rbuf_fail(r, "bad xattr");
		if (prev && bytes_cmp(prev, plen, nm, nlen) >= 0)
			return mav_rbuf_fail(r, "xattrs not sorted and unique");
		if (mav_rbuf_view(r, &val, vlen) < 0)
			return r->err;
		if (xs) {
			xs[i].name = arena_str(a, nm, nlen);
			xs[i].value = (uint8_t *)arena_str(a, val, vlen);
			xs[i].len = vlen;
		} else {
			arena_str(a, nm, nlen);
			arena_str(a, val, vlen);
		}
		prev = nm;
		plen = nlen;
	}
	if (e) {
		e->nxattrs = nx;
		e->xattrs = nx ? xs : NULL;
	}
	return 0;
}

struct name_view {
	const uint8_t *p;
	size_t n;
};

static int entry_parse(struct mav_rbuf *r, struct mav_entry *e, struct arena *a,
                       struct name_view *prev)
{
	struct mav_entry f = {0}; /* copied to *e when filling */
	const uint8_t *nm, *target;
	uint16_t nlen;
	uint32_t tlen;
	const char *fault;

	mav_rbuf_get_u16(r, &nlen);
	if (mav_rbuf_view(r, &nm, nlen) < 0)
		return r->err;
	if (!name_ok(nm, nlen))
		return mav_rbuf_fail(r, "bad entry name");
	if (prev->p && bytes_cmp(prev->p, prev->n, nm, nlen) >= 0)
		return mav_rbuf_fail(r, "entries not sorted and unique");
	*prev = (struct name_view){nm, nlen};
	mav_rbuf_get_u8(r, &f.type);
	mav_rbuf_get_u32(r, &f.mode);
	mav_rbuf_get_u32(r, &f.uid);
	mav_rbuf_get_u32(r, &f.gid);
	mav_rbuf_get_u64(r, &f.size);
	mav_rbuf_get_u64(r, (uint64_t *)&f.mtime_ns);
	mav_rbuf_get_u32(r, &f.nlink);
	mav_rbuf_get_u64(r, &f.link_id);
	mav_rbuf_get_bytes(r, f.id.b, MAV_ID_LEN);
	mav_rbuf_get_u32(r, &tlen);
	if (mav_rbuf_view(r, &target, tlen) < 0)
		return r->err;
	fault = entry_fault(f.type, f.mode, f.size, &f.id, target, tlen);
	if (fault)
		return mav_rbuf_fail(r, fault);
	f.name = arena_str(a, nm, nlen);
	f.target = tlen ? arena_str(a, target, tlen) : NULL;
	if (e)
		*e = f;
	return xattrs_parse(r, e, a);
}

static int tree_parse(void **obj, struct arena *a, const void *buf, size_t len)
{
	struct name_view prev = {NULL, 0};
	struct mav_rbuf r;
	struct mav_tree *t;
	struct mav_entry *e;
	uint8_t version;
	uint32_t n;
	int rc = 0;

	mav_rbuf_init(&r, buf, len, "tree");
	mav_rbuf_get_magic(&r, "MAVT", OBJ_VERSION, &version);
	if (mav_rbuf_get_u32(&r, &n) < 0)
		return r.err;
	if (n > mav_rbuf_left(&r) / ENTRY_MIN_LEN)
		return mav_rbuf_fail(&r, "entry count exceeds the data");
	t = arena_take(a, sizeof(*t), alignof(struct mav_tree));
	e = arena_take(a, (size_t)n * sizeof(*e), alignof(struct mav_entry));
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = entry_parse(&r, e ? &e[i] : NULL, a, &prev);
	if (rc < 0)
		return rc;
	if (t) {
		t->n = n;
		t->e = n ? e : NULL;
	}
	*obj = t;
	return mav_rbuf_end(&r);
}

int mav_tree_decode(struct mav_tree **out, const void *buf, size_t len)
{
	return decode_arena((void **)out, tree_parse, buf, len, "tree");
}

void mav_tree_free(struct mav_tree *t)
{
	free(t);
}

int64_t mav_tree_find(const struct mav_tree *t, const char *name)
{
	uint32_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->e[mid].name, name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- paged-tree indexes ---- */

int mav_tree_index_encode(uint8_t **out, size_t *outlen,
                          const struct mav_tree_page *p, uint32_t npages)
{
	struct mav_wbuf w;
	uint64_t n = 0;

	for (uint32_t i = 0; i < npages; i++) {
		if (!mav_name_valid(p[i].first) || p[i].n == 0 ||
		    (i && strcmp(p[i - 1].first, p[i].first) >= 0))
			return mav_error_set(MAV_EINVAL,
			                     "tree index: page %u is empty, "
			                     "badly named or out of order",
			                     i);
		n += p[i].n;
	}
	if (npages == 0 || n > UINT32_MAX)
		return mav_error_set(MAV_EINVAL,
		                     "tree index: %u pages of "
		                     "%llu entries",
		                     npages, (unsigned long long)n);
	mav_wbuf_init(&w, 13 + (size_t)npages * (PAGE_ITEM_MIN_LEN + 32));
	mav_wbuf_put_magic(&w, "MAVI", OBJ_VERSION);
	mav_wbuf_put_u32(&w, (uint32_t)n);
	mav_wbuf_put_u32(&w, npages);
	for (uint32_t i = 0; i < npages; i++) {
		size_t flen = strlen(p[i].first);

		mav_wbuf_put_bytes(&w, p[i].id.b, MAV_ID_LEN);
		mav_wbuf_put_u32(&w, p[i].n);
		mav_wbuf_put_u16(&w, (uint16_t)flen);
		mav_wbuf_put_bytes(&w, p[i].first, flen);
	}
	return mav_wbuf_finish(&w, out, outlen);
}

static int index_parse(void **obj, struct arena *a, const void *buf, size_t len)
{
	struct name_view prev = {NULL, 0};
	struct mav_tree_index *x;
	struct mav_tree_page *p;
	struct mav_rbuf r;
	uint32_t n, np;
	uint64_t start = 0;
	uint8_t version;

	mav_rbuf_init(&r, buf, len, "tree index");
	mav_rbuf_get_magic(&r, "MAVI", OBJ_VERSION, &version);
	mav_rbuf_get_u32(&r, &n);
	if (mav_rbuf_get_u32(&r, &np) < 0)
		return r.err;
	if (np == 0 || np > mav_rbuf_left(&r) / PAGE_ITEM_MIN_LEN)
		return mav_rbuf_fail(&r, "page count does not fit the data");
	x = arena_take(a, sizeof(*x), alignof(struct mav_tree_index));
	p = arena_take(a, (size_t)np * sizeof(*p),
	               alignof(struct mav_tree_page));
	for (uint32_t i = 0; i < np; i++) {
		struct mav_tree_page f = {0};
		const uint8_t *nm;
		uint16_t flen;

		mav_rbuf_get_bytes(&r, f.id.b, MAV_ID_LEN);
		mav_rbuf_get_u32(&r, &f.n);
		mav_rbuf_get_u16(&r, &flen);
		if (mav_rbuf_view(&r, &nm, flen) < 0)
			return r.err;
		if (f.n == 0 || !name_ok(nm, flen))
			return mav_rbuf_fail(&r, "empty or badly named page");
		if (prev.p && bytes_cmp(prev.p, prev.n, nm, flen) >= 0)
			return mav_rbuf_fail(&r, "pages not sorted and unique");
		prev = (struct name_view){nm, flen};
		f.start = (uint32_t)start;
		start += f.n;
		if (start > n)
			return mav_rbuf_fail(&r,
			                     "page counts exceed the total");
		f.first = arena_str(a, nm, flen);
		if (p)
			p[i] = f;
	}
	if (start != n)
		return mav_rbuf_fail(&r, "page counts do not add up");
	if (x)
		*x = (struct mav_tree_index){n, np, p};
	*obj = x;
	return mav_rbuf_end(&r);
}

int mav_tree_index_decode(struct mav_tree_index **out, const void *buf,
                          size_t len)
{
	return decode_arena((void **)out, index_parse, buf, len, "tree index");
}

void mav_tree_index_free(struct mav_tree_index *x)
{
	free(x);
}

int64_t mav_tree_index_find(const struct mav_tree_index *x, const char *name)
{
	uint32_t lo = 0, hi = x->npages;

	/* The first page whose first name is above name, minus one. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (strcmp(x->p[mid].first, name) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int64_t)lo - 1;
}

uint32_t mav_tree_index_page_of(const struct mav_tree_index *x, uint32_t i)
{
	uint32_t lo = 0, hi = x->npages;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (x->p[mid].start <= i)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* ---- commits ---- */

/* Everything the id covers: the encoding up to the signature part. */
static int commit_put_body(struct mav_wbuf *w, const struct mav_commit *c)
{
	const char *branch = c->branch ? c->branch : "";
	const char *author = c->author ? c->author : "";
	const char *msg = c->message ? c->message : "";
	size_t blen = strlen(branch), alen = strlen(author);
	size_t mlen = strlen(msg);

	if (c->nparents > MAV_MAX_PARENTS || blen > UINT16_MAX ||
	    alen > UINT16_MAX || mlen > UINT32_MAX)
		return mav_error_set(MAV_EINVAL,
		                     "commit: %u parents or a field too long",
		                     c->nparents);
	mav_wbuf_put_magic(w, "MAVC", OBJ_VERSION);
	mav_wbuf_put_bytes(w, c->root.b, MAV_ID_LEN);
	mav_wbuf_put_u32(w, c->nparents);
	for (uint32_t i = 0; i < c->nparents; i++)
		mav_wbuf_put_bytes(w, c->parents[i].b, MAV_ID_LEN);
	mav_wbuf_put_u16(w, (uint16_t)blen);
	mav_wbuf_put_bytes(w, branch, blen);
	mav_wbuf_put_u64(w, c->version);
	mav_wbuf_put_bytes(w, c->author_key, MAV_KEY_LEN);
	mav_wbuf_put_u16(w, (uint16_t)alen);
	mav_wbuf_put_bytes(w, author, alen);
	mav_wbuf_put_u64(w, (uint64_t)c->time_ns);
	mav_wbuf_put_u32(w, (uint32_t)mlen);
	mav_wbuf_put_bytes(w, msg, mlen);
	return 0;
}

int mav_commit_encode(uint8_t **out, size_t *outlen, const struct mav_commit *c)
{
	struct mav_wbuf w;
	int rc;

	mav_wbuf_init(&w, 256);
	rc = commit_put_body(&w, c);
	if (rc < 0) {
		mav_wbuf_free(&w);
		return rc;
	}
	mav_wbuf_put_u8(&w, c->has_sig ? 1 : 0);
	if (c->has_sig)
		mav_wbuf_put_bytes(&w, c->sig, MAV_SIG_LEN);
	return mav_wbuf_finish(&w, out, outlen);
}

int mav_commit_id(mav_id *out, const struct mav_commit *c)
{
	struct mav_wbuf w;
	int rc;

	mav_wbuf_init(&w, 256);
	rc = commit_put_body(&w, c);
	if (rc == 0)
		rc = w.err;
	if (rc == 0)
		mav_id_hash(out, w.p, w.len);
	mav_wbuf_free(&w);
	return rc;
}

/* A length-prefixed string without NUL bytes, copied into the arena. */
static char *commit_str(struct mav_rbuf *r, struct arena *a, uint32_t n)
{
	const uint8_t *p;

	if (mav_rbuf_view(r, &p, n) < 0)
		return NULL;
	if (has_byte(p, n, '\0')) {
		mav_rbuf_fail(r, "NUL byte in a string");
		return NULL;
	}
	return arena_str(a, p, n);
}

static int commit_parse_sig(struct mav_rbuf *r, struct mav_commit *c)
{
	uint8_t has_sig, sig[MAV_SIG_LEN];

	if (mav_rbuf_get_u8(r, &has_sig) < 0)
		return r->err;
	if (has_sig > 1)
		return mav_rbuf_fail(r, "bad signature flag");
	if (has_sig && mav_rbuf_get_bytes(r, sig, MAV_SIG_LEN) < 0)
		return r->err;
	if (c) {
		c->has_sig = has_sig;
		memcpy(c->sig, sig, has_sig ? MAV_SIG_LEN : 0);
	}
	return mav_rbuf_end(r);
}

static int commit_parse(void **obj, struct arena *a, const void *buf,
                        size_t len)
{
	struct mav_commit f = {0}, *c;
	struct mav_rbuf r;
	uint16_t blen, alen;
	uint32_t mlen;
	uint8_t version;

	mav_rbuf_init(&r, buf, len, "commit");
	mav_rbuf_get_magic(&r, "MAVC", OBJ_VERSION, &version);
	mav_rbuf_get_bytes(&r, f.root.b, MAV_ID_LEN);
	if (mav_rbuf_get_u32(&r, &f.nparents) < 0)
		return r.err;
	if (f.nparents > MAV_MAX_PARENTS)
		return mav_rbuf_fail(&r, "too many parents");
	for (uint32_t i = 0; i < f.nparents; i++)
		mav_rbuf_get_bytes(&r, f.parents[i].b, MAV_ID_LEN);
	c = arena_take(a, sizeof(*c), alignof(struct mav_commit));
	mav_rbuf_get_u16(&r, &blen);
	f.branch = commit_str(&r, a, blen);
	mav_rbuf_get_u64(&r, &f.version);
	mav_rbuf_get_bytes(&r, f.author_key, MAV_KEY_LEN);
	mav_rbuf_get_u16(&r, &alen);
	f.author = commit_str(&r, a, alen);
	mav_rbuf_get_u64(&r, (uint64_t *)&f.time_ns);
	mav_rbuf_get_u32(&r, &mlen);
	f.message = commit_str(&r, a, mlen);
	if (r.err)
		return r.err;
	if (c)
		*c = f;
	*obj = c;
	return commit_parse_sig(&r, c);
}

int mav_commit_decode(struct mav_commit **out, const void *buf, size_t len)
{
	return decode_arena((void **)out, commit_parse, buf, len, "commit");
}

void mav_commit_free(struct mav_commit *c)
{
	free(c);
}
