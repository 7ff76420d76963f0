/* sim_node.c - one simulated node: its identity, its configuration (a shallow copy of the run's
 * template with its own node id and peers), its clocks, and the real key-exchange core it runs:
 * start and crash (only the last persisted state survives), configuration reloads, the timer the
 * core asks for, the actions it queues (carried out through the simulated network, or failed as
 * the fault plan says), and the messages it seals through the key ring. */
#include <stdlib.h>
#include <string.h>

#include "keyring.h"
#include "sim_fleet_internal.h"

static int build_conf(struct sim_fleet *f, struct sim_node *n, int slot)
{
	size_t i, k = 0;
	struct conf_peer *cp = calloc(n->ntopo ? n->ntopo : 1, sizeof(*cp));

	if (!cp)
		return -1;
	for (i = 0; i < n->ntopo; i++) {
		struct sim_node *p = &f->n[n->topo[i]];

		if (!n->trusts[i])
			continue;
		cp[k].id = p->id;
		cp[k].public_key = p->pub;
		cp[k].line = (unsigned)(i + 1);
		k++;
	}
	free(n->cpeers[slot]);
	n->cpeers[slot] = cp;
	n->conf[slot] = *f->tmpl;
	n->conf[slot].node_id = n->id;
	n->conf[slot].peers = cp;
	n->conf[slot].npeers = k;
	return 0;
}

static uint32_t node_rng(void *arg)
{
	return (uint32_t)sim_rng_next(arg);
}

int sim_node_init_(struct sim_fleet *f, struct sim_node *n)
{
	uint8_t raw[ID_PUB_LEN];
	size_t i;

	sim_rng_seed(&n->rng_core, f->o->seed, 100 + 2 * (uint64_t)n->idx);
	sim_rng_seed(&n->rng_misc, f->o->seed, 101 + 2 * (uint64_t)n->idx);
	n->skew_ms = f->plan ? f->plan->skew_ms[n->idx] : 0;
	n->mono_off = sim_rng_range(&n->rng_misc, 1000000, 1000000000); /* boot time of its host */
	n->backoff_ms = 1000;
	n->trusts = calloc(n->ntopo ? n->ntopo : 1, sizeof(*n->trusts));
	n->rm = calloc(n->ntopo ? n->ntopo : 1, sizeof(*n->rm));
	n->max_epoch = calloc(n->ntopo ? n->ntopo : 1, sizeof(*n->max_epoch));
	if (!n->trusts || !n->rm || !n->max_epoch)
		return -1;
	for (i = 0; i < n->ntopo; i++)
		n->trusts[i] = true;
	if (id_key_generate(&n->key) != PX_OK || id_key_public(n->key, raw) != PX_OK)
		return -1;
	id_pub_encode(raw, n->pub);
	if (build_conf(f, n, 0) != 0)
		return -1;
	n->env = (struct kx_env){ .conf = &n->conf[0], .id = n->key, .stats = &n->stats,
				  .rng = node_rng, .rng_arg = &n->rng_core, .persist_path = n->id };
	return 0;
}

void sim_node_free_(struct sim_node *n)
{
	kx_core_free(n->core);
	id_key_free(n->key);
	free(n->topo);
	free(n->trusts);
	free(n->rm);
	free(n->max_epoch);
	free(n->cpeers[0]);
	free(n->cpeers[1]);
	free(n->state);
	sim_msg_free(n->will);
	free(n->activated);
	free(n->activated_at);
	free(n->activated_ev);
}

size_t sim_slot_(const struct sim_fleet *f, const struct sim_node *n, uint32_t peer)
{
	uint32_t k[2] = { n->idx, peer };
	const uint32_t *v = sim_map_get(f->slots, (const char *)k, sizeof(k));

	return v ? (size_t)(v - n->topo) : n->ntopo;
}

/* The core's next wakeup as a timer event (at least 1 ms ahead: a core that keeps asking for
 * "now" cannot stall the simulated clock). */
