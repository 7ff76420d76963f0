/* keyex_peers.c - the per-peer state kept for operators, the `wg show` of mqseal: for each
 * configured peer, whether it is keyed and why not, the epochs held both ways, when its last
 * announcement, confirmation and rejection came, and its messages opened and dropped. Read by
 * GET /peers, `mqseal status`, the per-peer metrics and /readyz (docs/OPERATIONS.md §8). Also the
 * warning that names the cause on the victim's side when a peer's announcements have no entry
 * for this node (the cause itself is logged on the other node, maybe another team's). */
#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "control.h"
#include "keyex_internal.h"
#include "keyfile.h"
#include "conf.h"

/* A peer that lists us wraps to us within a re-issue or two of seeing our announcement (the
 * debounce is KEYEX_REISSUE_DEBOUNCE_MS, our own may be KEYEX_IN_FLIGHT_MS on its way): after this
 * long without an entry for us, it is not on its way. */
#define KEYEX_NO_ENTRY_WARN_MS 5000

void keyex_peer_rejected_(struct kx_peer *p, int reason)
{
	if (reason == REJECT_RATE_LIMITED)
		return; /* deferred, not refused */
	p->last_reject = (unsigned)reason + 1;
	p->last_reject_wall = clock_wall_ms();
}

void keyex_peer_entry_(struct kx_peer *p, bool has_entry, bool eph_known)
{
	p->last_ann_wall = clock_wall_ms();
	p->unknown_key = has_entry && !eph_known;
	p->no_entry = !has_entry;
	if (has_entry)
		p->no_entry_mono = 0;
	else if (!p->no_entry_mono)
		p->no_entry_mono = clock_mono_ms();
}

/* The victim's side of a one-sided configuration: name both nodes and the key the other must list. */
static void keyex_warn_no_entry(struct keyex *kx, struct kx_peer *p)
{
	const char *me = kx->ctx->conf->node_id;
	char key[ID_PUB_TEXT_LEN + 1];

	if (keyfile_public_text(kx->id, key) != PX_OK)
		snprintf(key, sizeof(key), "?");
	log_warn("keyex",
		 "peer %s announces epoch %" PRIu64 " without an entry for this node %s: %s does not list %s "
		 "as a peer, or lists it with another key (it must list { id = \"%s\"; public_key = \"%s\"; "
		 "}); "
		 "its log says unknown_peer or bad_signature for %s",
		 p->id, p->epoch, me, p->id, me, me, key, me);
}

void keyex_peers_tick_(struct keyex *kx, uint64_t now_mono)
{
	uint64_t wall = clock_wall_ms();
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		if (!p->no_entry || !p->no_entry_mono || !keyex_peer_live_(p, wall))
			continue;
		if (now_mono - p->no_entry_mono < KEYEX_NO_ENTRY_WARN_MS || p->no_entry_epoch == p->epoch)
			continue;
		p->no_entry_epoch = p->epoch;
		keyex_warn_no_entry(kx, p);
	}
}

/* The reasons an operator acts on, under the names status and /peers use. */
static const char *keyex_reject_why(unsigned last_reject)
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

static const char *keyex_peer_why(const struct kx_peer *p, bool live, bool keyed)
{
	bool rejected_since = p->last_reject && p->last_reject_wall >= p->last_ann_wall;

	if (keyed)
		return "keyed";
	if (live && p->no_entry)
		return "no_entry";
	if (live && p->unknown_key)
		return "unknown_key";
	if (rejected_since)
		return keyex_reject_why(p->last_reject);
	if (p->last_ann_wall || p->have_ann)
		return "stale"; /* its last announcement expired: the peer is down or cut off */
	return "never_announced";
}

void keyex_public_text(const struct keyex *kx, char *out, size_t len)
{
	char key[ID_PUB_TEXT_LEN + 1];

	if (len == 0)
		return;
	out[0] = '\0';
	if (keyfile_public_text(kx->id, key) == PX_OK && strlen(key) < len)
		memcpy(out, key, strlen(key) + 1);
}

size_t keyex_peer_count(const struct keyex *kx)
{
	return kx->npeers;
}

void keyex_peer_info(const struct keyex *kx, size_t i, struct keyex_peer_info *out)
{
	const struct kx_peer *p = &kx->peers[i];
	bool live = keyex_peer_live_(p, clock_wall_ms());
	uint64_t held = 0;

	memset(out, 0, sizeof(*out));
	out->id = p->id;
	out->keyed = live && keyring_recv_has(kx->kr, p->id, p->epoch);
	out->why = keyex_peer_why(p, live, out->keyed);
	out->last_rejected = p->last_reject ? keyex_reject_why(p->last_reject) : NULL;
	out->their_epoch = p->last_ann_wall || p->have_ann ? p->epoch : 0;
	out->their_epoch_held = keyring_recv_newest(kx->kr, p->id, &held) ? held : 0;
	out->our_epoch_held = p->acked;
	out->last_announcement_ms = p->last_ann_wall;
	out->last_confirmation_ms = p->last_ack_wall;
	out->last_rejected_ms = p->last_reject_wall;
	out->opened = p->opened;
	out->dropped = p->dropped;
}

void keyex_peer_count_message(struct keyex *kx, const char *sender, int reason)
{
	struct kx_peer *p;

	if (!kx || !sender || strcmp(sender, kx->ctx->conf->node_id) == 0)
		return;
	p = keyex_peer_(kx, sender, strlen(sender));
	if (!p)
		return;
	if (reason < 0)
		p->opened++;
	else if (reason < DROP__COUNT)
		p->dropped[reason]++;
}

uint64_t keyex_ignored_not_a_peer(const struct keyex *kx)
{
	return kx->ignored_not_a_peer;
}

int keyex_ready(const struct keyex *kx, size_t need, char *reason, size_t len)
{
	uint64_t keyed = kx->ctx->stats->peers_keyed;

	if (!control_is_up(kx->ctl)) {
		snprintf(reason, len, "key-exchange connection to the broker is down");
		return 0;
	}
	if (need > kx->npeers)
		need = kx->npeers;
	if (keyed < need) {
		snprintf(reason, len, "%" PRIu64 " of %zu peers keyed, %zu needed (readiness.ready_when)",
			 keyed, kx->npeers, need);
		return 0;
	}
	return 1;
}
