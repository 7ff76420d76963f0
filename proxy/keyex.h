/* keyex.h - key exchange (PROTOCOL.md §7-§9): the node's identity, its pinned peers, its epochs
 * and their rotation, announcements and confirmations over the control connection, and the key
 * ring the data path seals and opens with. */
#ifndef PX_KEYEX_H
#define PX_KEYEX_H

#include <stddef.h>

struct keyex;

/* 1 when the control connection is up and every configured peer is keyed; otherwise 0 and a
 * short reason. */
int keyex_healthy(const struct keyex *kx, char *reason, size_t len);

#endif
