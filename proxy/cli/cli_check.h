/* cli_check.h - `mqseal check -c FILE` (docs/OPERATIONS.md §4): the configuration and what start
 * needs, verified without starting. */
#ifndef PX_CLI_CHECK_H
#define PX_CLI_CHECK_H

/* Prints the problems (stderr) or the effective configuration (stdout); returns the exit code:
 * NODE_EXIT_OK, or NODE_EXIT_USAGE for a configuration start would refuse. */
int cli_check(const char *path);

#endif
