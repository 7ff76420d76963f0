/* kdf.h - HKDF-SHA256 (RFC 5869) and the labelled expand of PROTOCOL.md §4. */
#ifndef PX_KDF_H
#define PX_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "px_err.h"

#define KDF_PRK_LEN	 32
#define KDF_LABEL_PREFIX "mqseal v1 "
#define KDF_MAX_INFO	 1024 /* OpenSSL 3.0's HKDF info limit */

/* PRK = HMAC-SHA256(salt, ikm). salt may be NULL/0 (RFC 5869 §2.2: HashLen zeros); ikm must not be
 * empty (PX_ERR_INVAL). */
enum px_err kdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
			uint8_t prk[static KDF_PRK_LEN]);
/* out_len from 1 to 255*32 (RFC 5869 §2.3), info_len up to KDF_MAX_INFO; else PX_ERR_INVAL. */
enum px_err kdf_expand(const uint8_t prk[static KDF_PRK_LEN], const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len);
/* HKDF-Expand(prk, u16 out_len || u8 len || "mqseal v1 " label || u16 len || ctx, out_len).
 * PX_ERR_INVAL if the info would exceed KDF_MAX_INFO or out_len > 255*32. */
enum px_err kdf_expand_label(const uint8_t prk[static KDF_PRK_LEN], const char *label, const uint8_t *ctx,
			     size_t ctx_len, uint8_t *out, size_t out_len);

#endif
