/* id.h - content identities: BLAKE2b-256 of the bytes (libsodium).
 *
 * Ids name chunks (plain bytes), blobs, trees and commits (their canonical
 * encodings). XXH3 is never an identity; it is used only for speed.
 */
#ifndef MAV_ID_H
#define MAV_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAV_ID_LEN     32
#define MAV_ID_HEX_LEN 64

typedef struct mav_id {
	uint8_t b[MAV_ID_LEN];
} mav_id;

/* out = BLAKE2b-256(data[0..len)). */
void mav_id_hash(mav_id *out, const void *data, size_t len);

/* Lower-case hex, NUL-terminated: out must hold MAV_ID_HEX_LEN + 1 bytes. */
void mav_id_hex(char *out, const mav_id *id);

/* Parse 1..64 hex digits (an id or a prefix of one) into the leading bytes
 * of out, the rest zero; *ndigits = how many. MAV_EINVAL otherwise. */
int mav_id_from_hex(mav_id *out, size_t *ndigits, const char *hex);

int mav_id_cmp(const mav_id *a, const mav_id *b);
bool mav_id_is_zero(const mav_id *id);

/* 64-bit hash of an id for hash tables (the id is already uniform). */
uint64_t mav_id_hash64(const mav_id *id);

#endif
