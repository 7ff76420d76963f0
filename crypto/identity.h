/* identity.h - long-term node identity keys (Ed25519, RFC 8032).
 * Identity keys only sign key announcements; they never do ECDH or encrypt (PROTOCOL.md §3). */
#ifndef PX_IDENTITY_H
#define PX_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "px_err.h"

#define ID_PUB_LEN  32
#define ID_SEED_LEN 32
#define ID_SIG_LEN  64
/* One-line text form of a public key: "ed25519:" + standard base64 of 32 bytes (44 chars). */
#define ID_PUB_TEXT_PREFIX "ed25519:"
#define ID_PUB_TEXT_LEN	   (8 + 44)

struct id_key; /* a private identity key; opaque */
struct id_pub; /* a peer's public identity key, ready to verify; opaque */

/* Generates a fresh key from the OpenSSL DRBG. *out is the caller's, freed with id_key_free. */
enum px_err id_key_generate(struct id_key **out);
/* Builds a key from a 32-byte RFC 8032 seed (tests and golden vectors). */
enum px_err id_key_from_seed(const uint8_t seed[static ID_SEED_LEN], struct id_key **out);
/* Frees and erases; accepts NULL. */
void id_key_free(struct id_key *key);

/* Private key file contents: PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), readable by `openssl pkey`.
 * id_key_to_pem: *out is a NUL-terminated malloc'd string owned by the caller, who must erase it
 * (OPENSSL_cleanse over *out_len bytes) and free() it.
 * id_key_from_pem: rejects anything that is not an Ed25519 private key (PX_ERR_MALFORMED), including
 * encrypted keys (no passphrase prompt), and input over 4096 bytes unread (PX_ERR_TOO_LARGE). */
enum px_err id_key_to_pem(const struct id_key *key, char **out, size_t *out_len);
enum px_err id_key_from_pem(const char *pem, size_t len, struct id_key **out);

/* The raw 32-byte public key. */
enum px_err id_key_public(const struct id_key *key, uint8_t pub[static ID_PUB_LEN]);
/* Signs msg (pure Ed25519, no prehash). */
enum px_err id_key_sign(const struct id_key *key, const uint8_t *msg, size_t len,
			uint8_t sig[static ID_SIG_LEN]);

/* Public keys. id_pub_new copies raw; freed with id_pub_free (accepts NULL). */
enum px_err id_pub_new(const uint8_t raw[static ID_PUB_LEN], struct id_pub **out);
void id_pub_free(struct id_pub *pub);
const uint8_t *id_pub_raw(const struct id_pub *pub); /* ID_PUB_LEN bytes, owned by pub */
/* PX_OK if sig is a valid signature of msg; PX_ERR_AUTH otherwise. */
enum px_err id_pub_verify(const struct id_pub *pub, const uint8_t *msg, size_t len,
			  const uint8_t sig[static ID_SIG_LEN]);

/* Text form. id_pub_encode writes ID_PUB_TEXT_LEN chars plus NUL into out.
 * id_pub_decode accepts exactly that form (surrounding whitespace is not trimmed), and only the
 * canonical base64 (unused bits zero), so one key has one text form; else PX_ERR_MALFORMED. */
void id_pub_encode(const uint8_t raw[static ID_PUB_LEN], char out[static ID_PUB_TEXT_LEN + 1]);
enum px_err id_pub_decode(const char *text, uint8_t raw[static ID_PUB_LEN]);

#endif
