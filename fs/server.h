/* server.h - the rpc server of mavfs: REPO/mavfs.sock (see mav/rpc.h).
 *
 * While the daemon holds the repository, mavctl sends state-changing
 * commands here. Each connection is served by a thread of its own (a gc
 * must not hold up a status); the caller is identified by SO_PEERCRED and
 * only root and the owner of the repository directory may change refs or
 * trees. Every ref change invalidates the kernel's view of the root, so a
 * new @vN is visible at once.
 */
#ifndef MAVFS_SERVER_H
#define MAVFS_SERVER_H

#include "daemon.h"

/* Bind the socket (a stale one is removed; a live one means another daemon
 * serves the repository: -EADDRINUSE) and start accepting. */
int mavfs_server_start(struct mavfs_server **out, struct mavfs *fs);
/* Stop accepting, wait for requests in progress, remove the socket. */
void mavfs_server_stop(struct mavfs_server *s); /* NULL is a no-op */

#endif
