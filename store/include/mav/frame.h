/* frame.h - the stored form of one chunk.
 *
 * Layout (little-endian):
 *   u32 magic "MAVF" | u8 version (1) | u8 codec (0 raw, 1 zstd) | u16 zero
 *   u32 raw_len | u32 payload_len | payload | u64 XXH3-64(payload)
 * The checksum is verified before decompression so bit rot is reported as
 * MAV_ECORRUPT and never reaches zstd. Whether to compress is decided
 * cheaply: a small sample is compressed first, and if it does not shrink by
 * a useful margin the chunk is stored raw (photos, video, weights).
 */
#ifndef MAV_FRAME_H
#define MAV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MAV_FRAME_OVERHEAD 24 /* header 16 + checksum 8 */

enum { MAV_CODEC_RAW = 0, MAV_CODEC_ZSTD = 1 };

/* Encode data into a malloc'd frame (*out, caller frees). level is the zstd
 * level (1..22); level 0 forces raw. */
int mav_frame_encode(uint8_t **out, size_t *outlen, const void *data,
                     size_t len, int level);
/* The same into dst, which has room for MAV_FRAME_OVERHEAD + len bytes;
 * *outlen is the frame's length. */
int mav_frame_encode_into(uint8_t *dst, size_t *outlen, const void *data,
                          size_t len, int level);

/* Read the header only: the plain length and codec. MAV_ECORRUPT or
 * MAV_EVERSION on a bad header. */
int mav_frame_info(uint32_t *raw_len, int *codec, const void *frame,
                   size_t flen);

/* Verify and decode into dst (capacity cap >= raw_len). *outlen = raw_len.
 * MAV_ECORRUPT on any mismatch, MAV_EVERSION on an unknown version. */
int mav_frame_decode(void *dst, size_t cap, size_t *outlen, const void *frame,
                     size_t flen);

#endif
