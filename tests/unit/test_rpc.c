/* test_rpc.c - rpc framing over socketpairs: round trips, empty and binary
 * strings, the size limit on both ends, truncated and forged streams, and
 * connecting to a socket in a directory whose path is too long for sun_path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mav/error.h"
#include "mav/rpc.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void add(struct mav_rpc_msg *m, const char *s, size_t len)
{
	assert_int_equal(mav_rpc_msg_add(m, s, len), 0);
}

struct sender {
	int fd;
	const struct mav_rpc_msg *m;
	int rc;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;

	s->rc = mav_rpc_send(s->fd, s->m);
	return NULL;
}

/* Send m on one end from a thread (large messages exceed the socket buffer)
 * and receive it on the other. */
static int send_recv(const struct mav_rpc_msg *m, struct mav_rpc_msg *out)
{
	struct sender s;
	pthread_t t;
	int sv[2];
	int rc;

	pair(sv);
	s.fd = sv[0];
	s.m = m;
	s.rc = 1;
	assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
	rc = mav_rpc_recv(sv[1], out);
	pthread_join(t, NULL);
	assert_int_equal(s.rc, 0);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void assert_same(const struct mav_rpc_msg *a,
                        const struct mav_rpc_msg *b)
{
	assert_int_equal(a->n, b->n);
	for (uint32_t i = 0; i < a->n; i++) {
		assert_int_equal(a->len[i], b->len[i]);
		assert_memory_equal(a->s[i], b->s[i], a->len[i]);
		assert_int_equal(b->s[i][b->len[i]], '\0');
	}
}

static void test_round_trip(void **state)
{
	struct mav_rpc_msg m = {0}, r = {0};

	(void)state;
	add(&m, "snapshot", 8);
	add(&m, "main", 4);
	add(&m, "rock v2", 7);
	add(&m, "alice", 5);
	assert_int_equal(send_recv(&m, &r), 0);
	assert_same(&m, &r);
	assert_string_equal(r.s[0], "snapshot");
	mav_rpc_msg_free(&m);
	mav_rpc_msg_free(&r);
	assert_int_equal(r.n, 0);
	assert_null(r.s);
	mav_rpc_msg_free(NULL);
}

static void test_empty(void **state)
{
	struct mav_rpc_msg m = {0}, r = {0};

	(void)state;
	/* A message with no strings, then one of empty strings. */
	assert_int_equal(send_recv(&m, &r), 0);
	assert_int_equal(r.n, 0);
	mav_rpc_msg_free(&r);
	add(&m, "", 0);
	add(&m, "x", 1);
	add(&m, "", 0);
	assert_int_equal(send_recv(&m, &r), 0);
	assert_same(&m, &r);
	assert_string_equal(r.s[0], "");
	mav_rpc_msg_free(&m);
	mav_rpc_msg_free(&r);
}

static void test_binary_and_many(void **state)
{
	struct mav_rpc_msg m = {0}, r = {0};
	char bytes[256];
	char *big = malloc(3u << 20);

	(void)state;
	assert_non_null(big);
	for (int i = 0; i < 256; i++)
		bytes[i] = (char)i;
	for (size_t i = 0; i < (3u << 20); i++)
		big[i] = (char)(i * 7 + 3);
	add(&m, bytes, sizeof(bytes));
	/* Many small strings cross the staging buffer many times. */
	for (int i = 0; i < 5000; i++)
		add(&m, bytes + (i % 200), (size_t)(i % 57));
	add(&m, big, 3u << 20);
	add(&m, bytes, 1);
	assert_int_equal(send_recv(&m, &r), 0);
	assert_same(&m, &r);
	assert_int_equal(r.len[0], 256);
	assert_int_equal(r.s[0][0], 0);
	mav_rpc_msg_free(&m);
	mav_rpc_msg_free(&r);
	free(big);
}

static void test_oversize_refused_by_sender(void **state)
{
	struct mav_rpc_msg m = {0};
	size_t half = MAV_RPC_MAX_BYTES / 2;
	char *big = calloc(1, half);
	int sv[2];

	(void)state;
	assert_non_null(big);
	pair(sv);
	add(&m, big, half);
	add(&m, big, half); /* with headers: over the limit */
	assert_int_equal(mav_rpc_send(sv[0], &m), -E2BIG);
	assert_non_null(strstr(mav_error_message(), "limit"));
	/* Nothing was written: the peer sees a clean end of stream. */
	close(sv[0]);
	{
		struct mav_rpc_msg r = {0};

		assert_int_equal(mav_rpc_recv(sv[1], &r), -ECONNRESET);
		assert_int_equal(r.n, 0);
	}
	close(sv[1]);
	mav_rpc_msg_free(&m);
	free(big);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Write raw bytes to one end, close it, and receive on the other. */
static int recv_raw(const void *bytes, size_t len, struct mav_rpc_msg *r)
{
	int sv[2];
	int rc;

	pair(sv);
	assert_int_equal(write(sv[0], bytes, len), (ssize_t)len);
	close(sv[0]);
	rc = mav_rpc_recv(sv[1], r);
	close(sv[1]);
	return rc;
}

static void test_oversize_refused_by_receiver(void **state)
{
	struct mav_rpc_msg r = {0};
	uint8_t b[16];

	(void)state;
	/* One string announcing more than the limit: refused before any
	 * allocation or read of its bytes. */
	memcpy(b, "MAVR", 4);
	put32(b + 4, 1);
	put32(b + 8, MAV_RPC_MAX_BYTES);
	assert_int_equal(recv_raw(b, 12, &r), -E2BIG);
	assert_int_equal(r.n, 0);
	assert_null(r.s);
	/* A count that cannot fit in the limit. */
	put32(b + 4, MAV_RPC_MAX_BYTES / 2);
	assert_int_equal(recv_raw(b, 8, &r), -E2BIG);
	/* Two strings each under the limit but together over it. */
	put32(b + 4, 2);
	put32(b + 8, MAV_RPC_MAX_BYTES / 2);
	{
		size_t len = 12 + MAV_RPC_MAX_BYTES / 2 + 4;
		uint8_t *buf = calloc(1, len);
		pid_t pid;
		int sv[2];

		assert_non_null(buf);
		memcpy(buf, b, 12);
		put32(buf + 12 + MAV_RPC_MAX_BYTES / 2, MAV_RPC_MAX_BYTES / 2);
		pair(sv);
		/* The receiver must stop after the second length: write from
		 * a child so the buffer can exceed the socket's. */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			ssize_t n = 0;

			close(sv[1]);
			while ((size_t)n < len) {
				ssize_t w = write(sv[0], buf + n, len - n);

				if (w <= 0)
					_exit(0);
				n += w;
			}
			_exit(0);
		}
		close(sv[0]);
		assert_int_equal(mav_rpc_recv(sv[1], &r), -E2BIG);
		assert_int_equal(r.n, 0);
		close(sv[1]);
		waitpid(pid, NULL, 0);
		free(buf);
	}
}

static void test_truncated_and_forged(void **state)
{
	struct mav_rpc_msg m = {0}, r = {0};
	uint8_t b[64];
	size_t full;
	int sv[2];

	(void)state;
	/* Encode a real message, then cut it at every length. */
	add(&m, "tag-create", 10);
	add(&m, "q4", 2);
	pair(sv);
	assert_int_equal(mav_rpc_send(sv[0], &m), 0);
	close(sv[0]);
	full = (size_t)read(sv[1], b, sizeof(b));
	close(sv[1]);
	assert_int_equal(full, 8 + 4 + 10 + 4 + 2);
	assert_int_equal(recv_raw(b, 0, &r), -ECONNRESET);
	for (size_t cut = 1; cut < full; cut++) {
		assert_int_equal(recv_raw(b, cut, &r), -EPROTO);
		assert_int_equal(r.n, 0);
		assert_null(r.s);
	}
	assert_int_equal(recv_raw(b, full, &r), 0);
	assert_same(&m, &r);
	mav_rpc_msg_free(&r);
	/* Bad magic. */
	b[0] = 'X';
	assert_int_equal(recv_raw(b, full, &r), -EPROTO);
	mav_rpc_msg_free(&m);
}

static void test_two_messages_on_one_stream(void **state)
{
	struct mav_rpc_msg a = {0}, b = {0}, r = {0};
	int sv[2];

	(void)state;
	add(&a, "status", 6);
	add(&a, "main", 4);
	add(&b, "0", 1);
	pair(sv);
	assert_int_equal(mav_rpc_send(sv[0], &a), 0);
	assert_int_equal(mav_rpc_send(sv[0], &b), 0);
	assert_int_equal(mav_rpc_recv(sv[1], &r), 0);
	assert_same(&a, &r);
	mav_rpc_msg_free(&r);
	assert_int_equal(mav_rpc_recv(sv[1], &r), 0);
	assert_same(&b, &r);
	mav_rpc_msg_free(&r);
	close(sv[0]);
	assert_int_equal(mav_rpc_recv(sv[1], &r), -ECONNRESET);
	close(sv[1]);
	mav_rpc_msg_free(&a);
	mav_rpc_msg_free(&b);
}

static void test_send_to_closed_peer(void **state)
{
	struct mav_rpc_msg m = {0};
	int sv[2];

	(void)state;
	add(&m, "gc", 2);
	pair(sv);
	close(sv[1]);
	/* -EPIPE, and no SIGPIPE kills the test. */
	assert_int_equal(mav_rpc_send(sv[0], &m), -EPIPE);
	close(sv[0]);
	mav_rpc_msg_free(&m);
}

struct server {
	int lfd;
};

/* Answer one request with ["0", "", "pong", <request op>]. */
static void *serve_one(void *arg)
{
	struct server *s = arg;
	struct mav_rpc_msg req = {0}, rep = {0};
	int c = accept(s->lfd, NULL, NULL);

	if (c < 0)
		return NULL;
	if (mav_rpc_recv(c, &req) == 0 && req.n > 0) {
		mav_rpc_msg_add(&rep, "0", 1);
		mav_rpc_msg_add(&rep, "", 0);
		mav_rpc_msg_add(&rep, "pong", 4);
		mav_rpc_msg_add(&rep, req.s[0], req.len[0]);
		mav_rpc_send(c, &rep);
	}
	mav_rpc_msg_free(&req);
	mav_rpc_msg_free(&rep);
	close(c);
	return NULL;
}

/* A repository directory whose socket path is longer than sun_path. */
static char *long_dir(void)
{
	char *dir = strdup("/tmp/mav-test-rpc-XXXXXX");
	size_t cap = 400;
	char *path = malloc(cap);

	assert_non_null(mkdtemp(dir));
	snprintf(path, cap, "%s/%0150d", dir, 7);
	assert_int_equal(mkdir(path, 0700), 0);
	free(dir);
	return path;
}

static void test_connect_and_call(void **state)
{
	struct mav_rpc_msg req = {0}, rep = {0};
	char *dir = long_dir();
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct server s;
	pthread_t t;
	char cwd[4096];
	int fd;

	(void)state;
	/* No daemon yet: -ENOENT, so mavctl opens the store itself. */
	assert_int_equal(mav_rpc_connect(&fd, dir), -ENOENT);
	assert_int_equal(fd, -1);
	/* Bind with a relative path from inside the directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	strcpy(addr.sun_path, MAV_RPC_SOCKET);
	s.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&addr, sizeof(addr)),
	                 0);
	assert_int_equal(listen(s.lfd, 4), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(pthread_create(&t, NULL, serve_one, &s), 0);
	add(&req, "mountpoint", 10);
	assert_int_equal(mav_rpc_call(&rep, dir, &req), 0);
	pthread_join(t, NULL);
	assert_int_equal(rep.n, 4);
	assert_string_equal(rep.s[0], "0");
	assert_string_equal(rep.s[2], "pong");
	assert_string_equal(rep.s[3], "mountpoint");
	mav_rpc_msg_free(&rep);
	/* The listener is gone: a stale socket file refuses connections. */
	close(s.lfd);
	assert_int_equal(mav_rpc_call(&rep, dir, &req), -ECONNREFUSED);
	assert_int_equal(rep.n, 0);
	mav_rpc_msg_free(&req);
	{
		char sock[600];

		snprintf(sock, sizeof(sock), "%s/%s", dir, MAV_RPC_SOCKET);
		unlink(sock);
		rmdir(dir);
		*strrchr(dir, '/') = '\0';
		rmdir(dir);
	}
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_binary_and_many),
	    cmocka_unit_test(test_oversize_refused_by_sender),
	    cmocka_unit_test(test_oversize_refused_by_receiver),
	    cmocka_unit_test(test_truncated_and_forged),
	    cmocka_unit_test(test_two_messages_on_one_stream),
	    cmocka_unit_test(test_send_to_closed_peer),
	    cmocka_unit_test(test_connect_and_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
