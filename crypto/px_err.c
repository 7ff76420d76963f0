/* px_err.c - descriptions for enum px_err. */
#include "px_err.h"

static const char *const px_err_text[PX_ERR__COUNT] = {
	[PX_OK] = "ok",
	[PX_ERR_NOMEM] = "out of memory",
	[PX_ERR_INVAL] = "invalid argument",
	[PX_ERR_CRYPTO] = "cryptographic library failure",
	[PX_ERR_MALFORMED] = "malformed input",
	[PX_ERR_TOO_LARGE] = "input too large",
	[PX_ERR_VERSION] = "unknown version or reserved bits set",
	[PX_ERR_AUTH] = "authentication failed",
	[PX_ERR_REPLAY] = "replayed or too old",
	[PX_ERR_UNKNOWN_KEY] = "unknown key id",
	[PX_ERR_EXPIRED] = "expired",
	[PX_ERR_STALE] = "stale (not newer than accepted)",
	[PX_ERR_PEER] = "unknown or untrusted peer",
	[PX_ERR_TOPIC] = "topic mismatch",
	[PX_ERR_WEAK_KEY] = "weak or small-order public key",
	[PX_ERR_IO] = "i/o error",
	[PX_ERR_EXISTS] = "already exists",
	[PX_ERR_LIMIT] = "usage limit reached",
	[PX_ERR_SOURCE] = "writer not proven",
};

const char *px_strerror(enum px_err err)
{
	if ((unsigned)err >= PX_ERR__COUNT || px_err_text[err] == 0)
		return "unknown error";
	return px_err_text[err];
}
