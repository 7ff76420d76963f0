/* mqtt_topic.c - MQTT strings and topics: UTF-8 validity (MQTT 5 §1.5.4), topic names and filters
 * (§4.7), matching with the '$' rule (§4.7.2), shared subscriptions (§4.8.2) and filter overlap.
 * Pure functions over byte ranges; nothing here allocates. */
#include <string.h>

#include "mqtt_codec.h"
#include "mqtt_topic.h"

/* Topic names and filters are UTF-8 strings: at most 65535 bytes (§1.5.4), at least 1 ([MQTT-4.7.3-1]). */
#define TOPIC_MAX 65535u

/* ---- UTF-8 (RFC 3629 §3-4, as restricted by MQTT 5 §1.5.4) ---- */

/* Decodes one multi-byte sequence starting at p (lead byte >= 0x80); returns its length or 0 if
 * it is ill-formed: bad lead byte, missing or bad continuation bytes, overlong form, surrogate
 * (U+D800..U+DFFF, [MQTT-1.5.4-1]) or above U+10FFFF. */
static size_t utf8_sequence(const uint8_t *p, size_t left)
{
	uint32_t cp, min;
	size_t n, i;

	if ((p[0] & 0xE0) == 0xC0) {
		n = 2, cp = p[0] & 0x1Fu, min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		n = 3, cp = p[0] & 0x0Fu, min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		n = 4, cp = p[0] & 0x07u, min = 0x10000;
	} else {
		return 0; /* a continuation byte or 0xF8..0xFF as lead */
	}
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Eight bytes at once, for the common case of ASCII names: true when none has its high bit set
 * and none is zero (the classic "has a zero byte" test: a byte that borrows in the subtraction and
 * had its high bit clear). */
static bool utf8_ascii8(const uint8_t *p)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return ((v & highs) | ((v - ones) & ~v & highs)) == 0;
}

/* U+0000 is forbidden [MQTT-1.5.4-2]; the other control characters and the non-characters are only
 * "SHOULD NOT" (§1.5.4), so they pass. */
bool mqtt_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (len - i >= 8 && utf8_ascii8(p + i)) {
			i += 8;
			continue;
		}
		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (!(n = utf8_sequence(p + i, len - i)))
			return false;
		i += n;
	}
	return true;
}

/* ---- topic levels ---- */

/* Walks the '/'-separated levels of a topic or filter; "a//b" has an empty middle level and "/"
 * two empty levels (§4.7.1.1). */
struct level_walk {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool done;
};

static void level_walk_init(struct level_walk *w, const uint8_t *p, size_t len)
{
	w->p = p;
	w->len = len;
	w->pos = 0;
	w->done = false;
}

static bool level_next(struct level_walk *w, const uint8_t **lp, size_t *ll)
{
	const uint8_t *slash;

	if (w->done)
		return false;
	*lp = w->p + w->pos;
	slash = memchr(*lp, '/', w->len - w->pos);
	if (!slash) {
		*ll = w->len - w->pos;
		w->done = true;
	} else {
		*ll = (size_t)(slash - *lp);
		w->pos += *ll + 1;
	}
	return true;
}

static bool level_is(const uint8_t *lp, size_t ll, char c)
{
	return ll == 1 && lp[0] == (uint8_t)c;
}

static bool level_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool topic_string_ok(const uint8_t *t, size_t len)
{
	return t && len >= 1 && len <= TOPIC_MAX && mqtt_utf8_valid(t, len);
}

/* ---- names and filters (§4.7.1, §4.7.3) ---- */

bool mqtt_topic_name_valid(const uint8_t *t, size_t len)
{
	/* Wildcards MUST NOT be used within a Topic Name [MQTT-4.7.0-1]. */
	return topic_string_ok(t, len) && !memchr(t, '+', len) && !memchr(t, '#', len);
}

bool mqtt_topic_filter_valid(const uint8_t *f, size_t len)
{
	struct level_walk w;
	const uint8_t *lp;
	size_t ll;

	if (!topic_string_ok(f, len))
		return false;
	level_walk_init(&w, f, len);
	while (level_next(&w, &lp, &ll)) {
		bool plus = memchr(lp, '+', ll) != NULL, hash = memchr(lp, '#', ll) != NULL;

		/* '+' occupies a whole level [MQTT-4.7.1-2]; '#' a whole level and the last one
		 * [MQTT-4.7.1-1]. */
		if ((plus || hash) && ll != 1)
			return false;
		if (hash && !w.done)
			return false;
	}
	return true;
}

