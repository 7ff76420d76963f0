/* policy.h - the topic policy (PROTOCOL.md §11): which topics are sealed, which pass as plaintext,
 * which are refused. Built from topics.plaintext, topics.deny and keyex.topic_prefix. */
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
/* Does outer contain inner (every topic matching inner matches outer)? Both valid filters. */
bool policy_filter_contains(const uint8_t *outer, size_t olen, const uint8_t *inner, size_t ilen);

#endif
