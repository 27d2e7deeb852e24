/* rpc.c - framed messages between mavctl and mavfs over a Unix socket.
 *
 * A message is a list of byte strings: "MAVR" | u32 count | count x (u32
 * len, bytes), integers little-endian. The reader trusts nothing: the count
 * and every length are checked against what is left of MAV_RPC_MAX_BYTES
 * before anything is allocated, so a hostile or broken peer can make us
 * allocate at most the limit. Reads and writes loop until complete (short
 * transfers and EINTR are normal on sockets); end of stream before the first
 * byte is -ECONNRESET (the peer hung up), inside a message -EPROTO.
 *
 * Socket paths longer than sun_path (108 bytes) are reached through
 * /proc/self/fd/N/mavfs.sock with N an O_PATH descriptor of the repository.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mav/error.h"
#include "mav/rpc.h"

#define RPC_MAGIC  "MAVR"
#define RPC_HEADER 8u
#define RPC_STAGE  (64u << 10)

void mav_rpc_msg_free(struct mav_rpc_msg *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n; i++)
		free(m->s[i]);
	free(m->s);
	free(m->len);
	m->s = NULL;
	m->len = NULL;
	m->n = 0;
}

/* Capacity of the arrays of a message holding n strings: the next power
 * of two from 4 on (arrays grow by doubling, so none is stored). */
static uint32_t msg_cap(uint32_t n)
{
	uint32_t cap = 4;

	if (n == 0)
		return 0;
	while (cap < n)
		cap *= 2;
	return cap;
}

/* Make room for one more string. */
static int msg_grow(struct mav_rpc_msg *m)
{
	uint32_t cap = msg_cap(m->n);
	char **s;
	uint32_t *len;

	if (m->n < cap)
		return 0;
	cap = cap ? cap * 2 : 4;
	s = realloc(m->s, cap * sizeof(*s));
	if (!s)
		return mav_error_set(MAV_ENOMEM, "rpc: out of memory");
	m->s = s;
	len = realloc(m->len, cap * sizeof(*len));
	if (!len)
		return mav_error_set(MAV_ENOMEM, "rpc: out of memory");
	m->len = len;
	return 0;
}

