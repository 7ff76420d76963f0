/* kx_core.c - the sans-I/O core's epochs (PROTOCOL.md §9): the first epoch once the control
 * connection is up, rotation every interval (jittered) or at the soft usage limits,
 * make-before-break activation (all live peers confirmed, or the activation delay), announcing and
 * re-issuing (debounced), and the housekeeping tick (expiry, gauges). What arrives from peers is
 * handled in kx_core_rx.c; the life cycle and queries are in kx_core_life.c. Time comes in as
 * kx->now, outputs go to the action queue (kx_core_queue.c). */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "conf.h"
#include "policy.h"
#include "stats.h"

/* A uniform 32-bit value from the environment's source (the simulation's seeded PRNG). */
static uint32_t kx_random(const struct kx_core *kx)
{
	uint32_t r = 0;

	if (kx->env.rng)
		return kx->env.rng(kx->env.rng_arg);
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return 0;
	return r;
}

static uint64_t kx_interval_ms(const struct kx_core *kx)
{
	return (uint64_t)kx->conf->keyex.interval_seconds * 1000u;
}

/* Activation delay: keyex.activation_seconds, at most T/2 (PROTOCOL.md §14). */
static uint64_t kx_activation_ms(const struct kx_core *kx)
{
	uint64_t ms = (uint64_t)kx->conf->keyex.activation_seconds * 1000u;

	return ms < kx_interval_ms(kx) / 2 ? ms : kx_interval_ms(kx) / 2;
}

/* Next rotation: T - U(0, min(T/20, 30 s)) after now (R30). */
static uint64_t kx_next_rotation(const struct kx_core *kx, uint64_t now)
{
	uint64_t t = kx_interval_ms(kx), span = t / 20 < 30000 ? t / 20 : 30000;

	if (span)
		return now + t - kx_random(kx) % span;
	return now + t;
}

/* The first rotation after start: uniform in [T/2, T), so that a fleet started together does not
 * keep rotating together (the jitter of R30 alone would keep them within 30 s of each other). */
static uint64_t kx_first_rotation(const struct kx_core *kx, uint64_t now)
{
	uint64_t half = kx_interval_ms(kx) / 2;

	if (half)
		return now + half + kx_random(kx) % half;
	return now + kx_interval_ms(kx);
}

void kx_reject_(struct kx_core *kx, struct kx_peer *peer, int reason, const char *fmt, ...)
{
	struct log_limit *lim = peer ? &peer->reject_log : &kx->log_reject;
	struct log_fields f = {0};
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];
	char msg[256];
	va_list ap;

	kx->stats->rejected[reason]++;
	if (peer)
		kx_peer_rejected_(peer, reason, kx->now.wall_ms);
	if (!log_limit_allow(lim, kx->now.mono_ms, &suppressed))
		return;
	va_start(ap, fmt);
	/* clang-analyzer 14 misreads x86-64's array-typed va_list after va_start. */
	vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	f.peer_id = peer ? peer->id : NULL;
	f.reason = stats_reject_name((enum stats_reject)reason);
	log_emitf(LOG_WARN, "keyex", &f, "rejected %s: %s%s", f.reason, msg,
		  log_suppressed_note(suppressed, note));
}

void kx_keys_changed_(struct kx_core *kx)
{
	(void)kx_push_simple_(kx, KX_ACT_KEYS_CHANGED);
}

/* Live peers: their current announcement is accepted and not expired. */
static bool kx_peer_live(const struct kx_peer *p, uint64_t now_wall)
{
	return p->have_ann && now_wall <= p->ann_expires_wall;
}

bool kx_peer_live_(const struct kx_peer *p, uint64_t now_wall)
{
	return kx_peer_live(p, now_wall);
}

/* The named-group counters of sample slot i (§6.3 per group key). Without memory for them the
 * group floors fall back to the key's counter now (kx_group_floor_at_): higher, never lower. */
static void kx_sample_groups(struct kx_core *kx, size_t i)
{
	const char *g;
	size_t k;

	if (!keyring_newest_group_at(kx->kr, 0))
		return;
	if (!kx->ghist)
		kx->ghist = calloc((size_t)KX_HISTORY * KX_GROUPS_MAX, sizeof(*kx->ghist));
	for (k = 0; kx->ghist && k < KX_GROUPS_MAX && (g = keyring_newest_group_at(kx->kr, k)); k++)
		kx->ghist[i * KX_GROUPS_MAX + k] = keyring_newest_group_next_counter(kx->kr, g);
}

