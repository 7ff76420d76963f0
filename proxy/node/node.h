/* node.h - one running mqseal node: configuration, event loop, listener, sessions, key exchange,
 * metrics, signals. main.c parses the command line and calls node_main. */
#ifndef PX_NODE_H
#define PX_NODE_H

/* Exit codes (docs/mqseal.1): */
#define NODE_EXIT_OK 0
#define NODE_EXIT_FAILURE 1 /* runtime failure */
#define NODE_EXIT_USAGE 2   /* usage or configuration error */

/* Runs a node with the configuration at conf_path until SIGTERM/SIGINT. verbosity: added to the
 * configured log level (-v: +1, -q: -1). Returns an exit code. */
int node_main(const char *conf_path, int verbosity);

#endif
