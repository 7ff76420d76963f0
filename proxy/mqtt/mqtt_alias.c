/* mqtt_alias.c - one direction's MQTT 5 Topic Alias table (§3.3.2.3.4): alias -> topic, held in a
 * small open-addressing hash table so that a device using three aliases costs a few hundred bytes,
 * not 65535 slots. The peer chooses both the aliases and the topics, so everything the table
 * allocates (slots and topic copies) is counted against MQTT_ALIAS_BYTES_MAX. */
#include <stdlib.h>
#include <string.h>

#include "mqtt_alias.h"

/* 1 MiB per table and direction: room for thousands of typical topics, while a hostile peer that
 * binds 65535 aliases to 65535-byte topics (4 GiB) is stopped early. */
#define MQTT_ALIAS_BYTES_MAX ((size_t)1024 * 1024)
#define ALIAS_SLOTS_MIN	     8u /* first allocation: 8 slots of 16 bytes */

struct alias_slot {
	uint8_t *topic; /* NULL: empty slot */
	uint16_t alias;
	uint16_t len; /* topics are UTF-8 strings of at most 65535 bytes */
};

struct mqtt_alias {
	struct alias_slot *slots;
	size_t nslots; /* 0 or a power of two */
	size_t used;
	size_t bytes; /* slots + topic copies */
	uint16_t max;
};

struct mqtt_alias *mqtt_alias_new(uint16_t max)
{
	struct mqtt_alias *a = calloc(1, sizeof(*a));

	if (a)
		a->max = max;
	return a;
}

static void alias_free_slots(struct alias_slot *slots, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(slots[i].topic);
	free(slots);
}

void mqtt_alias_free(struct mqtt_alias *a)
{
	if (!a)
		return;
	alias_free_slots(a->slots, a->nslots);
	free(a);
}

/* Fibonacci hashing spreads the peer's choice of aliases over the table. */
static size_t alias_home(uint16_t alias, size_t nslots)
{
	return (size_t)((uint32_t)alias * 2654435769u >> 16) & (nslots - 1);
}

/* The slot holding alias, or the empty slot where it would go. Needs nslots > used. */
static struct alias_slot *alias_probe(struct alias_slot *slots, size_t nslots, uint16_t alias)
{
	size_t i = alias_home(alias, nslots);

	while (slots[i].topic && slots[i].alias != alias)
		i = (i + 1) & (nslots - 1);
	return &slots[i];
}

/* Moves every entry with an alias <= max into a table of nslots slots; frees the others. */
static bool alias_rehash(struct mqtt_alias *a, size_t nslots, uint16_t max)
{
	struct alias_slot *slots = calloc(nslots, sizeof(*slots)), *s;
	size_t i, used = 0, bytes = nslots * sizeof(*slots);

	if (!slots)
		return false;
	for (i = 0; i < a->nslots; i++) {
		s = &a->slots[i];
		if (!s->topic)
			continue;
		if (s->alias > max) {
			free(s->topic);
		} else {
			*alias_probe(slots, nslots, s->alias) = *s;
			used++;
			bytes += s->len;
		}
		s->topic = NULL;
	}
	free(a->slots);
	a->slots = slots;
	a->nslots = nslots;
	a->used = used;
	a->bytes = bytes;
	return true;
}

void mqtt_alias_set_max(struct mqtt_alias *a, uint16_t max)
{
	/* Aliases above a lowered maximum can never be resolved again: drop them (in place, since
	 * a table of the same size cannot fail for lack of room; a failed allocation keeps them
	 * unreachable but counted). */
	if (max < a->max && a->used > 0)
		(void)alias_rehash(a, a->nslots, max);
	a->max = max;
}

/* Makes room for one more entry: load factor at most 3/4, and within the byte cap. */
static enum mqtt_parse alias_reserve(struct mqtt_alias *a, size_t topic_len)
{
	size_t nslots = a->nslots ? a->nslots : ALIAS_SLOTS_MIN, grow;

	if ((a->used + 1) * 4 > nslots * 3)
		nslots *= 2;
	grow = (nslots - a->nslots) * sizeof(struct alias_slot);
	if (a->bytes + grow + topic_len > MQTT_ALIAS_BYTES_MAX)
		return MQTT_PARSE_TOO_LARGE;
	if (nslots != a->nslots && !alias_rehash(a, nslots, a->max))
		return MQTT_PARSE_TOO_LARGE;
	return MQTT_PARSE_OK;
}

/* Binds alias to a copy of topic, replacing (and freeing) what it was bound to. */
static enum mqtt_parse alias_bind(struct mqtt_alias *a, uint16_t alias, struct mqtt_buf topic)
{
	struct alias_slot *s = a->nslots ? alias_probe(a->slots, a->nslots, alias) : NULL;
	size_t old = s && s->topic ? s->len : 0;
	uint8_t *copy;
	enum mqtt_parse rc;

	if (s && s->topic && s->len == topic.len && memcmp(s->topic, topic.p, topic.len) == 0)
		return MQTT_PARSE_OK; /* rebinding to the same topic: nothing to do */
	if (s && s->topic) {
		if (a->bytes - old + topic.len > MQTT_ALIAS_BYTES_MAX)
			return MQTT_PARSE_TOO_LARGE;
	} else if ((rc = alias_reserve(a, topic.len)) != MQTT_PARSE_OK) {
		return rc;
	}
	if (!(copy = malloc(topic.len)))
		return MQTT_PARSE_TOO_LARGE;
	memcpy(copy, topic.p, topic.len);
	s = alias_probe(a->slots, a->nslots, alias); /* the table may have been rebuilt */
	if (!s->topic)
		a->used++;
	free(s->topic);
	s->topic = copy;
	s->alias = alias;
	s->len = (uint16_t)topic.len;
	a->bytes = a->bytes - old + topic.len;
	return MQTT_PARSE_OK;
}

/* Sets *why and returns rc. */
static enum mqtt_parse alias_fail(enum mqtt_parse rc, const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return rc;
}

enum mqtt_parse mqtt_alias_resolve(struct mqtt_alias *a, uint16_t alias, struct mqtt_buf topic,
				   struct mqtt_buf *topic_out, const char **why)
{
	struct alias_slot *s;
	enum mqtt_parse rc;

	if (alias == 0) {
		if (topic.len == 0) /* neither a topic nor an alias [MQTT-3.3.2-1] */
			return alias_fail(MQTT_PARSE_MALFORMED, why, "empty topic without topic alias");
		*topic_out = topic;
		return MQTT_PARSE_OK;
	}
	/* A Topic Alias above the maximum in force is a Protocol Error [MQTT-3.3.2-9], [MQTT-3.3.2-10]. */
	if (alias > a->max)
		return alias_fail(MQTT_PARSE_MALFORMED, why, "topic alias above maximum");
	if (topic.len > UINT16_MAX)
		return alias_fail(MQTT_PARSE_MALFORMED, why, "topic name invalid");
	if (topic.len > 0) {
		if ((rc = alias_bind(a, alias, topic)) != MQTT_PARSE_OK)
			return alias_fail(rc, why, "topic alias table full");
		*topic_out = topic;
		return MQTT_PARSE_OK;
	}
	s = a->nslots ? alias_probe(a->slots, a->nslots, alias) : NULL;
	if (!s || !s->topic) /* an alias never bound on this connection (§3.3.2.3.4) */
		return alias_fail(MQTT_PARSE_MALFORMED, why, "topic alias unknown");
	topic_out->p = s->topic;
	topic_out->len = s->len;
	return MQTT_PARSE_OK;
}