void kx_sample_(struct kx_core *kx)
{
	struct kx_sample *smp = &kx->hist[kx->hist_next];

	if (!keyring_newest(kx->kr, &smp->epoch))
		return;
	smp->wall_ms = kx->now.wall_ms;
	smp->counter = keyring_newest_next_counter(kx->kr);
	kx_sample_groups(kx, kx->hist_next);
	kx->hist_next = (kx->hist_next + 1) % KX_HISTORY;
	if (kx->hist_n < KX_HISTORY)
		kx->hist_n++;
}

/* The counter of key k (SIZE_MAX: the default group's, else the k-th named group's) in sample
 * slot i. */
static uint64_t kx_sampled(const struct kx_core *kx, size_t i, size_t k)
{
	return k == SIZE_MAX ? kx->hist[i].counter : kx->ghist[i * KX_GROUPS_MAX + k];
}

/* The newest epoch's counter of key k at wall_ms (rounded down to the last sample before it): 0
 * if the epoch began after that moment, the oldest sample if history does not reach back that
 * far. */
static uint64_t kx_floor_of(const struct kx_core *kx, size_t k, uint64_t wall_ms)
{
	uint64_t newest, floor = 0;
	size_t i, slot;

	if (wall_ms == 0 || !keyring_newest(kx->kr, &newest))
		return 0;
	for (i = 1; i <= kx->hist_n; i++) {
		slot = (kx->hist_next + KX_HISTORY - i) % KX_HISTORY;
		if (kx->hist[slot].epoch != newest)
			return 0; /* wall_ms is before the newest epoch began: all of it is later */
		floor = kx_sampled(kx, slot, k);
		if (kx->hist[slot].wall_ms <= wall_ms)
			return floor;
	}
	return floor;
}

uint64_t kx_floor_at_(const struct kx_core *kx, uint64_t wall_ms)
{
	return kx_floor_of(kx, SIZE_MAX, wall_ms);
}

uint64_t kx_group_floor_at_(const struct kx_core *kx, size_t k, uint64_t wall_ms)
{
	const char *g = keyring_newest_group_at(kx->kr, k);

	if (!kx->ghist || k >= KX_GROUPS_MAX)
		return wall_ms == 0 ? 0 : keyring_newest_group_next_counter(kx->kr, g);
	return kx_floor_of(kx, k, wall_ms);
}

const struct conf_group *kx_group_(const struct kx_core *kx, const char *name)
{
	size_t i;

	for (i = 0; name && i < kx->conf->ngroups; i++)
		if (strcmp(kx->conf->groups[i].name, name) == 0)
			return &kx->conf->groups[i];
	return NULL;
}

