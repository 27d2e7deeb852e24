/* out.h - mavctl's output: a small JSON writer and human formatting.
 *
 * JSON strings. Names in a repository may hold any byte but '/' and NUL, so
 * the escaper never fails: '"' and '\\' are escaped, control characters
 * (U+0000..U+001F, U+007F) become \n, \t, ... or \u00XX, valid UTF-8 is
 * copied as is, and every byte that is not part of a valid UTF-8 sequence
 * becomes \u00XX with XX the byte's value. That last rule keeps the output
 * valid JSON (and UTF-8) but is lossy: a consumer cannot tell the byte 0xE9
 * from the character U+00E9 written as \u00e9. Names that must round-trip
 * exactly are plain UTF-8 in practice; the rule is there so hostile names
 * never break a parser.
 *
 * The writer keeps only "is a comma due" state: callers nest calls in the
 * order of the document. Everything goes to one FILE (stdout).
 */
#ifndef MAVCTL_OUT_H
#define MAVCTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mav/id.h>

struct json {
	FILE *f;
	bool comma; /* a value was written at this level: next needs ',' */
};

void json_init(struct json *j, FILE *f);
void json_obj(struct json *j);     /* { */
void json_end_obj(struct json *j); /* } */
void json_arr(struct json *j);     /* [ */
void json_end_arr(struct json *j); /* ] */
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_dbl(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
void json_id(struct json *j, const mav_id *id); /* hex string */
/* Finish the document with a newline; returns 0 or -EIO if stdout failed. */
int json_done(struct json *j);

/* "key": value shorthands. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_ku64(struct json *j, const char *key, uint64_t v);
void json_ki64(struct json *j, const char *key, int64_t v);
void json_kid(struct json *j, const char *key, const mav_id *id);

/* Write s[0..n) escaped as JSON string contents (no quotes). */
void json_escape(FILE *f, const char *s, size_t n);

/* ---- human formatting (buffers of the given sizes) ---- */

#define OUT_SIZE_LEN 16
#define OUT_TIME_LEN 32
#define OUT_MODE_LEN 11

/* 1536 -> "1.5 KiB"; below 1 KiB "512 B". */
const char *out_size(char buf[OUT_SIZE_LEN], uint64_t bytes);
/* Local time "2024-05-01 12:34:56". */
const char *out_time(char buf[OUT_TIME_LEN], int64_t ns);
/* ISO 8601 UTC "2024-05-01T10:34:56.123456789Z" (for JSON). */
const char *out_time_iso(char buf[OUT_TIME_LEN], int64_t ns);
/* "drwxr-xr-x" from enum mav_type and permission bits. */
const char *out_mode(char buf[OUT_MODE_LEN], int type, uint32_t mode);
/* "file", "dir", "symlink". */
const char *out_type_name(int type);
/* First 12 hex digits of an id. */
const char *out_short_id(char buf[16], const mav_id *id);

/* Flush stdout; -EIO (with a message) if it could not be written. */
int out_flush(void);

#endif
