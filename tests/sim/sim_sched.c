/* sim_sched.c - a binary min-heap of events keyed by (at, seq). */
#include <stdlib.h>

#include "sim_sched.h"

struct sim_sched {
	struct sim_ev *ev;
	size_t len, cap;
	uint64_t seq, now;
};

struct sim_sched *sim_sched_new(void)
{
	return calloc(1, sizeof(struct sim_sched));
}

void sim_sched_free(struct sim_sched *s, void (*free_data)(struct sim_ev *ev))
{
	size_t i;

	if (!s)
		return;
	for (i = 0; free_data && i < s->len; i++)
		free_data(&s->ev[i]);
	free(s->ev);
	free(s);
}

static bool ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void ev_swap(struct sim_ev *a, struct sim_ev *b)
{
	struct sim_ev t = *a;

	*a = *b;
	*b = t;
}

int sim_sched_push(struct sim_sched *s, uint64_t at, int kind, uint32_t node, uint64_t gen, void *data)
{
	size_t i;

	if (s->len == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		struct sim_ev *n = realloc(s->ev, ncap * sizeof(*n));

		if (!n)
			return -1;
		s->ev = n;
		s->cap = ncap;
	}
	i = s->len++;
	s->ev[i] = (struct sim_ev){ .at = at < s->now ? s->now : at, .seq = s->seq++, .kind = kind,
				    .node = node, .gen = gen, .data = data };
	while (i > 0 && ev_before(&s->ev[i], &s->ev[(i - 1) / 2])) {
		ev_swap(&s->ev[i], &s->ev[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

static void sift_down(struct sim_sched *s)
{
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->len && ev_before(&s->ev[l], &s->ev[m]))
			m = l;
		if (r < s->len && ev_before(&s->ev[r], &s->ev[m]))
			m = r;
		if (m == i)
			return;
		ev_swap(&s->ev[i], &s->ev[m]);
		i = m;
	}
}

bool sim_sched_pop(struct sim_sched *s, struct sim_ev *out)
{
	if (!s->len)
		return false;
	*out = s->ev[0];
	s->ev[0] = s->ev[--s->len];
	sift_down(s);
	s->now = out->at;
	return true;
}

bool sim_sched_peek(const struct sim_sched *s, uint64_t *at)
{
	if (!s->len)
		return false;
	*at = s->ev[0].at;
	return true;
}

uint64_t sim_sched_now(const struct sim_sched *s)
{
	return s->now;
}

size_t sim_sched_len(const struct sim_sched *s)
{
	return s->len;
}