static bool kx_ids_have(char *const *ids, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

bool kx_group_reader_(const struct conf_group *g, const char *id)
{
	return g && kx_ids_have(g->readers, g->nreaders, id);
}

bool kx_group_writer_(const struct conf_group *g, const char *id)
{
	return !g->has_writers || kx_ids_have(g->writers, g->nwriters, id);
}

bool kx_group_sealed_(const struct kx_core *kx, const struct conf_group *g)
{
	return kx_group_writer_(g, kx->conf->node_id);
}

/* The entries of p's message (§7.2): only when we know its current ephemeral key (its
 * announcement is live) and that key is usable, else none (p learns our ephemeral key); then the
 * default group's, and one per named group of the newest epoch that p reads, in that order. */
static size_t kx_recipient(struct kx_core *kx, struct kx_peer *p, struct ann_recipient r[ANN_MAX_ENTRIES])
{
	const char *g;
	size_t n = 1, k;

	p->wrapped_valid = false;
	if (!kx_peer_live(p, kx->now.wall_ms) || p->eph_weak)
		return 0;
	r[0].id = p->id;
	memcpy(r[0].eph_pub, p->eph_pub, KEX_PUB_LEN);
	r[0].acked_epoch = p->held_epoch;
	r[0].counter_floor = kx_floor_at_(kx, p->epoch_start_wall);
	for (k = 0; n < ANN_MAX_ENTRIES && (g = keyring_newest_group_at(kx->kr, k)); k++) {
		/* §11.1: a group's key is wrapped only for its readers */
		if (!kx_group_reader_(kx_group_(kx, g), p->id))
			continue;
		r[n] = r[0];
		r[n].group = g;
		r[n].secret = keyring_newest_group_secret(kx->kr, g);
		r[n].counter_floor = kx_group_floor_at_(kx, k, p->epoch_start_wall);
		if (r[n].secret)
			n++;
	}
	p->wrapped_valid = true;
	memcpy(p->wrapped_to, p->eph_pub, KEX_PUB_LEN);
	return n;
}

/* The rev of p's next message of epoch: 0 for the first of an epoch, one more for each re-issue
 * (rev counts per (epoch, recipient); the wrap nonce is 0^4 || u64(rev) under a key of both
 * ephemeral keys, so (key, nonce) never repeats). */
static uint32_t kx_next_rev(struct kx_peer *p, uint64_t epoch, bool reissue)
{
	if (p->out_epoch != epoch) {
		p->out_epoch = epoch;
		p->rev_out = 0;
		p->out_sent = false;
	} else if (reissue && p->out_sent) {
		p->rev_out++;
	}
	return p->rev_out;
}

static void kx_announce_sent(struct kx_core *kx, struct kx_peer *p, const struct ann_params *ap)
{
	p->announce_due = false;
	p->out_sent = true;
	p->announced_mono = kx->now.mono_ms;
	p->announced_wall = ap->issued_at_ms;
	kx->stats->announcements_sent++;
	log_emit(LOG_DEBUG, "keyex", NULL, NULL, "announced epoch %" PRIu64 " rev %" PRIu32 " to %s (%zu entries)",
		 ap->epoch, ap->rev, p->id, ap->nrecipients);
}

/* Builds, signs and queues our announcement to p: <prefix>/kx/<p>/<me>, retained. */
void kx_announce_peer_(struct kx_core *kx, struct kx_peer *p, bool reissue)
{
	struct ann_recipient r[ANN_MAX_ENTRIES] = {0};
	struct ann_params ap = {0};
	char topic[KX_TOPIC_MAX], tbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	enum px_err rc = PX_ERR_TOO_LARGE;

	if (!kx->up || !keyring_newest(kx->kr, &ap.epoch)) {
		p->announce_due = true;
		return;
	}
	ap.sender_id = kx->conf->node_id;
	ap.flags = ap.epoch == kx->revoke_epoch ? ANN_FLAG_REVOKE : 0;
	ap.rev = kx_next_rev(p, ap.epoch, reissue);
	ap.issued_at_ms = kx->now.wall_ms;
	ap.interval_s = kx->conf->keyex.interval_seconds;
	ap.eph = keyring_newest_eph(kx->kr);
	ap.secret = keyring_newest_secret(kx->kr);
	ap.recipients = r;
	ap.nrecipients = kx_recipient(kx, p, r);
	if (kx_topic_(kx, topic, "kx", p->id, kx->conf->node_id) == 0)
		signed_topic = kx_signed_topic_(kx, topic, tbuf);
	if (signed_topic)
		rc = ann_build(kx->env.id, signed_topic, &ap, &buf, &len);
	if (rc != PX_OK || kx_push_publish_(kx, topic, buf, len, true, KX_TAG_ANNOUNCE, p->id) != 0) {
		log_error("keyex", "cannot announce epoch %" PRIu64 " to %s: %s", ap.epoch, p->id,
			  rc != PX_OK ? px_strerror(rc) : "publish failed");
		p->announce_due = true;
	} else {
		kx_announce_sent(kx, p, &ap);
	}
	if (reissue) {
		p->reissue_pending = false;
		p->reissue_last_mono = kx->now.mono_ms;
	}
	free(buf);
}

/* Our announcement to every peer (a rotation, a new connection). */
void kx_announce_(struct kx_core *kx, bool reissue)
{
	size_t i;

	kx_sample_(kx);
	for (i = 0; i < kx->npeers; i++)
		kx_announce_peer_(kx, &kx->peers[i], reissue);
}

/* Debounced re-issue to one peer (R37): the first goes out at once, later ones at most once per
 * second. */
void kx_request_reissue_(struct kx_core *kx, struct kx_peer *p)
{
	if (kx->now.mono_ms - p->reissue_last_mono >= KX_REISSUE_DEBOUNCE_MS) {
		kx_sample_(kx);
		kx_announce_peer_(kx, p, true);
	} else {
		p->reissue_pending = true;
	}
}

/* p confirmed holding our epochs up to acked: activation counts the peers it waits for. */
void kx_set_acked_(struct kx_core *kx, struct kx_peer *p, uint64_t acked)
{
	uint64_t pending;
	bool had, has;

	if (p->must_confirm && keyring_pending(kx->kr, &pending)) {
		had = p->acked >= pending;
		has = acked >= pending;
		if (had && !has)
			kx->unconfirmed++;
		else if (!had && has && kx->unconfirmed)
			kx->unconfirmed--;
	}
	p->acked = acked;
}

/* The peers activation still waits for, counted afresh (a rotation, a reload). */
void kx_count_unconfirmed_(struct kx_core *kx)
{
	uint64_t pending;
	size_t i;

	kx->unconfirmed = 0;
	if (!keyring_pending(kx->kr, &pending))
		return;
	for (i = 0; i < kx->npeers; i++)
		if (kx->peers[i].must_confirm && kx->peers[i].acked < pending)
			kx->unconfirmed++;
}

static void kx_activate(struct kx_core *kx, const char *how)
{
	uint64_t epoch = 0;
	bool had_active = keyring_active(kx->kr, &epoch);

	if (keyring_epoch_activate(kx->kr, kx->now.mono_ms) != PX_OK)
		return;
	keyring_active(kx->kr, &epoch);
	kx->activate_at_mono = 0;
	kx->stats->activations++;
	kx->stats->current_epoch = epoch;
	if (had_active)
		kx->stats->epochs_erased++; /* the previous sending key */
	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.epoch = epoch, .has_epoch = true},
		  "epoch %" PRIu64 " active (%s)%s", epoch, how,
		  had_active ? "; previous sending key erased" : "");
	(void)kx_push_simple_(kx, KX_ACT_ACTIVATED);
	kx_keys_changed_(kx);
}

