/* sim_check.c - the invariants of issue 15 item 2, checked against the cores' key rings (the ground
 * truth of what each node holds) rather than against what the cores report:
 *  - trust: a node never holds a receive key of a node it does not trust (now);
 *  - rollback: the newest epoch of a sender a receiver holds never goes back, restarts included;
 *  - nonces: no (key id, counter) pair is sealed twice, over the whole fleet and run;
 *  - revocation: while a reload keeps P removed from N's peers, P holds no key of an epoch N started
 *    or activated after that reload;
 *  - keyed: every pair that trusts each other holds each other's current (active) key, within the
 *    bound after the faults end (sim_fleet.c applies the bound).
 * Key ring lookups are linear in the key ring's size, so nodes with more than SIM_SCAN_ALL peers (a
 * star's backends) are scanned at most once a second, those with more than SIM_SCAN_MAX not at
 * all for rollback, and their side of the keyed check takes the core's own per-peer keyed state
 * (kx_core_peer_keyed); the other side of each pair (the sensor's) is always checked on its key
 * ring. */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "envelope.h"
#include "keyring.h"
#include "sim_fleet_internal.h"

#define SIM_SCAN_ALL 64
#define SIM_SCAN_MAX 1024

static bool holds(struct sim_node *n, const struct sim_node *peer, uint64_t *epoch)
{
	return n->core && keyring_recv_newest(kx_core_keyring(n->core), peer->id, epoch);
}

/* Does n trust node x now? */
static bool trusts(const struct sim_fleet *f, const struct sim_node *n, uint32_t x)
{
	size_t s = sim_slot_(f, n, x);

	return s < n->ntopo && n->trusts[s];
}

static void check_untrusted(struct sim_fleet *f, struct sim_node *n)
{
	size_t i;
	uint64_t e;

	if (f->nn <= SIM_SCAN_ALL) {
		for (i = 0; i < f->nn; i++)
			if (i != n->idx && !trusts(f, n, (uint32_t)i) && holds(n, &f->n[i], &e))
				sim_violation_(f, "trust: %s holds a key of %s (epoch %" PRIu64 "), which it does not trust",
					       n->id, f->n[i].id, e);
		return;
	}
	for (i = 0; i < n->ntopo; i++) /* large fleets: the peers removed by reloads */
		if (!n->trusts[i] && holds(n, &f->n[n->topo[i]], &e))
			sim_violation_(f, "trust: %s holds a key of %s (epoch %" PRIu64 ") after removing it", n->id,
				       f->n[n->topo[i]].id, e);
}

static void check_rollback(struct sim_fleet *f, struct sim_node *n)
{
	size_t i;
	uint64_t e;

	for (i = 0; n->ntopo <= SIM_SCAN_MAX && i < n->ntopo; i++) {
		if (!n->trusts[i] || !holds(n, &f->n[n->topo[i]], &e))
			continue;
		if (e < n->max_epoch[i])
			sim_violation_(f, "rollback: %s now holds epoch %" PRIu64 " of %s as its newest, after %" PRIu64,
				       n->id, e, f->n[n->topo[i]].id, n->max_epoch[i]);
		else
			n->max_epoch[i] = e;
	}
}

/* n removed p (slot j of n) by a reload that is still in force: p must hold none of n's epochs
 * started or activated since. */
static void check_revoked(struct sim_fleet *f, const struct sim_node *n, size_t j)
{
	struct sim_node *p = &f->n[n->topo[j]];
	const struct sim_removal *rm = &n->rm[j];
	uint64_t e;
	size_t k;

	if (!rm->active || !p->core)
		return;
	if (holds(p, n, &e) && e > rm->newest_at_reload)
		sim_violation_(f, "revocation: %s holds epoch %" PRIu64 " of %s, started after %s removed it at %" PRIu64
			       " ms (newest epoch then %" PRIu64 ")", p->id, e, n->id, n->id, rm->at, rm->newest_at_reload);
	for (k = n->nactivated; k-- > 0 && n->activated_ev[k] >= rm->ev;)
		if (keyring_recv_has(kx_core_keyring(p->core), n->id, n->activated[k]))
			sim_violation_(f, "revocation: %s holds epoch %" PRIu64 " of %s, activated at %" PRIu64
				       " ms after %s removed it at %" PRIu64 " ms", p->id, n->activated[k], n->id,
				       n->activated_at[k], n->id, rm->at);
}

