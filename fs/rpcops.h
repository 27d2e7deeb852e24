/* rpcops.h - the operations mavctl asks a running mavfs to perform.
 *
 * Each op calls the store on the daemon's open repository and trees, so
 * writers are serialised with the FUSE handlers (a snapshot goes through
 * the branch's open working tree), then invalidates whatever the kernel
 * cached that the op changed. See mav/rpc.h for the ops and replies.
 */
#ifndef MAVFS_RPCOPS_H
#define MAVFS_RPCOPS_H

#include <sys/types.h>

#include "daemon.h"
#include "mav/rpc.h"

/* Run req for the peer uid/pid; results gets the op's result strings.
 * Returns the op's code (0 or a negative mav/errno code, with the error
 * message set on this thread). */
int mavfs_rpc_dispatch(struct mavfs *fs, uid_t uid, pid_t pid,
                       const struct mav_rpc_msg *req,
                       struct mav_rpc_msg *results);

#endif