static void arm(struct sim_fleet *f, struct sim_node *n)
{
	uint64_t w, t;

	if (!n->core)
		return;
	w = kx_core_next_wakeup(n->core);
	t = w > n->mono_off ? w - n->mono_off : 0;
	if (t <= f->now)
		t = f->now + 1;
	if (n->timer_armed && n->timer_at <= t)
		return;
	n->timer_armed = true;
	n->timer_at = t;
	sim_push_(f, t, EV_TIMER, n->idx, ++n->timer_gen, NULL);
}

static struct sim_pkt *pkt_filters(enum sim_pkt_type type, const struct kx_action *a)
{
	struct sim_pkt *p = calloc(1, sizeof(*p));
	size_t i;

	if (!p)
		return NULL;
	p->type = type;
	p->filters = calloc(a->nfilters ? a->nfilters : 1, sizeof(char *));
	if (!p->filters) {
		free(p);
		return NULL;
	}
	p->nfilters = a->nfilters;
	for (i = 0; i < a->nfilters; i++) {
		p->filters[i] = strdup(a->filters[i]);
		if (!p->filters[i]) {
			sim_pkt_free_(p);
			return NULL;
		}
	}
	return p;
}

/* Carries out one packet action; false if it could not be (connection down). */
static bool act_send(struct sim_fleet *f, struct sim_node *n, const struct kx_action *a)
{
	struct sim_pkt *p;

	if (a->type == KX_ACT_PUBLISH) {
		p = calloc(1, sizeof(*p));
		if (p) {
			p->type = PKT_PUBLISH;
			p->msg = sim_msg_new(a->topic, a->data, a->len, a->retain);
		}
		if (p && !p->msg) {
			free(p);
			p = NULL;
		}
		sim_trace_(f, "%s publish %s (%zu B%s)", n->id, a->topic, a->len, a->retain ? ", retained" : "");
	} else {
		p = pkt_filters(a->type == KX_ACT_SUBSCRIBE ? PKT_SUBSCRIBE : PKT_UNSUBSCRIBE, a);
		sim_trace_(f, "%s %s %zu filters (first %s)", n->id,
			   a->type == KX_ACT_SUBSCRIBE ? "subscribe" : "unsubscribe", a->nfilters,
			   a->nfilters ? a->filters[0] : "-");
	}
	if (!p) {
		sim_violation_(f, "out of memory");
		return false;
	}
	if (sim_net_send_(f, n, p) != 0) {
		sim_trace_(f, "%s   refused: connection down", n->id);
		return false;
	}
	return true;
}

static void act_persist(struct sim_fleet *f, struct sim_node *n, const struct kx_action *a, bool *failed)
{
	char *s;

	if (sim_fault_persist_fails(f->plan, &n->rng_misc, f->now)) {
		sim_trace_(f, "%s persist FAILS (fault)", n->id);
		*failed = true;
		return;
	}
	s = malloc(a->len + 1);
	if (!s) {
		sim_violation_(f, "out of memory");
		*failed = true;
		return;
	}
	memcpy(s, a->data, a->len);
	s[a->len] = '\0';
	free(n->state);
	n->state = s;
	sim_trace_(f, "%s persist %zu B", n->id, a->len);
}

static void act_will(struct sim_fleet *f, struct sim_node *n, const struct kx_action *a)
{
	sim_msg_free(n->will);
	n->will = a->data ? sim_msg_new(a->topic, a->data, a->len, a->retain) : NULL;
	sim_trace_(f, "%s set will %s", n->id, a->data ? a->topic : "(none)");
}

static void act_activated(struct sim_fleet *f, struct sim_node *n)
{
	uint64_t e = 0;

	if (!keyring_active(kx_core_keyring(n->core), &e))
		return;
	if (n->nactivated == n->capactivated) {
		size_t ncap = n->capactivated ? n->capactivated * 2 : 16;
		uint64_t *a = realloc(n->activated, ncap * sizeof(*a));
		uint64_t *t = a ? realloc(n->activated_at, ncap * sizeof(*t)) : NULL;
		uint64_t *v = t ? realloc(n->activated_ev, ncap * sizeof(*v)) : NULL;

		if (a)
			n->activated = a;
		if (t)
			n->activated_at = t;
		if (!a || !t || !v) {
			sim_violation_(f, "out of memory");
			return;
		}
		n->activated_ev = v;
		n->capactivated = ncap;
	}
	n->activated[n->nactivated] = e;
	n->activated_ev[n->nactivated] = f->r->events;
	n->activated_at[n->nactivated++] = f->now;
	sim_trace_(f, "%s activated epoch %llu", n->id, (unsigned long long)e);
	sim_check_activated_(f, n);
}

