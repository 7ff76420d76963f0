/* aead.h - AES-256-GCM with one initialised cipher context per key and direction.
 * The key schedule runs once in aead_key_new; each message only sets its nonce
 * (nonce = iv XOR (0^32 || u64 counter, big-endian), PROTOCOL.md §5). Full 16-byte tags. */
#ifndef PX_AEAD_H
#define PX_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "px_err.h"

#define AEAD_KEY_LEN 32
#define AEAD_IV_LEN  12
#define AEAD_TAG_LEN 16

struct aead_key; /* opaque: cipher contexts plus the iv */

/* A piece of input. Messages are given as a list of pieces so that large ones are never copied
 * together; neighbouring small pieces (up to 512 bytes in all) are joined in a stack buffer,
 * erased afterwards, because each EVP call has a fixed cost of several hundred instructions. */
struct aead_part {
	const uint8_t *data;
	size_t len;
};

/* A piece of output: where a stretch of opened plaintext goes (e.g. the iovecs of space reserved
 * in an output buffer). */
struct aead_out {
	uint8_t *data;
	size_t len;
};

/* Copies key and iv; the caller erases its copies. Frees with aead_key_free (erases; accepts NULL). */
enum px_err aead_key_new(const uint8_t key[static AEAD_KEY_LEN], const uint8_t iv[static AEAD_IV_LEN],
			 struct aead_key **out);
void aead_key_free(struct aead_key *key);

/* Seals the concatenation of pt[0..npt) into ct (sum of their lengths bytes) with the given AAD
 * pieces, and writes the tag. ct may not overlap the inputs. Empty pieces may have NULL data, and
 * ct may be NULL when the plaintext is empty. Allocation-free. Errors: PX_ERR_INVAL (bad
 * arguments), PX_ERR_TOO_LARGE (lengths overflow size_t), PX_ERR_CRYPTO (ct and tag wiped). */
enum px_err aead_seal(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
		      const struct aead_part *pt, size_t npt, uint8_t *ct, uint8_t tag[static AEAD_TAG_LEN]);
/* Opens ct_len bytes into pt (ct_len bytes; may equal ct for in-place). On any failure returns
 * PX_ERR_AUTH (PX_ERR_INVAL / PX_ERR_TOO_LARGE for bad arguments) and pt is wiped: no
 * unauthenticated byte is ever released (in-place, the ciphertext is gone too). Allocation-free. */
enum px_err aead_open(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
		      const uint8_t *ct, size_t ct_len, const uint8_t tag[static AEAD_TAG_LEN], uint8_t *pt);
/* aead_open with the ciphertext as the concatenation of ct[0..nct) (e.g. the chains a message
 * arrived in) and the plaintext written across pt[0..npt) in order (e.g. reserved output space):
 * the two lists may be cut anywhere but must hold the same number of bytes (PX_ERR_INVAL
 * otherwise). The same guarantee as aead_open: on any failure every byte of every output piece is
 * wiped. Output pieces may not overlap the input, except a single piece of each that is the same
 * memory (in place). Allocation-free. */
enum px_err aead_open_parts(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
			    const struct aead_part *ct, size_t nct, const uint8_t tag[static AEAD_TAG_LEN],
			    const struct aead_out *pt, size_t npt);

#endif