void kx_check_activation_(struct kx_core *kx)
{
	uint64_t pending;

	if (!keyring_pending(kx->kr, &pending) || kx->unconfirmed > 0)
		return;
	kx_activate(kx, "confirmed by every live peer");
}

/* §4.2: the new (pending) epoch's key of every named group this node seals for, each from its own
 * secret. A group whose key cannot be made has none in this epoch: its messages are refused
 * until the next (fail closed). */
static void kx_epoch_groups(struct kx_core *kx, uint64_t epoch)
{
	size_t i;

	for (i = 0; i < kx->conf->ngroups; i++) {
		const struct conf_group *g = &kx->conf->groups[i];
		if (kx_group_sealed_(kx, g) && keyring_epoch_add_group(kx->kr, g->name) != PX_OK)
			log_error("keyex", "epoch %" PRIu64 ": cannot create the key of group %s", epoch, g->name);
	}
}

/* Starts a new epoch (PROTOCOL.md §9.2, §9.5): persisted before it is announced. */
void kx_rotate_(struct kx_core *kx, const char *why)
{
	uint64_t now = kx->now.mono_ms, wall_s = kx->now.wall_ms / 1000, active = 0, epoch;
	bool has_active = keyring_active(kx->kr, &active);
	size_t i;

	epoch = kx->state_epoch + 1 > wall_s ? kx->state_epoch + 1 : wall_s;
	kx->state_epoch = epoch;
	(void)kx_push_persist_(kx); /* before the announcement: a restart must not reuse the epoch */
	if (keyring_epoch_create(kx->kr, epoch, now) != PX_OK) {
		log_error("keyex", "cannot create epoch %" PRIu64 "; retrying at the next tick", epoch);
		return;
	}
	kx_epoch_groups(kx, epoch);
	kx->epoch_created_mono = now;
	if (kx->revoking)
		kx->revoke_epoch = epoch; /* its messages carry REVOKE, re-issues too */
	kx_sample_(kx);
	kx->rotate_at_mono = has_active ? kx_next_rotation(kx, now) : kx_first_rotation(kx, now);
	kx->stats->rotations++;
	kx->stats->last_rotation_wall_ms = kx->now.wall_ms;
	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.epoch = epoch, .has_epoch = true},
		  "epoch %" PRIu64 " started (%s)", epoch, why);
	if (!has_active) {
		kx_activate(kx, "first epoch");
	} else {
		kx->activate_at_mono = now + kx_activation_ms(kx);
		for (i = 0; i < kx->npeers; i++)
			kx->peers[i].must_confirm =
				kx->peers[i].acked >= active && !kx_pres_away(&kx->peers[i].pres);
		kx_count_unconfirmed_(kx);
	}
	kx_announce_(kx, false);
	if (kx->revoking) { /* a removed peer held the previous key: no make-before-break (§9.6) */
		kx->revoking = false;
		kx_activate(kx, "a peer was removed: the new key at once");
		return;
	}
	kx_check_activation_(kx);
}