/* Drains the core's actions in order. */
static void drain(struct sim_fleet *f, struct sim_node *n)
{
	struct kx_action a;
	struct kx_now now = sim_now_of_(f, n);

	while (n->core && kx_core_next_action(n->core, &a)) {
		bool failed = false;

		switch (a.type) {
		case KX_ACT_PUBLISH:
		case KX_ACT_SUBSCRIBE:
		case KX_ACT_UNSUBSCRIBE:
			failed = !act_send(f, n, &a);
			break;
		case KX_ACT_PERSIST:
			act_persist(f, n, &a, &failed);
			break;
		case KX_ACT_KEYS_CHANGED:
			sim_check_keys_(f, n);
			break;
		case KX_ACT_ACTIVATED:
			act_activated(f, n);
			break;
		case KX_ACT_SET_WILL:
			act_will(f, n, &a);
			break;
		}
		if (failed)
			kx_core_action_failed(n->core, &now);
	}
	if (n->core) {
		uint64_t e;

		if (keyring_newest(kx_core_keyring(n->core), &e) && e > n->newest)
			n->newest = e;
	}
	f->r->core_calls++;
}

void sim_node_start_(struct sim_fleet *f, struct sim_node *n)
{
	struct kx_now now = sim_now_of_(f, n);
	char err[256] = "";

	if (n->core)
		return;
	sim_trace_(f, "%s start%s", n->id, n->state ? " (persisted state)" : "");
	n->core = kx_core_new(&n->env, n->state, &now, err, sizeof(err));
	if (!n->core) {
		sim_violation_(f, "%s: kx_core_new failed: %s", n->id, err);
		return;
	}
	n->started = true;
	n->life++;
	f->keys_dirty = true;
	drain(f, n);
	arm(f, n);
	sim_net_connect_start_(f, n);
	if (f->o->seals_per_s)
		sim_push_(f, f->now + sim_rng_range(&n->rng_misc, 1, 1000 / f->o->seals_per_s), EV_SEAL, n->idx,
			  n->life, NULL);
}

void sim_node_crash_(struct sim_fleet *f, struct sim_node *n, bool host, uint32_t down_ms)
{
	if (!n->core)
		return;
	sim_trace_(f, "%s CRASH (%s), back in %u ms", n->id, host ? "host" : "process", down_ms);
	kx_core_free(n->core);
	n->core = NULL;
	f->keys_dirty = true;
	n->timer_gen++;
	n->timer_armed = false;
	if (n->conn != CONN_DOWN)
		sim_net_cut_(f, n, !host);
	n->conn = CONN_DOWN;
	n->attempt++;
	sim_msg_free(n->will);
	n->will = NULL;
	sim_push_(f, f->now + down_ms, EV_NODE_START, n->idx, 0, NULL);
}

void sim_node_stop_(struct sim_fleet *f, struct sim_node *n, uint32_t down_ms)
{
	struct kx_event ev = { .type = KX_EV_STOP };

	if (!n->core)
		return;
	sim_trace_(f, "%s STOP (clean), back in %u ms", n->id, down_ms);
	sim_node_handle_(f, n, &ev); /* presence offline, on its way before the DISCONNECT */
	sim_net_disconnect_(f, n);
	sim_node_crash_(f, n, false, down_ms);
}

