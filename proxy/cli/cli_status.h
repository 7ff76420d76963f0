/* cli_status.h - the commands that ask a running node through its admin endpoint:
 * `mqseal status -c FILE [--json]` (every peer's state, GET /peers) and
 * `mqseal health [-c FILE | URL]` (GET /readyz; exit 0 when ready, for HEALTHCHECK lines). */
#ifndef PX_CLI_STATUS_H
#define PX_CLI_STATUS_H

/* argv[0] is the command name ("status", "health"). Return the process exit code (node.h's
 * NODE_EXIT_*: 0 ok or ready, 1 unreachable or not ready, 2 usage or configuration error). */
int cli_status_main(int argc, char **argv);
int cli_health_main(int argc, char **argv);

#endif
