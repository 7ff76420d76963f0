/* policy.h - the topic policy (PROTOCOL.md §11): which topics are sealed, which pass as plaintext,
 * which are refused; and the topic a sealed message binds (§5.4). Built from topics.plaintext,
 * topics.deny, keyex.topic_prefix and topic_prefix_map. */
#ifndef PX_POLICY_H
#define PX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct px_conf;
struct policy;

enum policy_class {
	POLICY_SEALED = 0, /* the default */
	POLICY_PLAINTEXT,  /* matches topics.plaintext, or starts with '$' */
	POLICY_DENIED,     /* matches topics.deny, or is a key-exchange topic (<prefix>/#) */
};

/* Copies what it needs from conf. NULL on allocation failure. */
struct policy *policy_new(const struct px_conf *conf);
void policy_free(struct policy *p); /* accepts NULL */

/* The class of a topic name (deny wins over plaintext, plaintext over sealed). */
enum policy_class policy_topic(const struct policy *p, const uint8_t *topic, size_t len);
/* Is a subscription filter refused? Only when every topic it can match is denied; a wider filter
 * (e.g. "#") is allowed, and denied topics are then filtered out of its deliveries.
 * "$share/<group>/<filter>" is judged by <filter>. */
bool policy_filter_denied(const struct policy *p, const uint8_t *filter, size_t len);
/* The longest topic name MQTT carries (MQTT 5 §1.5.4), and so the longest one bound in an AAD. */
#define POLICY_TOPIC_MAX 65535

/* Does topic_prefix_map have rules (else policy_aad_topic never needs its buffer)? */
bool policy_has_prefix_map(const struct policy *p);
/* The topic name bound in the AAD of a sealed message that this node's broker connection sees on
 * topic (R24, PROTOCOL.md §5.4): the longest local prefix of topic_prefix_map that starts it is
 * replaced by its canonical prefix; with no such rule, topic itself. *out points into buf (cap
 * bytes; NULL is fine when there is no map) or at topic. False when the result would be longer
 * than cap or POLICY_TOPIC_MAX. The key exchange signs and verifies its topics the same way. */
bool policy_aad_topic(const struct policy *p, const uint8_t *topic, size_t len, uint8_t *buf, size_t cap,
		      const uint8_t **out, size_t *out_len);
/* Does outer contain inner (every topic matching inner matches outer)? Both valid filters. */
bool policy_filter_contains(const uint8_t *outer, size_t olen, const uint8_t *inner, size_t ilen);

#endif
