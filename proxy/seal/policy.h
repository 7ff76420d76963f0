/* policy.h - the topic policy (PROTOCOL.md §11): which topics are sealed, which pass as plaintext,
 * which are refused; the topic a sealed message binds (§5.4); and the read group of a sealed
 * topic with its readers and writers (issue 17). Built from topics.plaintext, topics.deny,
 * keyex.topic_prefix, topic_prefix_map and groups. */
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

/* ---- read groups (issue 17, docs/OPERATIONS.md "Read groups") ----
 * Groups are numbered 0..policy_group_count()-1 in configuration order; POLICY_GROUP_DEFAULT is the
 * implicit default group of every topic in no group (name "", read by every trusted peer, written
 * by every trusted node). Functions taking a group accept POLICY_GROUP_DEFAULT and treat any other
 * number out of range as a group nobody reads or writes. */
#define POLICY_GROUP_DEFAULT (-1)
#define POLICY_GROUP_UNKNOWN (-2)

/* The number of configured groups (0: every topic is in the default group). */
size_t policy_group_count(const struct policy *p);
/* The group of a topic name: its index, or POLICY_GROUP_DEFAULT. Give it the canonical topic (the
 * one policy_aad_topic returns, bound in the AAD) so that every node of a fleet, behind whatever
 * broker prefix, resolves a message alike. conf/ refuses filters of two groups that share a topic,
 * so at most one group matches. Topics starting with '$' are never in a group. Cost: a binary
 * search on the first level, then the filters sharing it and the wildcard-first ones. */
int policy_group(const struct policy *p, const uint8_t *topic, size_t len);
/* The group's name: "" for POLICY_GROUP_DEFAULT, NULL out of range. Owned by p. */
const char *policy_group_name(const struct policy *p, int group);
/* The group named name (len bytes, e.g. from the wire): len 0 = POLICY_GROUP_DEFAULT; a name this
 * node does not know: POLICY_GROUP_UNKNOWN. */
int policy_group_find(const struct policy *p, const uint8_t *name, size_t len);
/* The readers (or writers) of a configured group: node ids sorted (strcmp) without repeats, owned
 * by p; *n their number. NULL with *n = 0 for POLICY_GROUP_DEFAULT (every trusted peer reads
 * it), for a group without writers (every trusted node writes it) and out of range. */
const char *const *policy_group_readers(const struct policy *p, int group, size_t *n);
const char *const *policy_group_writers(const struct policy *p, int group, size_t *n);
/* Does the group name writers (messages on it need proof of one of them)? False for the default. */
bool policy_group_has_writers(const struct policy *p, int group);
/* May node_id read the group (receive its keys)? The default group: true (every trusted peer;
 * whether node_id is trusted is the caller's question). A configured group: node_id is in its
 * readers. The sealing node always opens what it sealed itself, reader or not. */
bool policy_group_is_reader(const struct policy *p, int group, const char *node_id);
/* May node_id write the group? The default group and a group without writers: true; otherwise
 * node_id is in its writers. */
bool policy_group_is_writer(const struct policy *p, int group, const char *node_id);

#endif