int mav_rpc_msg_add(struct mav_rpc_msg *m, const char *s, size_t len)
{
	char *copy;
	int rc;

	if (len > MAV_RPC_MAX_BYTES)
		return mav_error_set(-E2BIG, "rpc: string of %zu bytes", len);
	rc = msg_grow(m);
	if (rc < 0)
		return rc;
	copy = malloc(len + 1);
	if (!copy)
		return mav_error_set(MAV_ENOMEM, "rpc: out of memory");
	if (len)
		memcpy(copy, s, len);
	copy[len] = '\0';
	m->s[m->n] = copy;
	m->len[m->n] = (uint32_t)len;
	m->n++;
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Write all of buf. send() with MSG_NOSIGNAL so a vanished peer is -EPIPE,
 * not a SIGPIPE; plain write() for descriptors that are not sockets. */
static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	int use_write = 0;

	while (len > 0) {
		ssize_t n = use_write ? write(fd, p, len)
		                      : send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK && !use_write) {
			use_write = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mav_error_set(-errno, "rpc: send: %s",
			                     strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes. *got reports how many arrived before an error. */
static int read_full(int fd, void *buf, size_t len, size_t *got)
{
	char *p = buf;
	size_t done = 0;
	int rc = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mav_error_set(-errno, "rpc: receive: %s",
			                   strerror(errno));
			goto out;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		done += (size_t)n;
	}
out:
	*got = done;
	return rc;
}

static int msg_size(uint64_t *out, const struct mav_rpc_msg *m)
{
	uint64_t total = RPC_HEADER;

	for (uint32_t i = 0; i < m->n; i++)
		total += 4 + (uint64_t)m->len[i];
	*out = total;
	if (total > MAV_RPC_MAX_BYTES)
		return mav_error_set(-E2BIG,
		                     "rpc: message of %llu bytes is "
		                     "over the limit",
		                     (unsigned long long)total);
	return 0;
}

/* Small strings are gathered in a staging buffer; large ones go straight
 * from the message to the socket. */
int mav_rpc_send(int fd, const struct mav_rpc_msg *m)
{
	uint8_t *stage = NULL;
	size_t used = 0;
	uint64_t total;
	int rc;

	rc = msg_size(&total, m);
	if (rc < 0)
		goto out;
	stage = malloc(RPC_STAGE);
	if (!stage) {
		rc = mav_error_set(MAV_ENOMEM, "rpc: out of memory");
		goto out;
	}
	memcpy(stage, RPC_MAGIC, 4);
	put_le32(stage + 4, m->n);
	used = RPC_HEADER;
	for (uint32_t i = 0; i < m->n && rc == 0; i++) {
		if (used + 4 + m->len[i] > RPC_STAGE) {
			rc = write_full(fd, stage, used);
			used = 0;
		}
		put_le32(stage + used, m->len[i]);
		used += 4;
		if (rc == 0 && used + m->len[i] > RPC_STAGE) {
			rc = write_full(fd, stage, used);
			used = 0;
			if (rc == 0)
				rc = write_full(fd, m->s[i], m->len[i]);
		} else {
			memcpy(stage + used, m->s[i], m->len[i]);
			used += m->len[i];
		}
	}
	if (rc == 0 && used > 0)
		rc = write_full(fd, stage, used);
out:
	free(stage);
	return rc;
}

/* Read one length-prefixed string, charging it against *budget. */
static int recv_string(int fd, struct mav_rpc_msg *m, uint64_t *budget)
{
	uint8_t lenbuf[4];
	uint32_t len;
	char *s = NULL;
	size_t got;
	int rc;

	rc = read_full(fd, lenbuf, 4, &got);
	if (rc < 0)
		goto out;
	len = get_le32(lenbuf);
	if (4 + (uint64_t)len > *budget) {
		rc = mav_error_set(-E2BIG,
		                   "rpc: string of %u bytes is over "
		                   "the message limit",
		                   len);
		goto out;
	}
	*budget -= 4 + (uint64_t)len;
	rc = msg_grow(m);
	if (rc < 0)
		goto out;
	s = malloc((size_t)len + 1);
	if (!s) {
		rc = mav_error_set(MAV_ENOMEM, "rpc: out of memory");
		goto out;
	}
	rc = read_full(fd, s, len, &got);
	if (rc < 0)
		goto out;
	s[len] = '\0';
	m->s[m->n] = s;
	m->len[m->n] = len;
	m->n++;
	s = NULL;
out:
	free(s);
	return rc;
}

static int recv_header(int fd, uint32_t *count)
{
	uint8_t hdr[RPC_HEADER];
	size_t got;
	int rc;

	rc = read_full(fd, hdr, sizeof(hdr), &got);
	if (rc == -ECONNRESET && got == 0)
		return mav_error_set(rc, "rpc: connection closed by peer");
	if (rc == -ECONNRESET)
		return mav_error_set(-EPROTO, "rpc: message truncated");
	if (rc < 0)
		return rc;
	if (memcmp(hdr, RPC_MAGIC, 4) != 0)
		return mav_error_set(-EPROTO, "rpc: bad message magic");
	*count = get_le32(hdr + 4);
	if ((uint64_t)*count * 4 > MAV_RPC_MAX_BYTES - RPC_HEADER)
		return mav_error_set(-E2BIG,
		                     "rpc: message of %u strings is "
		                     "over the limit",
		                     *count);
	return 0;
}

int mav_rpc_recv(int fd, struct mav_rpc_msg *out)
{
	uint64_t budget = MAV_RPC_MAX_BYTES - RPC_HEADER;
	uint32_t count = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = recv_header(fd, &count);
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < count && rc == 0; i++)
		rc = recv_string(fd, out, &budget);
	if (rc == -ECONNRESET)
		rc = mav_error_set(-EPROTO, "rpc: message truncated");
out:
	if (rc < 0)
		mav_rpc_msg_free(out);
	return rc;
}

/* Fill addr with REPO/mavfs.sock; when that is too long for sun_path, go
 * through an O_PATH descriptor of the repository (*dirfd, to be closed by
 * the caller after connect). */
static int socket_addr(struct sockaddr_un *addr, int *dirfd,
                       const char *repo_path)
{
	int n;

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	*dirfd = -1;
	n = snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/%s", repo_path,
	             MAV_RPC_SOCKET);
	if (n >= 0 && (size_t)n < sizeof(addr->sun_path))
		return 0;
	*dirfd = open(repo_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return mav_error_set(-errno, "rpc: %s: %s", repo_path,
		                     strerror(errno));
	snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/%s",
	         *dirfd, MAV_RPC_SOCKET);
	return 0;
}

int mav_rpc_connect(int *fd, const char *repo_path)
{
	struct sockaddr_un addr;
	int dirfd = -1;
	int s = -1;
	int rc;

	*fd = -1;
	rc = socket_addr(&addr, &dirfd, repo_path);
	if (rc < 0)
		goto out;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		rc = mav_error_set(-errno, "rpc: socket: %s", strerror(errno));
		goto out;
	}
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = mav_error_set(-errno, "rpc: no daemon on %s/%s: %s",
		                   repo_path, MAV_RPC_SOCKET, strerror(errno));
		goto out;
	}
	*fd = s;
	s = -1;
out:
	if (s >= 0)
		close(s);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int mav_rpc_call(struct mav_rpc_msg *reply, const char *repo_path,
                 const struct mav_rpc_msg *req)
{
	int fd = -1;
	int rc;

	memset(reply, 0, sizeof(*reply));
	rc = mav_rpc_connect(&fd, repo_path);
	if (rc < 0)
		goto out;
	rc = mav_rpc_send(fd, req);
	if (rc < 0)
		goto out;
	rc = mav_rpc_recv(fd, reply);
	if (rc == -ECONNRESET)
		rc = mav_error_set(-EPROTO, "rpc: daemon closed the connection "
		                            "without a reply");
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