void sim_check_keys_(struct sim_fleet *f, struct sim_node *n)
{
	size_t i;

	f->keys_dirty = true;
	if (n->ntopo > SIM_SCAN_ALL) {
		if (f->now < n->last_scan_ms + 1000)
			return;
		n->last_scan_ms = f->now;
	}
	check_untrusted(f, n);
	check_rollback(f, n);
	if (!f->removals)
		return;
	for (i = 0; i < n->ntopo; i++) { /* did n get a key of a node that removed it? */
		const struct sim_node *m = &f->n[n->topo[i]];
		size_t j = sim_slot_(f, m, n->idx);

		if (j < m->ntopo)
			check_revoked(f, m, j);
	}
}

void sim_check_activated_(struct sim_fleet *f, struct sim_node *n)
{
	size_t j;

	f->keys_dirty = true;
	for (j = 0; f->removals && j < n->ntopo; j++)
		check_revoked(f, n, j);
}

int sim_check_seal_(struct sim_fleet *f, const struct sim_node *n, const uint8_t *env, size_t len)
{
	struct env_header h;
	uint8_t k[ENV_KEY_ID_LEN + 8];
	void *old = NULL; /* the node that sealed it first */
	size_t i;

	if (env_parse_header(env, len, &h) != PX_OK) {
		sim_violation_(f, "%s sealed an envelope that does not parse", n->id);
		return -1;
	}
	memcpy(k, h.key_id, ENV_KEY_ID_LEN);
	for (i = 0; i < 8; i++)
		k[ENV_KEY_ID_LEN + i] = (uint8_t)(h.counter >> (8 * i));
	if (sim_map_put(f->nonces, (const char *)k, sizeof(k), (void *)n, &old) != 0) {
		sim_violation_(f, "out of memory");
		return -1;
	}
	if (old) {
		sim_violation_(f, "nonce: (key id %02x%02x%02x%02x%02x%02x%02x%02x, counter %" PRIu64
			       ") sealed twice, by %s and now by %s", h.key_id[0], h.key_id[1], h.key_id[2], h.key_id[3],
			       h.key_id[4], h.key_id[5], h.key_id[6], h.key_id[7], h.counter,
			       ((const struct sim_node *)old)->id, n->id);
		return -1;
	}
	return 0;
}

/* Is the pair (n, slot i) trusting both ways, and does n lack the peer's current key? */
static bool pair_unkeyed(struct sim_fleet *f, struct sim_node *n, size_t i, bool *mutual, char *why, size_t wlen)
{
	struct sim_node *p = &f->n[n->topo[i]];
	struct kx_now now = sim_now_of_(f, n);
	uint64_t e = 0, held = 0;

	*mutual = n->trusts[i] && trusts(f, p, n->idx);
	if (!*mutual)
		return false;
	if (!n->core || !p->core) {
		snprintf(why, wlen, "%s is down", n->core ? p->id : n->id);
		return true;
	}
	if (!keyring_active(kx_core_keyring(p->core), &e)) {
		snprintf(why, wlen, "%s has no active epoch", p->id);
		return true;
	}
	if (n->ntopo > SIM_SCAN_MAX ? kx_core_peer_keyed(n->core, &now, p->id)
				    : keyring_recv_has(kx_core_keyring(n->core), p->id, e))
		return false;
	if (!wlen)
		return true; /* no reason wanted: the lookup below is linear in n's key ring */
	holds(n, p, &held);
	snprintf(why, wlen, "%s lacks epoch %" PRIu64 " of %s (its newest: %" PRIu64 "; core says %s)", n->id, e,
		 p->id, held, kx_core_peer_keyed(n->core, &now, p->id) ? "keyed" : "not keyed");
	return true;
}

size_t sim_check_unkeyed_(struct sim_fleet *f, bool print)
{
	size_t a, i, bad = 0;
	char why[256];
	bool mutual;

	for (a = 0; a < f->nn; a++) {
		struct sim_node *n = &f->n[a];

		for (i = 0; i < n->ntopo; i++) {
			if (!pair_unkeyed(f, n, i, &mutual, why, print ? sizeof(why) : 0))
				continue;
			if (print && bad < 10)
				fprintf(stderr, "  unkeyed: %s\n", why);
			bad++;
		}
	}
	return bad;
}

size_t sim_check_pairs_(const struct sim_fleet *f)
{
	size_t a, i, n = 0;

	for (a = 0; a < f->nn; a++)
		for (i = 0; i < f->n[a].ntopo; i++)
			n += f->n[a].trusts[i] && trusts(f, &f->n[f->n[a].topo[i]], (uint32_t)a);
	return n;
}

void sim_check_final_(struct sim_fleet *f)
{
	size_t a;

	for (a = 0; a < f->nn; a++) {
		f->n[a].last_scan_ms = 0;
		if (f->n[a].core)
			sim_check_keys_(f, &f->n[a]);
		sim_check_activated_(f, &f->n[a]);
	}
}
