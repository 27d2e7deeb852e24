/* error.c - the thread-local error slot.
 *
 * One fixed buffer per thread; setting it formats in place. This is the only
 * mutable global state of the library besides what callers own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mav/error.h"

static _Thread_local char error_msg[512];

int mav_error_set(int code, const char *fmt, ...)
{
	char tmp[sizeof(error_msg)];
	va_list ap;

	/* Through a copy: callers may pass mav_error_message() to prefix it. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(error_msg, tmp, sizeof(tmp));
	return code;
}

const char *mav_error_message(void)
{
	return error_msg;
}

void mav_error_clear(void)
{
	error_msg[0] = '\0';
}

const char *mav_error_name(int code)
{
	switch (code) {
	case MAV_ECORRUPT:
		return "corrupt data";
	case MAV_ENOTFOUND:
		return "not found";
	case MAV_EEXIST:
		return "already exists";
	case MAV_EVERSION:
		return "unsupported format version";
	case MAV_ENOTREPO:
		return "not a mav repository";
	case MAV_ECONFLICT:
		return "concurrent update";
	case MAV_EBADREV:
		return "bad revision";
	case MAV_ELOCKED:
		return "repository locked";
	case MAV_EINVAL:
		return "invalid argument";
	case MAV_ENOMEM:
		return "out of memory";
	default:
		return code < 0 && code > -4096 ? strerror(-code) : "error";
	}
}