/* Picks the slot a reload removes (which-th trusted one) or adds back (the last removed). */
static size_t reload_slot(struct sim_node *n, bool add, uint32_t which)
{
	size_t i, k = 0, count = 0;

	if (add)
		return n->nremoved ? n->removed_stack[--n->nremoved] : n->ntopo;
	for (i = 0; i < n->ntopo; i++)
		count += n->trusts[i];
	if (!count || n->nremoved == sizeof(n->removed_stack) / sizeof(n->removed_stack[0]))
		return n->ntopo;
	which %= (uint32_t)count;
	for (i = 0; i < n->ntopo; i++)
		if (n->trusts[i] && k++ == which)
			break;
	n->removed_stack[n->nremoved++] = i;
	return i;
}

void sim_node_reload_(struct sim_fleet *f, struct sim_node *n, bool add, uint32_t which)
{
	size_t slot = reload_slot(n, add, which);
	struct kx_now now = sim_now_of_(f, n);
	int next = 1 - n->cur;
	char err[256] = "";

	if (slot == n->ntopo)
		return;
	n->trusts[slot] = add;
	f->keys_dirty = true;
	n->rm[slot] = (struct sim_removal){ .active = !add, .at = f->now, .ev = f->r->events, .newest_at_reload = n->newest };
	f->removals += !add;
	sim_trace_(f, "%s RELOAD: %s peer %s", n->id, add ? "adds back" : "removes", f->n[n->topo[slot]].id);
	if (build_conf(f, n, next) != 0) {
		sim_violation_(f, "out of memory");
		return;
	}
	if (n->core && kx_core_reload(n->core, &now, &n->conf[next], err, sizeof(err)) != 0) {
		sim_violation_(f, "%s: kx_core_reload refused a valid configuration: %s", n->id, err);
		return;
	}
	n->env.conf = &n->conf[next];
	n->cur = next;
	if (n->core) {
		drain(f, n);
		arm(f, n);
	}
	if (!add)
		sim_sabotage_removed_(f, n, &f->n[n->topo[slot]]);
}

void sim_node_handle_(struct sim_fleet *f, struct sim_node *n, const struct kx_event *ev)
{
	struct kx_now now = sim_now_of_(f, n);

	if (!n->core)
		return;
	if (kx_core_handle(n->core, &now, ev) != 0)
		sim_trace_(f, "%s   event %d not understood", n->id, (int)ev->type);
	drain(f, n);
	arm(f, n);
}

void sim_node_tick_(struct sim_fleet *f, struct sim_node *n, uint64_t gen)
{
	struct kx_now now = sim_now_of_(f, n);

	if (gen != n->timer_gen || !n->core)
		return;
	n->timer_armed = false;
	kx_core_tick(n->core, &now);
	drain(f, n);
	arm(f, n);
}

void sim_node_seal_(struct sim_fleet *f, struct sim_node *n, uint64_t life)
{
	static const uint8_t payload[] = "sensor reading 21.5 C";
	struct kx_now now = sim_now_of_(f, n);
	struct kx_event ev = { .type = KX_EV_SEALED };
	struct keyring *kr;
	uint8_t out[512];
	size_t len;
	enum px_err e;

	if (life != n->life || !n->core)
		return;
	sim_push_(f, f->now + 1000 / f->o->seals_per_s + sim_rng_below(&n->rng_misc, 50), EV_SEAL, n->idx, life, NULL);
	if (!kx_core_can_seal(n->core, &now))
		return;
	kr = kx_core_keyring(n->core);
	len = keyring_sealed_size(kr, 0, sizeof(payload));
	if (len > sizeof(out)) {
		sim_violation_(f, "sealed size %zu", len);
		return;
	}
	e = keyring_seal(kr, now.mono_ms, now.wall_ms, 0, (const uint8_t *)n->id, strlen(n->id), NULL, 0, payload,
			 sizeof(payload), out, len);
	if (e != PX_OK) {
		sim_violation_(f, "%s: kx_core_can_seal said yes but keyring_seal failed: %s", n->id, px_strerror(e));
		return;
	}
	f->r->seals++;
	if (sim_check_seal_(f, n, out, len) != 0)
		return;
	if (f->o->sabotage == SAB_NONCE && f->r->seals == 100 && sim_check_seal_(f, n, out, len) != 0)
		return; /* the same (key, nonce) recorded twice */
	sim_node_handle_(f, n, &ev);
}