/* Keyed: p's announcement is live and we hold the key of its epoch. The receive key's lifetime is
 * mirrored here (held_until_mono), so that no keyring scan is needed per peer. */
bool kx_peer_keyed_(const struct kx_peer *p, const struct kx_now *now)
{
	return kx_peer_live(p, now->wall_ms) && p->held_epoch == p->epoch && p->held_epoch != 0 &&
	       now->mono_ms < p->held_until_mono;
}

size_t kx_core_peers_keyed(const struct kx_core *kx, const struct kx_now *now)
{
	size_t i, keyed = 0;

	for (i = 0; i < kx->npeers; i++)
		keyed += kx_peer_keyed_(&kx->peers[i], now);
	return keyed;
}

static void kx_expire_peers(struct kx_core *kx, uint64_t now_wall)
{
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		if (p->have_ann && now_wall > p->ann_expires_wall) {
			p->have_ann = false;
			log_warn("keyex", "peer %s: announcement of epoch %" PRIu64 " expired (peer down?)", p->id,
				 p->epoch);
		}
	}
}

static void kx_expire_keys(struct kx_core *kx, uint64_t now)
{
	struct keyring_stats st;
	size_t before;

	keyring_get_stats(kx->kr, &st);
	before = st.recv_keys;
	keyring_expire(kx->kr, now);
	keyring_get_stats(kx->kr, &st);
	if (st.recv_keys < before) {
		kx->stats->epochs_erased += before - st.recv_keys;
		log_info("keyex", "%zu expired receive key(s) erased", before - st.recv_keys);
	}
}

/* Per peer: a due message (not sent on this connection yet), a debounced re-issue whose second
 * came, or (flush) every pending re-issue at once. Returns how many re-issues were pending. */
static size_t kx_tick_peers(struct kx_core *kx, uint64_t now, bool flush)
{
	size_t i, pending = 0;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		bool reissue_now = p->reissue_pending &&
				   (flush || now - p->reissue_last_mono >= KX_REISSUE_DEBOUNCE_MS);
		pending += p->reissue_pending;
		if (reissue_now || p->announce_due) {
			kx_sample_(kx);
			kx_announce_peer_(kx, p, true);
		}
	}
	return pending;
}

/* Rotation, re-issues or due announcements, while the connection is up. */
static void kx_tick_announce(struct kx_core *kx, uint64_t now)
{
	uint64_t pending;
	bool has_pending = keyring_pending(kx->kr, &pending);
	bool rotate_due = (!has_pending || kx->revoking) &&
			  (now >= kx->rotate_at_mono || keyring_wants_rotation(kx->kr));

	/* A pending re-issue goes before a rotation, even inside its debounce (PROTOCOL.md §7.4):
	 * a peer lacks the current key, and what is sealed under it meanwhile waits at that peer
	 * (R35) for a wrap that the rotation would never send. The rotation follows a tick later. */
	if (kx_tick_peers(kx, now, rotate_due) == 0 && rotate_due)
		kx_rotate_(kx, now >= kx->rotate_at_mono ? "interval" : "usage limit");
}

