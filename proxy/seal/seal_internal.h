/* seal_internal.h - struct seal, shared by seal.c (sealing), seal_deliver.c (opening and the
 * delivery rule) and seal_cache.c (the retained cache). Not for other modules. */
#ifndef PX_SEAL_INTERNAL_H
#define PX_SEAL_INTERNAL_H

#include "log.h"
#include "seal.h"

#define SEAL_BUCKETS 256
/* An opened inner plaintext of at least this many bytes is decrypted into a chain of its own that
 * moves into the device's output behind the header (no copy); a smaller one into the scratch
 * buffer and copied with its header (one chain per message would cost a 1 KiB allocation and an
 * output chain even for a 64-byte message). The size past which the relay also stops pulling a
 * broker PUBLISH up (SESSION_LAZY_MIN). */
#define SEAL_STAGE_MIN ((size_t)2048)

struct seal_entry {
	struct seal_entry *next;
	char *topic; /* NUL-terminated */
	size_t topic_len;
	uint8_t *inner_props;
	size_t props_len;
	uint8_t *payload;
	size_t payload_len;
	uint64_t sealed_at; /* the original's seal time, kept by every re-publication (§10.1) */
	uint8_t key_id[ENV_KEY_ID_LEN]; /* the envelope last sent for it (original or re-publication) */
	uint64_t counter;
	bool confirmed;     /* the broker delivered the original back: it accepted it */
};

struct seal {
	struct px_ctx *ctx;
	struct evp_md_st *sha256; /* topic digests (seal_deliver.c), fetched on first use */
	uint8_t *scratch; /* opened plaintext of small messages, grown to the largest such envelope */
	size_t scratch_cap;
	uint8_t *gather;  /* a signed envelope that came in pieces, joined for its signature check */
	size_t gather_cap;
	struct evbuffer *stage; /* opened plaintext of large messages, in reserved space whose chain
				 * then moves into the device's output (seal_deliver.c); empty between
				 * messages. Created on first use. */
	uint8_t *topic_buf; /* POLICY_TOPIC_MAX bytes for rewritten AAD topics, allocated on first use */
	struct seal_entry *buckets[SEAL_BUCKETS];
	size_t count, bytes;
	struct log_limit cache_log;
};

/* §5.3: the MQTT 5 properties that travel inside the envelope, and those that stay outside. */
bool seal_prop_inner_(uint8_t id, void *arg);
bool seal_prop_outer_(uint8_t id, void *arg);
/* Writes p with topic in full and props (level 5) and payload to out; SEAL_TOO_LARGE (nothing
 * written) past MQTT's limit or max_packet (0: none). */
enum seal_rc seal_write_plain_(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
			       struct mqtt_buf props, const uint8_t *payload, size_t payload_len,
			       uint32_t max_packet, struct evbuffer *out);
void seal_entry_free_(struct seal_entry *e);
/* The topic bound in the AAD for topic (topic_prefix_map, §5.4): SEAL_OK and *out set, or
 * SEAL_TOO_LARGE (the rewritten name is too long) or SEAL_ERROR (out of memory). */
enum seal_rc seal_aad_topic_(struct seal *s, const uint8_t *topic, size_t len, struct mqtt_buf *out);

/* How this node seals a message on the AAD topic aad (§11.1): under its key of the topic's group
 * (group: its name, "" for the default group), signed (§5.8) on a group with writers. SEAL_DENIED
 * if the group has writers and this node is not one of them. */
struct seal_how {
	const char *group;
	bool sign;
};
struct policy;
enum seal_rc seal_how_(const struct seal *s, struct mqtt_buf aad, struct seal_how *how);
/* Does some group have writers (so some messages carry a signature)? False for NULL. */
bool seal_policy_signs_(const struct policy *pol);
/* The envelope size of a message sealed as how (0 if too large). */
size_t seal_env_size_(const struct seal *s, const struct seal_how *how, size_t props_len, size_t payload_len);
/* Seals into env (env_len = seal_env_size_) as how says, with the group key's counter; signs
 * with this node's identity key when how->sign. Errors of keyring_seal_group_parts and
 * env_source_sign. */
enum px_err seal_env_(struct seal *s, const struct seal_how *how, uint64_t sealed_at, uint8_t flags,
		      struct mqtt_buf aad, struct mqtt_buf props, const struct aead_part *pieces, size_t npieces,
		      uint8_t *env, size_t env_len);

#endif
