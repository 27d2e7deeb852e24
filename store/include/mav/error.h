/* error.h - error codes and the thread-local error message.
 *
 * Every function of the library returns an int: 0 (or a non-negative count)
 * on success, -errno for a system failure, or one of the MAV_E* codes below
 * for failures of our own. The function where a failure starts records a
 * one-line message with mav_error_set(); callers propagate the code and never
 * overwrite the message. Only the FUSE glue maps codes to errno and only
 * mavctl maps them to exit codes and human text.
 */
#ifndef MAV_ERROR_H
#define MAV_ERROR_H

enum {
	MAV_ECORRUPT =
	    -1000, /* stored bytes failed a check (magic, bounds, hash) */
	MAV_ENOTFOUND = -1001, /* no such object, ref, revision or key */
	MAV_EEXIST = -1002,   /* name already taken (branch, tag, repository) */
	MAV_EVERSION = -1003, /* stored format version newer than this build */
	MAV_ENOTREPO = -1004, /* path is not a mav repository */
	MAV_ECONFLICT = -1005, /* compare-and-swap of a ref lost a race */
	MAV_EBADREV =
	    -1006, /* revision string does not parse or is ambiguous */
	MAV_ELOCKED = -1007, /* repository is held by another writer */
	MAV_EINVAL = -1008,  /* invalid argument: bad name, option, range */
	MAV_ENOMEM = -1009,  /* allocation failed */
};

/* Record a formatted one-line message for the current thread; returns code. */
int mav_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message set on this thread ("" if none). Borrowed, valid until the
 * next mav_error_set() on this thread. */
const char *mav_error_message(void);

/* Clear the message of this thread. */
void mav_error_clear(void);

/* A short stable name for a code: "corrupt", "not found", or strerror text. */
const char *mav_error_name(int code);

#endif
