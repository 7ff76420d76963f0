/* mqtt_alias.h - one direction's MQTT 5 Topic Alias table (§3.3.2.3.4): alias -> topic. */
#ifndef PX_MQTT_ALIAS_H
#define PX_MQTT_ALIAS_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt_codec.h"

struct mqtt_alias;

/* max: the Topic Alias Maximum in force for this direction (0..65535). NULL on allocation failure. */
struct mqtt_alias *mqtt_alias_new(uint16_t max);
void mqtt_alias_free(struct mqtt_alias *a); /* accepts NULL */
void mqtt_alias_set_max(struct mqtt_alias *a, uint16_t max);
/* Resolves the real topic of a PUBLISH: alias 0 means no Topic Alias property. With an alias and a
 * topic, records the mapping (copying the topic); with an alias and an empty topic, looks it up.
 * *topic_out points into the packet or into the table (valid until the next call for that alias).
 * MALFORMED: alias > max, unknown alias, or no alias and an empty topic. TOO_LARGE: recording the
 * topic would take the table past its cap of 1 MiB (slots and topic copies together), or memory
 * ran out; the table is unchanged then. On failure *why (if not NULL) is set to a static reason
 * (mqtt_reason_of maps it to a reason code). */
enum mqtt_parse mqtt_alias_resolve(struct mqtt_alias *a, uint16_t alias, struct mqtt_buf topic,
				   struct mqtt_buf *topic_out, const char **why);

#endif
