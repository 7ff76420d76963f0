/* cli_rights.h - the read and write rights of `groups` per group and per node, as `mqseal check`
 * prints them (docs/OPERATIONS.md, Read groups). */
#ifndef PX_CLI_RIGHTS_H
#define PX_CLI_RIGHTS_H

#include <stdio.h>

struct px_conf;

/* Writes the rights as libconfig comment lines ("# ...") to f. 0, or -1 when memory ran out
 * (part may have been written). */
int cli_rights_print(FILE *f, const struct px_conf *conf);

#endif
