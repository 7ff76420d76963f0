/* seal.h - turning one PUBLISH (or a CONNECT's will) into its sealed form and back
 * (PROTOCOL.md §5, §6), and the retained-message cache that is re-sealed after each activation
 * (§10.1). The session decides when (policy, waiting, acks); this module does the bytes. */
#ifndef PX_SEAL_H
#define PX_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "envelope.h"
#include "mqtt_codec.h"
#include "stats.h"

struct evbuffer;
struct seal;
struct devstate;

enum seal_rc {
	SEAL_OK = 0,
	SEAL_NO_KEY,    /* no usable sending key now */
	SEAL_TOO_LARGE, /* the sealed packet would exceed the broker's or MQTT's limit */
	SEAL_DROP,      /* incoming: not delivered; *reason says why */
	SEAL_UNKNOWN_KEY, /* incoming: key id not (yet) known */
	SEAL_SUPPRESS,  /* incoming: a re-sealed retained value on a live subscription (§10.1) */
	SEAL_DENIED,    /* outgoing: the topic's group has writers and this node is not one (§11.1) */
	SEAL_ERROR,     /* out of memory or a library failure */
};

struct seal *seal_new(struct px_ctx *ctx);
void seal_free(struct seal *s); /* erases the retained cache; accepts NULL */

/* The most bytes sealing adds to one PUBLISH packet (PROTOCOL.md §5.1, §5.7), for a sender padding
 * to a multiple of padding (1..256; SEAL_PADDING_ANY: any sender, e.g. for what other nodes seal),
 * with the 64-byte source signature (§5.8) when a group of pol (NULL: none) has writers. The one
 * number the Maximum Packet Size rewriting is based on (session_pkt.c). */
#define SEAL_PADDING_ANY 0u
struct policy;
uint32_t seal_overhead_max(unsigned padding, const struct policy *pol);
/* May this node's devices publish on topic (a sealed one)? False when the topic's group has
 * writers and this node is not one of them (PROTOCOL.md §11.1): refused like a denied topic. */
bool seal_may_write(struct seal *s, struct mqtt_buf topic);

/* Device -> broker: writes the sealed form of p (whose real topic is topic) at level to out.
 * max_packet: the broker's Maximum Packet Size (0 = MQTT's own limit); sealed_at: the wall clock
 * (ms) that goes into the envelope (§5.1); *sent (if not NULL): the envelope header written. */
/* pieces: the payload as the chains it arrived in (npieces <= ENV_PARTS_MAX, p->payload.len bytes
 * in all; p->payload.p is then not read), sealed from there straight into out; npieces 0: the
 * payload is p->payload. */
enum seal_rc seal_publish(struct seal *s, uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
			  uint32_t max_packet, uint64_t sealed_at, struct env_header *sent, struct evbuffer *out,
			  const struct aead_part *pieces, size_t npieces);
/* The same for the will of a CONNECT: writes the whole CONNECT with the will sealed. */
enum seal_rc seal_connect(struct seal *s, const struct mqtt_connect *c, struct evbuffer *out);
/* Broker -> device: opens p and writes the plaintext PUBLISH for a device at level to out (always
 * with the full topic name, keeping a Topic Alias so the device's alias table stays in step).
 * dev: the device's replay state; a redelivery of a message it has not acknowledged opens again.
 * max_packet: the device's Maximum Packet Size (0: none); a larger plaintext PUBLISH is not
 * written and dropped as too_large (PROTOCOL.md §5.7), before it counts as delivered. */
enum seal_rc seal_open(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
		       struct mqtt_buf topic, uint32_t max_packet, struct evbuffer *out, enum stats_drop *reason);
/* seal_open with the payload given as the chains it arrived in (pieces[0..npieces), npieces <=
 * ENV_PARTS_MAX, p->payload.len bytes in all; p->payload.p is then not read; npieces 0: the
 * payload is p->payload). A large message is decrypted from the pieces straight into a chain that
 * moves into out behind its header (its payload is written once); a signed envelope (a group with
 * writers, §5.8) is joined first, its signature being checked over all of it. */
enum seal_rc seal_open_pieces(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
			      struct mqtt_buf topic, uint32_t max_packet, struct evbuffer *out,
			      enum stats_drop *reason, const struct aead_part *pieces, size_t npieces);
/* Rewrites a plaintext PUBLISH that uses a Topic Alias alone into one with the full topic. */
enum seal_rc seal_plain_full_topic(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
				   struct evbuffer *out);

/* Retained cache (§10.1): the last retained plaintext a device published on each sealed topic,
 * sent as the envelope sent (its seal time, key id and counter). The control connection watches
 * the topic: the value is re-published only once the broker has delivered that very envelope back
 * (so the broker accepted it from the device, under the device's own rights), and forgotten as
 * soon as the broker delivers a newer value, a delete or anything else for the topic. */
void seal_retained_put(struct seal *s, uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
		       const struct env_header *sent);
void seal_retained_delete(struct seal *s, struct mqtt_buf topic);
/* The control connection received payload on a watched topic. */
void seal_retained_watched(struct seal *s, const char *topic, const uint8_t *payload, size_t len);
/* The control connection is up (again): watch every cached topic. */
void seal_retained_watch_all(struct seal *s);
/* Re-seals every confirmed value under the active epoch and publishes it retained, keeping its
 * seal time (§10.1). */
void seal_retained_republish(struct seal *s);
size_t seal_retained_count(const struct seal *s);

#endif
