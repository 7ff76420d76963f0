/* px_err.h - the one error vocabulary of mqseal (0 = ok).
 * crypto/, the MQTT codec and proxy/ return these; only proxy/ logs them. */
#ifndef PX_ERR_H
#define PX_ERR_H

enum px_err {
	PX_OK = 0,
	PX_ERR_NOMEM,      /* allocation failed */
	PX_ERR_INVAL,      /* bad argument (a caller bug) */
	PX_ERR_CRYPTO,     /* an OpenSSL call failed */
	PX_ERR_MALFORMED,  /* input does not parse */
	PX_ERR_TOO_LARGE,  /* input exceeds a limit */
	PX_ERR_VERSION,    /* unknown version or reserved bits set */
	PX_ERR_AUTH,       /* tag or signature did not verify */
	PX_ERR_REPLAY,     /* counter already seen or too old */
	PX_ERR_UNKNOWN_KEY,/* no key with this key id */
	PX_ERR_EXPIRED,    /* key or announcement too old, or a counter at its limit */
	PX_ERR_STALE,      /* not newer than what was already accepted */
	PX_ERR_PEER,       /* unknown or untrusted peer */
	PX_ERR_TOPIC,      /* topic does not match */
	PX_ERR_WEAK_KEY,   /* X25519 result was all-zero (small-order point) */
	PX_ERR_IO,         /* a file or socket operation failed */
	PX_ERR_EXISTS,     /* refusing to overwrite */
	PX_ERR_LIMIT,      /* a usage limit was reached */
	PX_ERR_SOURCE,     /* the writer of a message is not proven (no or bad source signature, or not a writer) */
	PX_ERR__COUNT
};

/* Returns a static, lower-case description; never NULL. */
const char *px_strerror(enum px_err err);

#endif
