/* out.c - JSON writer and human formatting for mavctl.
 *
 * The escaper decodes UTF-8 strictly (no overlongs, no surrogates, nothing
 * above U+10FFFF) so that what it copies through is valid UTF-8; anything
 * else is emitted byte by byte as \u00XX (see out.h for why and the cost).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mav/error.h>
#include <mav/object.h>

#include "out.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void json_escape(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			i++;
		} else if (c == '\n' || c == '\t' || c == '\r' || c == '\b' ||
		           c == '\f') {
			fputc('\\', f);
			fputc(c == '\n'   ? 'n'
			      : c == '\t' ? 't'
			      : c == '\r' ? 'r'
			      : c == '\b' ? 'b'
			                  : 'f',
			      f);
			i++;
		} else if (c < 0x20 || c == 0x7F) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else if ((k = utf8_len(s + i, n - i)) == 0) {
			fprintf(f, "\\u%04x", c); /* invalid byte: lossy */
			i++;
		} else {
			fwrite(s + i, 1, k, f);
			i += k;
		}
	}
}

void json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->comma = false;
}

static void sep(struct json *j)
{
	if (j->comma)
		fputc(',', j->f);
}

static void open_(struct json *j, char ch)
{
	sep(j);
	fputc(ch, j->f);
	j->comma = false;
}

static void close_(struct json *j, char ch)
{
	fputc(ch, j->f);
	j->comma = true;
}

void json_obj(struct json *j)
{
	open_(j, '{');
}

void json_end_obj(struct json *j)
{
	close_(j, '}');
}

void json_arr(struct json *j)
{
	open_(j, '[');
}

void json_end_arr(struct json *j)
{
	close_(j, ']');
}

void json_key(struct json *j, const char *key)
{
	sep(j);
	fputc('"', j->f);
	json_escape(j->f, key, strlen(key));
	fputs("\":", j->f);
	j->comma = false;
}

void json_strn(struct json *j, const char *s, size_t n)
{
	sep(j);
	fputc('"', j->f);
	json_escape(j->f, s, n);
	fputc('"', j->f);
	j->comma = true;
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRIu64, v);
	j->comma = true;
}

void json_i64(struct json *j, int64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRId64, v);
	j->comma = true;
}

void json_dbl(struct json *j, double v)
{
	sep(j);
	if (v != v || v > 1e300 || v < -1e300)
		fputs("null", j->f); /* JSON has no NaN or infinity */
	else
		fprintf(j->f, "%.6g", v);
	j->comma = true;
}

void json_bool(struct json *j, bool v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
	j->comma = true;
}

void json_null(struct json *j)
{
	sep(j);
	fputs("null", j->f);
	j->comma = true;
}

void json_id(struct json *j, const mav_id *id)
{
	char hex[MAV_ID_HEX_LEN + 1];

	mav_id_hex(hex, id);
	json_str(j, hex);
}

int json_done(struct json *j)
{
	fputc('\n', j->f);
	return out_flush();
}

void json_kstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_ku64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_u64(j, v);
}

void json_ki64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_i64(j, v);
}

void json_kid(struct json *j, const char *key, const mav_id *id)
{
	json_key(j, key);
	json_id(j, id);
}

/* ---- human formatting ---- */

const char *out_size(char buf[OUT_SIZE_LEN], uint64_t bytes)
{
	static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, OUT_SIZE_LEN, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, OUT_SIZE_LEN, v < 10 ? "%.1f %s" : "%.0f %s", v,
	         units[u]);
	return buf;
}

const char *out_time(char buf[OUT_TIME_LEN], int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, OUT_TIME_LEN, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, OUT_TIME_LEN, "@%" PRId64, (int64_t)t);
	return buf;
}

const char *out_time_iso(char buf[OUT_TIME_LEN], int64_t ns)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	size_t n;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm) ||
	    !(n = strftime(buf, OUT_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(buf, OUT_TIME_LEN, "@%" PRId64, sec);
		return buf;
	}
	snprintf(buf + n, OUT_TIME_LEN - n, ".%09" PRId64 "Z", frac);
	return buf;
}

const char *out_mode(char buf[OUT_MODE_LEN], int type, uint32_t mode)
{
	static const char rwx[] = "rwxrwxrwx";

	buf[0] = type == MAV_T_DIR       ? 'd'
	         : type == MAV_T_SYMLINK ? 'l'
	         : type == MAV_T_FIFO    ? 'p'
	         : type == MAV_T_SOCK    ? 's'
	                                 : '-';
	for (int i = 0; i < 9; i++)
		buf[1 + i] = mode & (0400u >> i) ? rwx[i] : '-';
	if (mode & 04000)
		buf[3] = buf[3] == 'x' ? 's' : 'S';
	if (mode & 02000)
		buf[6] = buf[6] == 'x' ? 's' : 'S';
	if (mode & 01000)
		buf[9] = buf[9] == 'x' ? 't' : 'T';
	buf[10] = '\0';
	return buf;
}

const char *out_type_name(int type)
{
	switch (type) {
	case MAV_T_FILE:
		return "file";
	case MAV_T_DIR:
		return "dir";
	case MAV_T_SYMLINK:
		return "symlink";
	case MAV_T_FIFO:
		return "fifo";
	case MAV_T_SOCK:
		return "socket";
	default:
		return "unknown";
	}
}

const char *out_short_id(char buf[16], const mav_id *id)
{
	char hex[MAV_ID_HEX_LEN + 1];

	mav_id_hex(hex, id);
	memcpy(buf, hex, 12);
	buf[12] = '\0';
	return buf;
}

int out_flush(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return mav_error_set(-EIO,
		                     "cannot write to standard output: %s",
		                     strerror(errno ? errno : EIO));
	return 0;
}
