/* rpc.h - mavctl <-> mavfs over a Unix socket in the repository.
 *
 * While mavfs holds a repository (RocksDB allows one writer), mavctl sends
 * each state-changing command to the daemon over REPO/mavfs.sock. A message
 * is a list of byte strings:
 *   u32 magic "MAVR" | u32 count | count x (u32 len, bytes)
 * A request is [op, args...]; ops: "snapshot BRANCH MESSAGE AUTHOR
 * [allow-empty]", "branch-create NAME REV", "branch-delete NAME",
 * "tag-create NAME REV", "tag-delete NAME", "reset BRANCH REV" (the working
 * tree and the branch move to REV), "status BRANCH", "gc", "fsck",
 * "mountpoint", "meta-set BRANCH PATH KEY VALUE", "meta-del BRANCH PATH KEY".
 * A reply is [code, message, results...]: code is the decimal int the
 * operation returned (0 or a negative mav/errno code), message the error
 * line, results op-specific strings (snapshot: version, commit hex; status:
 * one "K path" per change; fsck: one problem per string; gc: chunks
 * deleted, objects deleted, bytes freed, in decimal). The server learns the
 * caller from SO_PEERCRED. Messages over 64 MiB are refused (-E2BIG).
 */
#ifndef MAV_RPC_H
#define MAV_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAV_RPC_SOCKET    "mavfs.sock"
#define MAV_RPC_MAX_BYTES (64u << 20)

struct mav_rpc_msg {
	uint32_t n;
	char **s;      /* n NUL-terminated strings (may hold embedded bytes) */
	uint32_t *len; /* their lengths */
};

void mav_rpc_msg_free(struct mav_rpc_msg *m); /* NULL is a no-op */
/* Append a copy of s[0..len). */
int mav_rpc_msg_add(struct mav_rpc_msg *m, const char *s, size_t len);
int mav_rpc_send(int fd, const struct mav_rpc_msg *m);
int mav_rpc_recv(int fd, struct mav_rpc_msg *out); /* -ECONNRESET on EOF */

/* Client: connect to REPO/mavfs.sock. -ENOENT/-ECONNREFUSED when no daemon
 * listens (the caller then opens the store itself). */
int mav_rpc_connect(int *fd, const char *repo_path);
/* Send req, wait for the reply. */
int mav_rpc_call(struct mav_rpc_msg *reply, const char *repo_path,
                 const struct mav_rpc_msg *req);

#endif
