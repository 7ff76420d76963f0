/* kx_core_peers.c - the per-peer state kept for operators, the `wg show` of mqseal: for each
 * configured peer, whether it is keyed and why not, the epochs held both ways, when its last
 * announcement, confirmation and rejection came, and its messages opened and dropped. Read by
 * GET /peers, `mqseal status`, the per-peer metrics and /readyz (docs/OPERATIONS.md §8). Also the
 * warning that names the cause on the victim's side when a peer's announcements have no entry
 * for this node (the cause itself is logged on the other node, maybe another team's). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kx_core_internal.h"
#include "conf.h"

/* A peer that lists us wraps to us within a re-issue or two of seeing our announcement (the
 * debounce is KX_REISSUE_DEBOUNCE_MS, our own may be KX_IN_FLIGHT_MS on its way): after this
 * long without an entry for us, it is not on its way. */
#define KX_NO_ENTRY_WARN_MS 5000

void kx_peer_rejected_(struct kx_peer *p, int reason, uint64_t now_wall)
{
	if (reason == REJECT_RATE_LIMITED)
		return; /* deferred, not refused */
	p->last_reject = (unsigned)reason + 1;
	p->last_reject_wall = now_wall;
}

void kx_peer_entry_(struct kx_peer *p, bool has_entry, bool eph_known, const struct kx_now *now)
{
	p->last_ann_wall = now->wall_ms;
	p->unknown_key = has_entry && !eph_known;
	p->no_entry = !has_entry;
	if (has_entry)
		p->no_entry_mono = 0;
	else if (!p->no_entry_mono)
		p->no_entry_mono = now->mono_ms;
}

/* The victim's side of a one-sided configuration: name both nodes and the key the other must list. */
static void kx_warn_no_entry(struct kx_core *kx, struct kx_peer *p)
{
	const char *me = kx->conf->node_id;
	char key[ID_PUB_TEXT_LEN + 1];
	uint8_t raw[ID_PUB_LEN];

	if (id_key_public(kx->env.id, raw) == PX_OK)
		id_pub_encode(raw, key);
	else
		snprintf(key, sizeof(key), "?");
	log_warn("keyex",
		 "peer %s announces epoch %" PRIu64 " without an entry for this node %s: %s does not list %s "
		 "as a peer, or lists it with another key (it must list { id = \"%s\"; public_key = \"%s\"; "
		 "}); "
		 "its log says unknown_peer or bad_signature for %s",
		 p->id, p->epoch, me, p->id, me, me, key, me);
}

void kx_peers_tick_(struct kx_core *kx)
{
	uint64_t wall = kx->now.wall_ms, now_mono = kx->now.mono_ms;
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		if (!p->no_entry || !p->no_entry_mono || !kx_peer_live_(p, wall))
			continue;
		if (now_mono - p->no_entry_mono < KX_NO_ENTRY_WARN_MS || p->no_entry_epoch == p->epoch)
			continue;
		p->no_entry_epoch = p->epoch;
		kx_warn_no_entry(kx, p);
	}
}

/* The reasons an operator acts on, under the names status and /peers use. */
static const char *kx_reject_why(unsigned last_reject)
{
	switch (last_reject - 1) {
	case REJECT_STALE:
	case REJECT_EXPIRED:
		return "stale";
	case REJECT_CLOCK_SKEW:
		return "clock_skew";
	case REJECT_BAD_SIGNATURE:
		return "bad_signature";
	default:
		return stats_reject_name((enum stats_reject)(last_reject - 1));
	}
}

static const char *kx_peer_why(const struct kx_peer *p, bool live, bool keyed)
{
	bool rejected_since = p->last_reject && p->last_reject_wall >= p->last_ann_wall;

	if (keyed)
		return "keyed";
	if (live && p->no_entry)
		return "no_entry";
	if (live && p->unknown_key)
		return "unknown_key";
	if (rejected_since)
		return kx_reject_why(p->last_reject);
	if (p->last_ann_wall || p->have_ann)
		return "stale"; /* its last announcement expired: the peer is down or cut off */
	return "never_announced";
}

size_t kx_core_peer_count(const struct kx_core *kx)
{
	return kx->npeers;
}

void kx_core_peer_info(const struct kx_core *kx, const struct kx_now *now, size_t i,
		       struct keyex_peer_info *out)
{
	const struct kx_peer *p = &kx->peers[i];
	bool live = kx_peer_live_(p, now->wall_ms);

	memset(out, 0, sizeof(*out));
	out->id = p->id;
	out->keyed = kx_peer_keyed_(p, now);
	out->why = kx_peer_why(p, live, out->keyed);
	out->present = -1;
	if (kx_pres_on_(kx) && kx_pres_state(&p->pres) != KX_PRES_UNKNOWN)
		out->present = kx_pres_state(&p->pres) == KX_PRES_ONLINE;
	if (!out->keyed && out->present == 0)
		out->why = "away";
	out->last_rejected = p->last_reject ? kx_reject_why(p->last_reject) : NULL;
	out->their_epoch = p->last_ann_wall || p->have_ann ? p->epoch : 0;
	out->their_epoch_held = p->held_epoch;
	out->our_epoch_held = p->acked;
	out->last_announcement_ms = p->last_ann_wall;
	out->last_confirmation_ms = p->last_ack_wall;
	out->last_rejected_ms = p->last_reject_wall;
	out->opened = p->opened;
	out->dropped = p->dropped;
}

void kx_core_count_message(struct kx_core *kx, const char *sender, int reason)
{
	struct kx_peer *p;

	if (!kx || !sender || strcmp(sender, kx->conf->node_id) == 0)
		return;
	p = kx_peer_(kx, sender, strlen(sender));
	if (!p)
		return;
	if (reason < 0)
		p->opened++;
	else if (reason < DROP__COUNT)
		p->dropped[reason]++;
}

uint64_t kx_core_ignored_not_a_peer(const struct kx_core *kx)
{
	return kx->ignored_not_a_peer;
}

uint64_t kx_core_ignored_group_entries(const struct kx_core *kx)
{
	return kx->ignored_group_entries;
}

bool kx_core_peer_keyed(const struct kx_core *kx, const struct kx_now *now, const char *id)
{
	const struct kx_peer *p = kx_peer_(kx, id, strlen(id));

	return p && kx_peer_keyed_(p, now);
}
