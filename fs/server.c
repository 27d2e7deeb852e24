/* server.c - accepting rpc connections on REPO/mavfs.sock.
 *
 * One accept thread polls the listening socket and a wake-up pipe; each
 * connection gets a worker thread (at most MAX_CONN at once; more are told
 * to retry). A worker reads one request with a receive timeout, so a
 * client that connects and says nothing cannot pin a thread, peeks at the
 * header first to refuse requests with absurd string counts before any
 * allocation, runs it (rpcops.c) and sends [code, message, results...].
 *
 * The socket is world-connectable (0666) so anyone who can see the mount
 * can ask for status; what may change the repository is decided per op
 * from the peer's uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mav/error.h"
#include "mav/rpc.h"
#include "rpcops.h"
#include "server.h"

#define MAX_CONN        16
#define MAX_REQ_STRINGS 16
#define RECV_TIMEOUT_S  30

struct conn {
	pthread_t thread;
	int fd;    /* guarded by s->lock */
	bool done; /* guarded by s->lock */
	bool used;
	struct mavfs_server *s;
};

struct mavfs_server {
	struct mavfs *fs;
	int lfd;
	int wake[2];
	int dirfd; /* O_PATH of the repository for long socket paths */
	struct sockaddr_un addr;
	pthread_t acceptor;
	bool started;
	pthread_mutex_t lock;
	struct conn conns[MAX_CONN];
};

static int sock_addr(struct mavfs_server *s, const char *repo)
{
	int n;

	s->addr.sun_family = AF_UNIX;
	n = snprintf(s->addr.sun_path, sizeof(s->addr.sun_path), "%s/%s", repo,
	             MAV_RPC_SOCKET);
	if (n >= 0 && (size_t)n < sizeof(s->addr.sun_path))
		return 0;
	s->dirfd = open(repo, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return -errno;
	snprintf(s->addr.sun_path, sizeof(s->addr.sun_path),
	         "/proc/self/fd/%d/%s", s->dirfd, MAV_RPC_SOCKET);
	return 0;
}

/* Bind, removing a stale socket; refuse if a daemon answers on it. */
static int bind_socket(struct mavfs_server *s)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) == 0) {
		rc = -EADDRINUSE;
		goto out;
	}
	unlink(s->addr.sun_path);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0 ||
	    chmod(s->addr.sun_path, 0666) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		goto out;
	}
	s->lfd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void send_reply(int fd, int code, const char *msg,
                       const struct mav_rpc_msg *results)
{
	struct mav_rpc_msg rep = {0};
	char num[16];
	int rc;

	snprintf(num, sizeof(num), "%d", code);
	rc = mav_rpc_msg_add(&rep, num, strlen(num));
	if (rc == 0)
		rc = mav_rpc_msg_add(&rep, msg, strlen(msg));
	for (uint32_t i = 0; rc == 0 && results && i < results->n; i++)
		rc = mav_rpc_msg_add(&rep, results->s[i], results->len[i]);
	if (rc == 0)
		mav_rpc_send(fd, &rep);
	mav_rpc_msg_free(&rep);
}

/* Refuse requests whose header announces too many strings. */
static int peek_header(int fd)
{
	uint8_t h[8];
	ssize_t n;
	uint32_t count;

	do
		n = recv(fd, h, sizeof(h), MSG_PEEK | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n < (ssize_t)sizeof(h))
		return -ECONNRESET;
	count = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
	        (uint32_t)h[7] << 24;
	return count > MAX_REQ_STRINGS ? -E2BIG : 0;
}

/* Closing with unread input resets the connection, and the client may
 * lose our reply: read (a bounded amount of) what it sent first. */
static void drain(int fd)
{
	char buf[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16; i++) {
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	}
}

static void serve(struct mavfs *fs, int fd)
{
	struct timeval tv = {.tv_sec = RECV_TIMEOUT_S};
	struct mav_rpc_msg req = {0}, results = {0};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int rc;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	rc = peek_header(fd);
	if (rc == 0)
		rc = mav_rpc_recv(fd, &req);
	if (rc == -E2BIG) {
		send_reply(fd, rc, "request too large", NULL);
		drain(fd);
		return;
	}
	if (rc < 0 || req.n == 0)
		goto out;
	mav_error_clear();
	rc = mavfs_rpc_dispatch(fs, cred.uid, cred.pid, &req, &results);
	send_reply(fd, rc, rc ? mav_error_message() : "", &results);
out:
	mav_rpc_msg_free(&req);
	mav_rpc_msg_free(&results);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct mavfs_server *s = c->s;

	mavfs_block_signals();
	serve(s->fs, c->fd);
	pthread_mutex_lock(&s->lock);
	close(c->fd);
	c->fd = -1;
	c->done = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Join finished workers; return a free slot or NULL (lock held). */
static struct conn *free_conn(struct mavfs_server *s)
{
	struct conn *found = NULL;

	for (int i = 0; i < MAX_CONN; i++) {
		struct conn *c = &s->conns[i];

		if (c->used && c->done) {
			pthread_join(c->thread, NULL);
			c->used = false;
		}
		if (!c->used && !found)
			found = c;
	}
	return found;
}

static void start_conn(struct mavfs_server *s, int fd)
{
	struct conn *c;

	pthread_mutex_lock(&s->lock);
	c = free_conn(s);
	if (c) {
		c->fd = fd;
		c->done = false;
		c->used = true;
		c->s = s;
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
			c->used = false;
			c = NULL;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!c) {
		mav_error_set(-EBUSY, "daemon busy: too many requests");
		send_reply(fd, -EBUSY, mav_error_message(), NULL);
		close(fd);
	}
}

static void *acceptor(void *arg)
{
	struct mavfs_server *s = arg;
	struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
	                      {.fd = s->wake[0], .events = POLLIN}};

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			start_conn(s, fd);
	}
	return NULL;
}

int mavfs_server_start(struct mavfs_server **out, struct mavfs *fs)
{
	struct mavfs_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->fs = fs;
	s->lfd = s->dirfd = s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	rc = sock_addr(s, fs->repo_path);
	if (rc == 0)
		rc = bind_socket(s);
	if (rc == 0 && pipe2(s->wake, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc == 0)
		rc = -pthread_create(&s->acceptor, NULL, acceptor, s);
	if (rc < 0) {
		mavfs_server_stop(s);
		return rc;
	}
	s->started = true;
	*out = s;
	return 0;
}

void mavfs_server_stop(struct mavfs_server *s)
{
	if (!s)
		return;
	if (s->started) {
		(void)!write(s->wake[1], "x", 1);
		pthread_join(s->acceptor, NULL);
	}
	/* Unblock workers waiting for a request; ops in progress finish. */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < MAX_CONN; i++) {
		if (s->conns[i].used && !s->conns[i].done)
			shutdown(s->conns[i].fd, SHUT_RD);
	}
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < MAX_CONN; i++) {
		if (s->conns[i].used)
			pthread_join(s->conns[i].thread, NULL);
	}
	if (s->lfd >= 0) {
		unlink(s->addr.sun_path);
		close(s->lfd);
	}
	for (int i = 0; i < 2; i++) {
		if (s->wake[i] >= 0)
			close(s->wake[i]);
	}
	if (s->dirfd >= 0)
		close(s->dirfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
