/* kex.h - ephemeral X25519 key agreement (RFC 7748), one key pair per epoch. */
#ifndef PX_KEX_H
#define PX_KEX_H

#include <stdint.h>

#include "px_err.h"

#define KEX_PUB_LEN    32
#define KEX_PRIV_LEN   32
#define KEX_SHARED_LEN 32

struct kex_key; /* an X25519 private key; opaque */

enum px_err kex_key_generate(struct kex_key **out);
/* From a fixed private scalar (tests and golden vectors only). */
enum px_err kex_key_from_private(const uint8_t priv[static KEX_PRIV_LEN], struct kex_key **out);
/* Frees and erases; accepts NULL. */
void kex_key_free(struct kex_key *key);
enum px_err kex_key_public(const struct kex_key *key, uint8_t pub[static KEX_PUB_LEN]);
/* X25519(key, peer_pub). Returns PX_ERR_WEAK_KEY when the result is all-zero (a small-order peer
 * point, RFC 7748 §6.1); shared is then zeroed. The caller erases shared after use. */
enum px_err kex_derive(const struct kex_key *key, const uint8_t peer_pub[static KEX_PUB_LEN],
		       uint8_t shared[static KEX_SHARED_LEN]);

#endif