/* Subscribes again to the topics of the peers marked refetch (kx_core_groups.c): the broker sends
 * their retained announcements again (MQTT 3.1.1 §3.8.4), accepted once more (kx_fresh). */
static void kx_refetch(struct kx_core *kx)
{
	static struct log_limit lim;
	struct kx_batch b = {.type = KX_ACT_SUBSCRIBE};
	unsigned suppressed = 0;
	size_t i;

	for (i = 0; i < kx->npeers; i++)
		if (kx->peers[i].refetch && kx_peer_filters_(kx, &b, &kx->peers[i]) != 0)
			b.rc = -1;
	/* failed: tried again at the next tick, or it would wait for the next rotation */
	kx->refetch_due = kx_batch_flush_(kx, &b) != 0;
	if (!kx->refetch_due)
		kx->refetch_until_mono = kx->now.mono_ms + KX_REFETCH_MS;
	else if (log_limit_allow(&lim, kx->now.mono_ms, &suppressed))
		log_warn("keyex", "cannot ask the broker for the announcements of groups we now read");
}

void kx_core_tick(struct kx_core *kx, const struct kx_now *now)
{
	kx->now = *now;
	kx->last_tick_mono = now->mono_ms;
	kx_sample_(kx);
	kx_expire_keys(kx, now->mono_ms);
	kx_expire_peers(kx, now->wall_ms);
	if (kx->persist_due)
		(void)kx_push_persist_(kx);
	if (kx->up)
		kx_tick_announce(kx, now->mono_ms);
	if (kx->up && kx->refetch_due)
		kx_refetch(kx);
	if (kx->activate_at_mono && now->mono_ms >= kx->activate_at_mono)
		kx_activate(kx, "activation delay passed");
	kx_process_pending_(kx);
	kx->stats->peers_keyed = kx_core_peers_keyed(kx, now);
	kx->stats->peers_present = kx_core_peers_present(kx);
	kx_peers_tick_(kx);
}

uint64_t kx_core_next_wakeup(const struct kx_core *kx)
{
	return kx->last_tick_mono + KX_TICK_MS;
}

void kx_on_up_(struct kx_core *kx)
{
	char own[KX_TOPIC_MAX];
	const char *subs[2] = {kx->topic_ack_sub, own};
	size_t n = 1;
	uint64_t epoch;

	kx->up = true;
	if (kx->refetch_due) { /* every peer's topic is subscribed to below */
		kx->refetch_due = false;
		kx->refetch_until_mono = kx->now.mono_ms + KX_REFETCH_MS;
	}
	kx->stats->control_connected = 1;
	if (kx_pres_on_(kx) && kx_pres_topic(kx->conf->keyex.topic_prefix, kx->conf->node_id, own, sizeof(own)))
		n = 2; /* our own presence too: its retained copy is repaired if it says otherwise */
	if (kx_push_filters_(kx, KX_ACT_SUBSCRIBE, subs, n) != 0 || kx_subscribe_peers_(kx, false) != 0)
		log_error("keyex", "cannot subscribe to the key-exchange topics");
	kx_pres_say_(kx, true);
	kx_forget_pending_(kx);
	if (!keyring_newest(kx->kr, &epoch))
		kx_rotate_(kx, "start");
	else if (kx->revoking) /* a reload removed a peer while we were away: its epoch first */
		kx_rotate_(kx, "peer removed");
	else if (!keyring_newest_secret(kx->kr) || !keyring_newest_eph(kx->kr))
		kx_rotate_(kx, "the newest key reached its limits while the connection was down");
	else
		kx_announce_(kx, true); /* the broker may have lost it: say it again, fresh */
}

void kx_on_down_(struct kx_core *kx)
{
	kx->up = false;
	kx->stats->control_connected = 0;
	kx->stats->control_reconnects++;
}

/* Soft usage limits reached by a seal: rotate now (if no epoch is pending and we can announce). */
void kx_on_sealed_(struct kx_core *kx)
{
	uint64_t pending;

	if (keyring_wants_rotation(kx->kr) && !keyring_pending(kx->kr, &pending) && kx->up)
		kx_rotate_(kx, "usage limit");
}
