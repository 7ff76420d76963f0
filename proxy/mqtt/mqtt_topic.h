/* mqtt_topic.h - topic names and filters (MQTT 5 §4.7, shared subscriptions §4.8.2). Pure. */
#ifndef PX_MQTT_TOPIC_H
#define PX_MQTT_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A topic name: 1..65535 bytes of valid UTF-8, no '+' or '#'. */
bool mqtt_topic_name_valid(const uint8_t *t, size_t len);
/* A topic filter: '#' only as the whole last level, '+' only as a whole level. */
bool mqtt_topic_filter_valid(const uint8_t *f, size_t len);
/* Does filter match topic? Filters starting with a wildcard do not match topics starting with '$'
 * (§4.7.2). Both must be valid (false otherwise). A "$share/..." filter is matched literally: take
 * its inner filter with mqtt_topic_share_split first. */
bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen);
/* Could some topic match both filters (used to decide whether a subscription can receive
 * messages of a policy filter)? Both must be valid (false otherwise); $share filters as above. */
bool mqtt_topic_filters_overlap(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* "$share/<group>/<filter>": returns true and points *inner at <filter>; false for other filters.
 * A $share filter with an empty or wildcard group or no inner filter is not a share (false). */
bool mqtt_topic_share_split(const uint8_t *f, size_t len, const uint8_t **inner, size_t *inner_len);

#endif
