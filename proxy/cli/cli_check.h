/* cli_check.h - `mqseal check -c FILE` (docs/OPERATIONS.md §4): the configuration and what start
 * needs, verified without starting; and `mqseal peerline -c FILE`, the node's peers-file line. */
#ifndef PX_CLI_CHECK_H
#define PX_CLI_CHECK_H

/* Prints the problems (stderr) or the effective configuration (stdout); returns the exit code:
 * NODE_EXIT_OK, or NODE_EXIT_USAGE for a configuration start would refuse. */
int cli_check(const char *path);

/* `mqseal peerline -c FILE`: prints "<node_id> <public_key>" (stdout), this node's line for the
 * other nodes' peers files. FILE must be a valid configuration. Returns the exit code: NODE_EXIT_OK,
 * NODE_EXIT_USAGE (the configuration is invalid) or NODE_EXIT_FAILURE (the key cannot be read). */
int cli_peerline(const char *path);

#endif
