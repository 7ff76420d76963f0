/* keyfile.h - the identity key file on disk: created with O_EXCL and mode 0600, read back with a
 * permission check (a key readable by others is refused). */
#ifndef PX_KEYFILE_H
#define PX_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "identity.h"
#include "px_err.h"

/* Generates a key and writes it to path (which must not exist). PX_ERR_EXISTS if it does. */
enum px_err keyfile_create(const char *path, struct id_key **out, char *err, size_t errlen);
/* Generates a key and writes it (PEM) to fd, which stays open (`mqseal keygen -`: standard output). */
enum px_err keyfile_create_fd(int fd, struct id_key **out, char *err, size_t errlen);
/* Reads an identity key from fd (a pipe: `mqseal pubkey -`); no permission check. name is for
 * messages. */
enum px_err keyfile_load_fd(int fd, const char *name, struct id_key **out, char *err, size_t errlen);
/* Reads an identity key. strict_mode: refuse a file with any group/other permission bit. */
enum px_err keyfile_load(const char *path, bool strict_mode, struct id_key **out, char *err, size_t errlen);
/* Writes the one-line public key text of key into out (ID_PUB_TEXT_LEN + 1 bytes). */
enum px_err keyfile_public_text(const struct id_key *key, char out[static ID_PUB_TEXT_LEN + 1]);

#endif