/* ---- matching (§4.7) ---- */

static bool wildcard_first(const uint8_t *f)
{
	return f[0] == '+' || f[0] == '#';
}

bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen)
{
	struct level_walk fw, tw;
	const uint8_t *fl, *tl;
	size_t fll, tll;
	bool has_f, has_t;

	if (!mqtt_topic_filter_valid(filter, flen) || !mqtt_topic_name_valid(topic, tlen))
		return false;
	/* A filter starting with a wildcard does not match a topic starting with '$' [MQTT-4.7.2-1]. */
	if (topic[0] == '$' && wildcard_first(filter))
		return false;
	level_walk_init(&fw, filter, flen);
	level_walk_init(&tw, topic, tlen);
	for (;;) {
		has_f = level_next(&fw, &fl, &fll);
		has_t = level_next(&tw, &tl, &tll);
		if (!has_f)
			return !has_t;
		if (level_is(fl, fll, '#'))
			return true; /* the parent level and any number of children (§4.7.1.2) */
		if (!has_t)
			return false;
		if (!level_is(fl, fll, '+') && !level_eq(fl, fll, tl, tll))
			return false;
	}
}

/* A filter whose every topic starts with '$': its first level is a literal starting with '$'. */
static bool dollar_only(const uint8_t *f)
{
	return f[0] == '$';
}

bool mqtt_topic_filters_overlap(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct level_walk aw, bw;
	const uint8_t *al, *bl;
	size_t all, bll, depth;
	bool has_a, has_b, first_empty = false;

	if (!mqtt_topic_filter_valid(a, alen) || !mqtt_topic_filter_valid(b, blen))
		return false;
	/* Topics of a '$' filter are invisible to a wildcard-first filter (§4.7.2). */
	if ((dollar_only(a) && wildcard_first(b)) || (dollar_only(b) && wildcard_first(a)))
		return false;
	level_walk_init(&aw, a, alen);
	level_walk_init(&bw, b, blen);
	for (depth = 0;; depth++) {
		has_a = level_next(&aw, &al, &all);
		has_b = level_next(&bw, &bl, &bll);
		/* '#' takes whatever the other filter still has, even nothing, unless "nothing" leaves
		 * the empty topic, which is no topic at all [MQTT-4.7.3-1]: "+" vs "/#". */
		if ((has_a && level_is(al, all, '#')) || (has_b && level_is(bl, bll, '#')))
			return has_a == has_b || depth != 1 || !first_empty;
		if (!has_a || !has_b)
			return !has_a && !has_b;
		if (!level_is(al, all, '+') && !level_is(bl, bll, '+') && !level_eq(al, all, bl, bll))
			return false;
		if (depth == 0) /* a literal empty first level forces the topic's first level empty */
			first_empty = all == 0 || bll == 0;
	}
}

/* ---- shared subscriptions (§4.8.2) ---- */

bool mqtt_topic_share_split(const uint8_t *f, size_t len, const uint8_t **inner, size_t *inner_len)
{
	static const char prefix[] = "$share/";
	const size_t plen = sizeof(prefix) - 1;
	const uint8_t *group, *slash;
	size_t glen;

	if (!f || len <= plen || memcmp(f, prefix, plen) != 0)
		return false;
	group = f + plen;
	slash = memchr(group, '/', len - plen);
	if (!slash)
		return false; /* ShareName MUST be followed by '/' [MQTT-4.8.2-2] */
	glen = (size_t)(slash - group);
	/* ShareName: at least one character [MQTT-4.8.2-1], no '+' or '#' (§4.8.2). */
	if (glen == 0 || memchr(group, '+', glen) || memchr(group, '#', glen))
		return false;
	if ((size_t)(slash + 1 - f) >= len)
		return false; /* '/' MUST be followed by a Topic Filter [MQTT-4.8.2-2] */
	*inner = slash + 1;
	*inner_len = len - (size_t)(slash + 1 - f);
	return true;
}
