/* marks.c - retained order marks (marks.h): an open-addressing table over topic digests, grown by
 * doubling up to 2 * MARKS_MAX slots, never shrunk (entries are never removed: a topic's mark only
 * moves forward), and its text file. */
#include "marks.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARKS_MIN_CAP 64
#define MARKS_MAGIC   "mqseal-marks 1"
#define MARKS_LINE    160 /* a line: 32 + 3 * 20 + 16 hex/decimal digits and 5 separators */

struct marks_slot {
	uint8_t digest[MARKS_DIGEST_LEN];
	struct mark m;
	bool used;
};

struct marks_will {
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t counter;
	uint64_t first_ms; /* 0: unused */
};

struct marks {
	struct marks_slot *slots; /* NULL until the first record */
	size_t cap;		  /* 0 or a power of two, at least twice count */
	size_t count;
	bool dirty;
	struct marks_will *wills; /* MARKS_WILLS, a ring, allocated on the first will */
	size_t wills_next;
};

struct marks *marks_new(void)
{
	return calloc(1, sizeof(struct marks));
}

void marks_free(struct marks *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m->wills);
	free(m);
}

static size_t marks_home(const uint8_t digest[static MARKS_DIGEST_LEN], size_t cap)
{
	size_t h;

	memcpy(&h, digest, sizeof(h)); /* a digest is uniform: its first bytes are a fine hash */
	return h & (cap - 1);
}

static struct marks_slot *marks_find(const struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN])
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = marks_home(digest, m->cap); m->slots[i].used; i = (i + 1) & (m->cap - 1))
		if (memcmp(m->slots[i].digest, digest, MARKS_DIGEST_LEN) == 0)
			return &m->slots[i];
	return NULL;
}

static struct marks_slot *marks_put(struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN],
				    const struct mark *msg)
{
	size_t i = marks_home(digest, m->cap);

	while (m->slots[i].used)
		i = (i + 1) & (m->cap - 1);
	memcpy(m->slots[i].digest, digest, MARKS_DIGEST_LEN);
	m->slots[i].m = *msg;
	m->slots[i].used = true;
	m->count++;
	return &m->slots[i];
}

static int marks_grow(struct marks *m)
{
	struct marks n = {0};
	size_t i;

	n.cap = m->cap ? 2 * m->cap : MARKS_MIN_CAP;
	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -1;
	for (i = 0; i < m->cap; i++)
		if (m->slots[i].used)
			marks_put(&n, m->slots[i].digest, &m->slots[i].m);
	free(m->slots);
	m->slots = n.slots;
	m->cap = n.cap;
	return 0;
}

/* Is a newer than b? Seal time first (both senders' clocks are within max_skew of true time),
 * then (epoch, counter), which also orders a re-publication after its original (same seal time). */
static bool marks_newer(const struct mark *a, const struct mark *b)
{
	if (a->sealed_at != b->sealed_at)
		return a->sealed_at > b->sealed_at;
	if (a->epoch != b->epoch)
		return a->epoch > b->epoch;
	return a->counter > b->counter;
}

enum marks_order marks_compare(const struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN],
			       const struct mark *msg)
{
	const struct marks_slot *s = m ? marks_find(m, digest) : NULL;

	if (!s)
		return MARKS_NEWER;
	if (s->m.counter == msg->counter && memcmp(s->m.key_id, msg->key_id, ENV_KEY_ID_LEN) == 0)
		return MARKS_SAME;
	return marks_newer(msg, &s->m) ? MARKS_NEWER : MARKS_OLDER;
}

bool marks_record(struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN], const struct mark *msg)
{
	struct marks_slot *s;

	if (!m)
		return false;
	s = marks_find(m, digest);
	if (s) {
		if (marks_newer(msg, &s->m)) {
			s->m = *msg;
			m->dirty = true;
		}
		return true;
	}
	if (m->count >= MARKS_MAX)
		return false;
	if (2 * (m->count + 1) > m->cap && marks_grow(m) != 0)
		return false;
	marks_put(m, digest, msg);
	m->dirty = true;
	return true;
}

uint64_t marks_will_time(struct marks *m, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter,
			 uint64_t now_ms)
{
	struct marks_will *w;
	size_t i;

	if (!m || (!m->wills && !(m->wills = calloc(MARKS_WILLS, sizeof(*m->wills)))))
		return now_ms; /* no memory: ordered as received now (a replay could pass as new) */
	for (i = 0; i < MARKS_WILLS; i++) {
		w = &m->wills[i];
		if (w->first_ms && w->counter == counter && memcmp(w->key_id, key_id, ENV_KEY_ID_LEN) == 0)
			return w->first_ms;
	}
	w = &m->wills[m->wills_next];
	m->wills_next = (m->wills_next + 1) % MARKS_WILLS;
	memcpy(w->key_id, key_id, ENV_KEY_ID_LEN);
	w->counter = counter;
	w->first_ms = now_ms ? now_ms : 1;
	return w->first_ms;
}

size_t marks_count(const struct marks *m)
{
	return m ? m->count : 0;
}

bool marks_dirty(const struct marks *m)
{
	return m && m->dirty;
}

/* ---- the file ---- */

static void marks_hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int marks_unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	unsigned v;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int marks_write(const struct marks *m, FILE *f)
{
	char dh[2 * MARKS_DIGEST_LEN + 1], kh[2 * ENV_KEY_ID_LEN + 1];
	size_t i;

	if (fprintf(f, "%s\n", MARKS_MAGIC) < 0)
		return -1;
	for (i = 0; i < m->cap; i++) {
		const struct marks_slot *s = &m->slots[i];
		if (!s->used)
			continue;
		marks_hex(dh, s->digest, MARKS_DIGEST_LEN);
		marks_hex(kh, s->m.key_id, ENV_KEY_ID_LEN);
		if (fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", dh, s->m.sealed_at, s->m.epoch,
			    s->m.counter, kh) < 0)
			return -1;
	}
	return 0;
}

int marks_save(struct marks *m, const char *path)
{
	char tmp[4096];
	FILE *f = NULL;
	int rc = -1, fd;

	if (!m || !path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		goto out;
	}
	if (marks_write(m, f) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
		goto out;
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		goto out;
	m->dirty = false;
	rc = 0;
out:
	if (f)
		fclose(f);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static void marks_line(struct marks *m, const char *line)
{
	char dh[2 * MARKS_DIGEST_LEN + 2], kh[2 * ENV_KEY_ID_LEN + 2];
	uint8_t digest[MARKS_DIGEST_LEN];
	struct mark msg;

	if (sscanf(line, "%33s %" SCNu64 " %" SCNu64 " %" SCNu64 " %17s", dh, &msg.sealed_at, &msg.epoch,
		   &msg.counter, kh) != 5)
		return;
	if (marks_unhex(dh, digest, MARKS_DIGEST_LEN) != 0 || marks_unhex(kh, msg.key_id, ENV_KEY_ID_LEN) != 0)
		return;
	(void)marks_record(m, digest, &msg);
}

int marks_load(struct marks *m, const char *path)
{
	char line[MARKS_LINE];
	FILE *f;

	if (!m || !path)
		return -1;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	if (fgets(line, sizeof(line), f) && strncmp(line, MARKS_MAGIC, strlen(MARKS_MAGIC)) == 0)
		while (fgets(line, sizeof(line), f))
			marks_line(m, line);
	fclose(f);
	m->dirty = false;
	return 0;
}
