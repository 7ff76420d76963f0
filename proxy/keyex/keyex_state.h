/* keyex_state.h - the state file on disk (the adapter's half of PROTOCOL.md §9.5; its text is
 * made and read by the core, kx_core_state.c). */
#ifndef PX_KEYEX_STATE_H
#define PX_KEYEX_STATE_H

#include <stddef.h>

/* Creates dir if needed and reads path whole into *text (malloc'd, NUL-terminated; NULL when the
 * file does not exist). 0, or -1 when it cannot be read. */
int keyex_state_read(const char *dir, const char *path, char **text);
/* Replaces path with text atomically (temporary file, fsync, rename, fsync of dir). 0 or -1. */
int keyex_state_write(const char *dir, const char *path, const char *text, size_t len);

#endif
