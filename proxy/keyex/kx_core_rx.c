/* kx_core_rx.c - announcements and confirmations from peers (PROTOCOL.md §7.3, §7.4, §8): cheap
 * checks first, signature verification under a rate limit, then key installation, confirmation,
 * and the re-issue that keys a new or restarted peer. */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "stats.h"
#include "conf.h"

/* A peer is suspect for KX_SUSPECT_MS after a bad signature on its topics: failed
 * verifications are charged to it (a smaller burst, a capped share of the overall budget), not to
 * every peer (PROTOCOL.md §7.3 step 5). */
static bool kx_suspect(const struct kx_peer *p, uint64_t now)
{
	return p->failed_mono != 0 && now - p->failed_mono < KX_SUSPECT_MS;
}

/* Token buckets (R44): per peer KX_BUCKET_BURST (KX_SUSPECT_BURST while suspect), one more
 * per second, announcements and confirmations apart (a rotation brings one of each per peer);
 * KX_GLOBAL_PER_S overall, of which suspect peers together get KX_GLOBAL_SUSPECT_PER_S. */
static bool kx_bucket_ready(struct kx_core *kx, const struct kx_peer *p, unsigned *tokens, uint64_t *at,
			       uint64_t now)
{
	bool suspect = kx_suspect(p, now);
	unsigned cap = suspect ? KX_SUSPECT_BURST : KX_BUCKET_BURST;
	uint64_t refill = (now - *at) / KX_BUCKET_MS;

	if (refill) {
		*tokens = *tokens + refill > cap ? cap : *tokens + (unsigned)refill;
		*at = now;
	}
	if (*tokens > cap)
		*tokens = cap;
	if (now - kx->global_window_start >= 1000) {
		kx->global_window_start = now;
		kx->global_count = 0;
		kx->global_suspect = 0;
	}
	return *tokens > 0 && kx->global_count < KX_GLOBAL_PER_S &&
	       (!suspect || kx->global_suspect < KX_GLOBAL_SUSPECT_PER_S);
}

static bool kx_bucket_take(struct kx_core *kx, const struct kx_peer *p, unsigned *tokens, uint64_t *at,
			      uint64_t now)
{
	if (!kx_bucket_ready(kx, p, tokens, at, now))
		return false;
	(*tokens)--;
	kx->global_count++;
	if (kx_suspect(p, now))
		kx->global_suspect++;
	return true;
}

/* A verification on p's topics failed: p is suspect, and its topic contested. */
static void kx_charge_failure(struct kx_peer *p, uint64_t now_mono)
{
	p->failed_mono = p->contested_mono = now_mono;
}

static void kx_deferred_free(struct kx_deferred *d)
{
	free(d->buf);
	free(d->topic);
	memset(d, 0, sizeof(*d));
}

void kx_peer_drop_deferred_(struct kx_peer *p)
{
	size_t i;

	kx_deferred_free(&p->ann_retained);
	for (i = 0; i < KX_DEFERRED_MAX; i++)
		kx_deferred_free(&p->ann_live[i]);
	kx_deferred_free(&p->pending_ack);
}

/* A copy of a message in d; -1 (d empty) when out of memory. */
static int kx_copy(struct kx_deferred *d, const char *topic, const uint8_t *payload, size_t len)
{
	d->buf = malloc(len);
	d->topic = strdup(topic);
	d->len = len;
	if (!d->buf || !d->topic) {
		kx_deferred_free(d);
		return -1;
	}
	memcpy(d->buf, payload, len);
	return 0;
}

/* Keeps the newest rate-limited confirmation for later. */
static void kx_defer(struct kx_deferred *d, const char *topic, const uint8_t *payload, size_t len)
{
	struct kx_deferred copy;

	if (kx_copy(&copy, topic, payload, len) != 0)
		return;
	kx_deferred_free(d);
	*d = copy;
}

/* Keeps a rate-limited announcement for later (PROTOCOL.md §7.3 step 5). A retained delivery (the
 * broker's copy, replayed to a subscription: MQTT 3.1.1 §3.3.1.3) replaces the retained candidate
 * only; a live one goes first among the live ones, and the oldest of KX_DEFERRED_MAX is
 * dropped unverified (the topic is then contested: the retained copy will be asked for again). */
static void kx_defer_ann(struct kx_peer *p, const char *topic, const uint8_t *payload, size_t len, bool retained,
			 uint64_t now_mono)
{
	struct kx_deferred d;

	if (kx_copy(&d, topic, payload, len) != 0)
		return;
	if (retained) {
		kx_deferred_free(&p->ann_retained);
		p->ann_retained = d;
		return;
	}
	if (p->ann_live[KX_DEFERRED_MAX - 1].buf) {
		kx_deferred_free(&p->ann_live[KX_DEFERRED_MAX - 1]);
		p->contested_mono = now_mono;
	}
	memmove(&p->ann_live[1], &p->ann_live[0], (KX_DEFERRED_MAX - 1) * sizeof(d));
	p->ann_live[0] = d;
}

static bool kx_ann_waiting(const struct kx_peer *p)
{
	return p->ann_retained.buf || p->ann_live[0].buf;
}

/* Moves p's best waiting announcement to out (the caller frees it): the retained candidate, then
 * the live ones newest first. */
static bool kx_next_ann(struct kx_peer *p, struct kx_deferred *out)
{
	if (p->ann_retained.buf) {
		*out = p->ann_retained;
		memset(&p->ann_retained, 0, sizeof(p->ann_retained));
		return true;
	}
	if (!p->ann_live[0].buf)
		return false;
	*out = p->ann_live[0];
	memmove(&p->ann_live[0], &p->ann_live[1], (KX_DEFERRED_MAX - 1) * sizeof(*out));
	memset(&p->ann_live[KX_DEFERRED_MAX - 1], 0, sizeof(*out));
	return true;
}

static void kx_send_ack(struct kx_core *kx, struct kx_peer *p, uint64_t epoch)
{
	const struct px_conf *conf = kx->conf;
	char topic[256], tbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	uint8_t *buf = NULL;
	size_t len = 0;

	snprintf(topic, sizeof(topic), "%s/ack/%s/%s", conf->keyex.topic_prefix, p->id, conf->node_id);
	signed_topic = kx_signed_topic_(kx, topic, tbuf);
	if (signed_topic &&
	    ack_build(kx->env.id, signed_topic, conf->node_id, p->id, epoch, kx->now.wall_ms, &buf, &len) == PX_OK &&
	    kx_push_publish_(kx, topic, buf, len, false, KX_TAG_ACK, NULL) == 0)
		kx->stats->acks_sent++;
	free(buf);
}

/* A peer confirmed holding our epoch (in an entry or a confirmation). */
static void kx_peer_acked(struct kx_core *kx, struct kx_peer *p, uint64_t epoch)
{
	uint64_t active;

	if (epoch > p->acked)
		kx_set_acked_(kx, p, epoch);
	if (!kx->ready && keyring_active(kx->kr, &active) && p->acked >= active) {
		kx->ready = true;
		log_emitf(LOG_INFO, "keyex",
			  &(struct log_fields){.peer_id = p->id, .epoch = active, .has_epoch = true},
			  "peer %s holds our key (epoch %" PRIu64 "): sealing", p->id, active);
		kx_keys_changed_(kx);
	}
	kx_check_activation_(kx);
}

/* Step 8: the entry addressed to us, unwrapped with the ephemeral key it names. */
static void kx_install_from(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a,
			       const struct ann_entry *e)
{
	const struct kex_key *eph = keyring_eph_for(kx->kr, e->recipient_eph);
	uint8_t secret[ANN_SECRET_LEN];
	enum px_err rc;

	if (!eph || p->held_epoch == a->epoch)
		return; /* wrapped to an ephemeral key we no longer hold, or already installed */
	rc = ann_unwrap(a, e, kx->conf->node_id, eph, secret);
	if (rc == PX_OK)
		rc = keyring_recv_install(kx->kr, p->id, a->epoch, secret, a->interval_s, e->counter_floor,
					  kx->now.mono_ms);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc != PX_OK) {
		kx_reject_(kx, p, REJECT_BAD_WRAP, "peer %s epoch %" PRIu64 ": %s", p->id, a->epoch, px_strerror(rc));
		return;
	}
	if (a->epoch > p->held_epoch) {
		p->held_epoch = a->epoch; /* the key ring's lifetime of it (§9.6), mirrored */
		p->held_until_mono = kx->now.mono_ms + (uint64_t)a->interval_s * 1500u +
				     (uint64_t)kx->conf->keyex.grace_seconds * 1000u;
	}
	log_emitf(LOG_INFO, "keyex",
		  &(struct log_fields){.peer_id = p->id, .epoch = a->epoch, .has_epoch = true},
		  "peer %s keyed (epoch %" PRIu64 ")", p->id, a->epoch);
	kx_send_ack(kx, p, a->epoch);
	kx_keys_changed_(kx);
}

/* Step 8 for one named-group entry e: installed, tagged with its group, if this node reads the
 * group (its own configuration) and holds the ephemeral key it is wrapped to; an entry of a
 * group this node does not read is ignored and logged: the two configurations differ. Returns
 * whether a key was installed. */
static bool kx_install_group(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a,
			     const struct ann_entry *e)
{
	const struct kex_key *eph = keyring_eph_for(kx->kr, e->recipient_eph);
	uint8_t secret[ANN_SECRET_LEN];
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];
	enum px_err rc;

	if (!kx_group_reader_(kx_group_(kx, e->group), kx->conf->node_id)) {
		kx->ignored_group_entries++;
		if (log_limit_allow(&kx->log_group, kx->now.mono_ms, &suppressed))
			log_emitf(LOG_WARN, "keyex", &(struct log_fields){.peer_id = p->id},
				  "peer %s wraps its key of group %s for us, which our configuration does not "
				  "let us read: ignored (the fleet's groups differ)%s",
				  p->id, e->group, log_suppressed_note(suppressed, note));
		return false;
	}
	if (!eph || keyring_recv_has_group(kx->kr, p->id, a->epoch, e->group))
		return false;
	rc = ann_unwrap(a, e, kx->conf->node_id, eph, secret);
	if (rc == PX_OK)
		rc = keyring_recv_install_group(kx->kr, p->id, a->epoch, e->group, secret, a->interval_s,
						e->counter_floor, kx->now.mono_ms);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc != PX_OK) {
		kx_reject_(kx, p, REJECT_BAD_WRAP, "peer %s epoch %" PRIu64 " group %s: %s", p->id, a->epoch,
			   e->group, px_strerror(rc));
		return false;
	}
	return true;
}

/* Step 8 for the named-group entries (the default group's is kx_install_from). */
static void kx_install_groups(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a)
{
	struct ann_entry e;
	bool any = false;
	size_t i;

	for (i = 1; i < a->nentries; i++) {
		ann_entry_at(a, i, &e);
		if (e.group[0] != '\0' && kx_install_group(kx, p, a, &e))
			any = true;
	}
	if (any)
		kx_keys_changed_(kx);
}

/* §7.4: re-issue our message to p (only p's) when p does not hold our newest key and nothing we
 * sent it can give it. */
static void kx_maybe_reissue(struct kx_core *kx, struct kx_peer *p, bool has_entry, uint64_t entry_acked,
				uint64_t issued_at)
{
	uint64_t newest;

	if (!keyring_newest(kx->kr, &newest))
		return;
	if (has_entry && entry_acked >= newest)
		return;
	/* Our latest announcement wraps to its key: unless the peer announced well after it (so it
	 * should have seen it: it was away, e.g. reconnecting), wait while ours may still be on its
	 * way; past that, say it again. Some brokers (RabbitMQ) deliver no retained messages to a
	 * wildcard subscription, so a peer that was away never gets our announcement otherwise. */
	if (p->wrapped_valid && CRYPTO_memcmp(p->wrapped_to, p->eph_pub, KEX_PUB_LEN) == 0 &&
	    p->out_epoch == newest && kx->now.mono_ms - p->announced_mono < KX_IN_FLIGHT_MS &&
	    issued_at < p->announced_wall + KX_CROSSED_MS)
		return;
	kx_request_reissue_(kx, p);
}

/* A reload made us a reader of a group p seals, and the SUBSCRIBE that replays its retained
 * announcement went out less than KX_REFETCH_MS ago (or is still to go). */
static bool kx_refetching(const struct kx_core *kx, const struct kx_peer *p)
{
	return p->refetch && (kx->refetch_due || kx->now.mono_ms < kx->refetch_until_mono);
}

/* Freshness (step 4): strictly newer (epoch, rev), or the same one again while we hold none
 * (our own restart: the retained copy tells us the peer's ephemeral key) or after a reload made
 * us a reader of a group the peer seals (p->refetch: its entry of that group was ignored). */
static bool kx_fresh(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a, bool *duplicate)
{
	uint64_t now = kx->now.wall_ms, skew = (uint64_t)kx->conf->keyex.max_skew_seconds * 1000u;
	uint64_t max_age = (uint64_t)a->interval_s * 1500u + skew;

	*duplicate = a->epoch == p->epoch && a->rev == p->rev;
	if (a->epoch < p->epoch || (a->epoch == p->epoch && a->rev < p->rev) ||
	    (*duplicate && p->have_ann && !kx_refetching(kx, p))) {
		if (!*duplicate)
			kx_reject_(kx, p, REJECT_STALE, "peer %s epoch %" PRIu64 " rev %" PRIu32
				      " is not newer than %" PRIu64 " rev %" PRIu32 " (replay?)",
				      p->id, a->epoch, a->rev, p->epoch, p->rev);
		return false;
	}
	if (a->issued_at_ms > now + skew) {
		kx_reject_(kx, p, REJECT_CLOCK_SKEW, "peer %s issued its announcement %" PRIu64
			      " ms in the future (more than keyex.max_skew_seconds): check its clock (NTP)",
			      p->id, a->issued_at_ms - now);
		return false;
	}
	if (a->issued_at_ms + max_age < now) {
		kx_reject_(kx, p, REJECT_EXPIRED, "peer %s announcement of epoch %" PRIu64 " is %" PRIu64
			      " s old (stale, or the peer's clock is behind)", p->id, a->epoch, (now - a->issued_at_ms) / 1000);
		return false;
	}
	return true;
}

/* An X25519 result with the peer's key must not be all-zero (R8); checked once per new key. */
static bool kx_eph_ok(struct kx_core *kx, const uint8_t eph_pub[KEX_PUB_LEN])
{
	const struct kex_key *mine = keyring_newest_eph(kx->kr);
	uint8_t shared[KEX_SHARED_LEN];
	enum px_err rc;

	if (!mine)
		return true;
	rc = kex_derive(mine, eph_pub, shared);
	OPENSSL_cleanse(shared, sizeof(shared));
	return rc != PX_ERR_WEAK_KEY;
}

/* REVOKE (§9.6): p removed a node, which holds p's older epoch keys and could seal with them:
 * those keys open messages only keyex.revoke_seconds more here. */
static void kx_revoke_older(struct kx_core *kx, struct kx_peer *p, uint64_t epoch)
{
	uint64_t bound = (uint64_t)kx->conf->keyex.revoke_seconds * 1000u;
	size_t n = keyring_recv_shorten(kx->kr, p->id, epoch, kx->now.mono_ms + bound);

	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.peer_id = p->id, .epoch = epoch, .has_epoch = true},
		  "peer %s announced epoch %" PRIu64 " with REVOKE (it removed a node): %zu older key(s) of it "
		  "erased in %u s",
		  p->id, epoch, n, kx->conf->keyex.revoke_seconds);
	if (p->held_epoch < epoch && p->held_until_mono > kx->now.mono_ms + bound)
		p->held_until_mono = kx->now.mono_ms + bound;
}

static void kx_accept(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a)
{
	uint64_t skew = (uint64_t)kx->conf->keyex.max_skew_seconds * 1000u;
	struct ann_entry e;
	bool has_entry, new_epoch = a->epoch != p->epoch;

	p->epoch = a->epoch;
	p->rev = a->rev;
	p->have_ann = true;
	p->refetch = false;
	p->interval_s = a->interval_s;
	p->ann_expires_wall = a->issued_at_ms + (uint64_t)a->interval_s * 1500u + skew;
	memcpy(p->eph_pub, a->eph_pub, KEX_PUB_LEN);
	p->eph_weak = false;
	kx->stats->announcements_accepted++;
	kx->persist_due = true; /* written at the next tick: one file write for many announcements */
	has_entry = ann_find_entry(a, kx->conf->node_id, &e);
	kx_peer_entry_(p, has_entry, has_entry && keyring_eph_for(kx->kr, e.recipient_eph), &kx->now);
	if (new_epoch)
		kx_set_acked_(kx, p, 0); /* a new epoch of the peer says afresh what it holds */
	if (new_epoch && (a->flags & ANN_FLAG_REVOKE))
		kx_revoke_older(kx, p, a->epoch);
	/* The counter floor of our wraps to it (§6.3): a peer that holds no key of ours (it restarted,
	 * or is new) may have delivered our messages before; it counts from when its epoch began. A
	 * peer that still holds an older key of ours never had our newest one, so never delivered a
	 * message sealed under it: floor 0. */
	if (new_epoch || !p->floor_known) {
		bool none = !has_entry || e.acked_epoch == 0;
		/* A peer that rotates while it still holds none of our keys (it restarted, and our
		 * re-issue has not reached it yet) delivered nothing of ours since its earlier start: the
		 * floor stays at that start, or what we sealed in between would be refused as a replay. */
		if (!(none && p->floor_known && p->holds_none && p->epoch_start_wall))
			p->epoch_start_wall = none ? a->issued_at_ms : 0;
		p->floor_known = true;
	}
	p->holds_none = !has_entry || e.acked_epoch == 0;
	if (has_entry) {
		kx_install_from(kx, p, a, &e);
		kx_install_groups(kx, p, a);
		kx_peer_acked(kx, p, e.acked_epoch);
	}
	kx_maybe_reissue(kx, p, has_entry, has_entry ? e.acked_epoch : 0, a->issued_at_ms);
}

static void kx_run_ann(struct kx_core *kx, struct kx_peer *p);

/* Step 5: true if the announcement may be verified now; otherwise it is kept for later (and p's
 * best waiting ones are verified first while p's budget allows). */
static bool kx_ann_admit(struct kx_core *kx, struct kx_peer *p, const char *topic, const uint8_t *buf,
			    size_t len, bool retained)
{
	uint64_t now = kx->now.mono_ms;
	bool ready = kx_bucket_ready(kx, p, &p->tokens, &p->tokens_at, now);

	if (ready && !kx_ann_waiting(p))
		return kx_bucket_take(kx, p, &p->tokens, &p->tokens_at, now);
	kx_defer_ann(p, topic, buf, len, retained, now);
	if (!ready)
		kx->stats->rejected[REJECT_RATE_LIMITED]++; /* deferred, not lost */
	else
		kx_run_ann(kx, p);
	return false;
}

/* Step 3 (v2): the sender is the topic's last level, and the entry, if any, is addressed to the
 * topic's recipient (us): a message for someone else is never unwrapped or counted as ours. */
static bool kx_ann_addressed(struct kx_core *kx, struct kx_peer *p, const struct ann_view *a)
{
	struct ann_entry e;

	if (strcmp(a->sender_id, p->id) != 0) {
		kx_reject_(kx, p, REJECT_WRONG_TOPIC, "announcement of %s published on the topic of %s", a->sender_id,
			   p->id);
		return false;
	}
	/* §7.3 step 3: every entry (one per group, §7.2) must be addressed to this node. */
	for (size_t i = 0; i < a->nentries; i++) {
		ann_entry_at(a, i, &e);
		if (strcmp(e.recipient_id, kx->conf->node_id) != 0) {
			kx_reject_(kx, p, REJECT_WRONG_TOPIC, "announcement of %s to %s published on our topic",
				   p->id, e.recipient_id);
			return false;
		}
	}
	return true;
}

/* Steps 3-8 for an announcement on <prefix>/kx/<me>/<id> from configured peer p (from_pending: taken
 * from p's waiting ones, with a token already checked for). */
static void kx_on_announce(struct kx_core *kx, struct kx_peer *p, const char *topic, const uint8_t *buf,
			      size_t len, bool retained, bool from_pending)
{
	struct ann_view a;
	char tbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	bool duplicate;
	enum px_err rc = ann_parse(buf, len, &a);

	if (rc != PX_OK) {
		kx_reject_(kx, p, rc == PX_ERR_VERSION ? REJECT_VERSION : REJECT_MALFORMED,
			      "announcement from %s: %s", p->id, px_strerror(rc));
		return;
	}
	if (!kx_ann_addressed(kx, p, &a))
		return;
	if (!kx_fresh(kx, p, &a, &duplicate))
		return;
	if (from_pending ? !kx_bucket_take(kx, p, &p->tokens, &p->tokens_at, kx->now.mono_ms)
			 : !kx_ann_admit(kx, p, topic, buf, len, retained))
		return;
	signed_topic = kx_signed_topic_(kx, topic, tbuf);
	if (!signed_topic || ann_verify(&a, p->pub, signed_topic) != PX_OK) {
		kx_charge_failure(p, kx->now.mono_ms);
		kx_reject_(kx, p, REJECT_BAD_SIGNATURE, "announcement of %s epoch %" PRIu64 ": bad signature",
			      p->id, a.epoch);
		return;
	}
	if (!kx_eph_ok(kx, a.eph_pub)) {
		kx_reject_(kx, p, REJECT_MALFORMED, "announcement of %s: small-order ephemeral key", p->id);
		return;
	}
	if (p->epoch != a.epoch)
		log_emitf(LOG_INFO, "keyex",
			  &(struct log_fields){.peer_id = p->id, .epoch = a.epoch, .has_epoch = true},
			  "peer %s announced epoch %" PRIu64, p->id, a.epoch);
	kx_accept(kx, p, &a);
}

static void kx_on_ack(struct kx_core *kx, struct kx_peer *p, const char *topic, const uint8_t *buf, size_t len,
			 bool from_pending)
{
	uint64_t now = kx->now.wall_ms, newest = 0, active = 0;
	uint64_t window = (uint64_t)kx->conf->keyex.max_skew_seconds * 1000u + KX_ACK_SLACK_MS;
	struct ack_view a;
	char tbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	enum px_err rc = ack_parse(buf, len, &a);

	if (rc != PX_OK) {
		kx_reject_(kx, p, rc == PX_ERR_VERSION ? REJECT_VERSION : REJECT_MALFORMED, "confirmation from %s: %s",
			      p->id, px_strerror(rc));
		return;
	}
	if (strcmp(a.sender_id, p->id) != 0 || strcmp(a.recipient_id, kx->conf->node_id) != 0) {
		kx_reject_(kx, p, REJECT_WRONG_TOPIC, "confirmation on the wrong topic %s", topic);
		return;
	}
	if (a.issued_at_ms > now + window || a.issued_at_ms + window < now) {
		kx_reject_(kx, p, REJECT_CLOCK_SKEW, "confirmation from %s outside the time window", p->id);
		return;
	}
	keyring_newest(kx->kr, &newest);
	keyring_active(kx->kr, &active);
	if (a.acked_epoch != newest && a.acked_epoch != active)
		return; /* about an epoch we have left behind: nothing to do */
	if (!kx_bucket_take(kx, p, &p->ack_tokens, &p->ack_tokens_at, kx->now.mono_ms)) {
		if (!from_pending)
			kx_defer(&p->pending_ack, topic, buf, len);
		kx->stats->rejected[REJECT_RATE_LIMITED]++; /* deferred, not lost */
		return;
	}
	signed_topic = kx_signed_topic_(kx, topic, tbuf);
	if (!signed_topic || ack_verify(&a, p->pub, signed_topic) != PX_OK) {
		kx_charge_failure(p, kx->now.mono_ms);
		kx_reject_(kx, p, REJECT_BAD_SIGNATURE, "confirmation from %s: bad signature", p->id);
		return;
	}
	kx->stats->acks_accepted++;
	p->last_ack_wall = kx->now.wall_ms;
	kx_peer_acked(kx, p, a.acked_epoch);
}

/* Splits <prefix>/kx/<me>/<id> or <prefix>/ack/<me>/<id>; returns the peer or NULL (rejected or
 * ignored). */
static struct kx_peer *kx_topic_peer(struct kx_core *kx, const char *topic, bool *is_ack)
{
	const char *rest = topic + kx->prefix_len, *id;
	const char *me = kx->conf->node_id;
	size_t melen = strlen(me);

	*is_ack = false;
	if (strncmp(rest, "/kx/", 4) == 0 && strncmp(rest + 4, me, melen) == 0 && rest[4 + melen] == '/') {
		id = rest + 5 + melen;
	} else if (strncmp(rest, "/ack/", 5) == 0 && strncmp(rest + 5, me, melen) == 0 && rest[5 + melen] == '/') {
		id = rest + 6 + melen;
		*is_ack = true;
	} else {
		kx_reject_(kx, NULL, REJECT_WRONG_TOPIC, "a message on %s, not addressed to this node", topic);
		return NULL;
	}
	if (strcmp(id, me) == 0)
		return NULL; /* our own announcement: ignored */
	struct kx_peer *p = kx_peer_(kx, id, strlen(id));
	/* Only peers' topics are subscribed to (v2); an announcement of another node can only come
	 * from a subscription of an earlier configuration: counted apart, not a failure. A
	 * confirmation addressed to us by a node we do not list is one (it believes we are its peer). */
	if (!p && !*is_ack)
		kx->ignored_not_a_peer++;
	else if (!p)
		kx_reject_(kx, NULL, REJECT_UNKNOWN_PEER, "confirmation from %s, which is not a configured peer", id);
	return p;
}

bool kx_bucket_take_ann_(struct kx_core *kx, struct kx_peer *p)
{
	return kx_bucket_take(kx, p, &p->tokens, &p->tokens_at, kx->now.mono_ms);
}

void kx_on_message_(struct kx_core *kx, const char *topic, const uint8_t *payload, size_t len, bool retained)
{
	struct kx_peer *p;
	bool is_ack;

	if (strncmp(topic, kx->conf->keyex.topic_prefix, kx->prefix_len) != 0) {
		return; /* not a key-exchange topic: the adapter hands those to the data path */
	}
	if (strncmp(topic + kx->prefix_len, "/presence/", 10) == 0) {
		kx_on_presence_(kx, topic, topic + kx->prefix_len + 10, payload, len);
		return;
	}
	p = kx_topic_peer(kx, topic, &is_ack);
	if (!p)
		return;
	if (len == 0) {
		/* A cleared retained announcement: the peer withdrew its announcement to us (it removed
		 * this node from its configuration, or stopped for good). Not live until the next one. */
		if (!is_ack && p->have_ann) {
			p->have_ann = false;
			log_info("keyex", "peer %s withdrew its announcement to this node (removed it?)", p->id);
		}
		return;
	}
	if (len > ANN_MAX_LEN + 64) {
		kx_reject_(kx, p, REJECT_MALFORMED, "%zu-byte message from %s is too large", len, p->id);
		return;
	}
	if (is_ack)
		kx_on_ack(kx, p, topic, payload, len, false);
	else
		kx_on_announce(kx, p, topic, payload, len, retained, false);
}

/* Verifies p's waiting announcements, best first, while its budget allows (each one either costs
 * a token or is dropped by the cheap checks: the loop ends). */
static void kx_run_ann(struct kx_core *kx, struct kx_peer *p)
{
	struct kx_deferred m;
	size_t n;

	for (n = 0; n < KX_DEFERRED_MAX + 1 && kx_ann_waiting(p); n++) {
		if (!kx_bucket_ready(kx, p, &p->tokens, &p->tokens_at, kx->now.mono_ms) || !kx_next_ann(p, &m))
			return;
		kx_on_announce(kx, p, m.topic, m.buf, m.len, false, true);
		kx_deferred_free(&m);
	}
}

/* Asks the broker for the retained announcements again (a new SUBSCRIBE to the same filter
 * replaces the old one and replays them, MQTT 3.1.1 §3.8.4) when some peer's topic is contested
 * and no retained candidate of it waits: a live flood can push the peer's real announcement out
 * of the live candidates, but not out of the broker's retained copy, which is verified first. */
static void kx_rerequest(struct kx_core *kx, uint64_t now)
{
	struct kx_batch b = {.type = KX_ACT_SUBSCRIBE};
	const struct kx_peer *who = NULL;
	size_t i;

	if (now - kx->rerequest_mono < KX_REREQUEST_MS || !kx->up)
		return;
	for (i = 0; i < kx->npeers && !who; i++) {
		const struct kx_peer *p = &kx->peers[i];
		if (p->contested_mono && now - p->contested_mono < KX_SUSPECT_MS && !p->ann_retained.buf)
			who = p;
	}
	if (!who)
		return;
	kx->rerequest_mono = now;
	if (kx_peer_filters_(kx, &b, who) != 0 || kx_batch_flush_(kx, &b) != 0)
		log_warn("keyex", "cannot ask the broker for the retained announcements again");
	else
		log_debug("keyex", "topic of peer %s contested: retained announcements asked for again", who->id);
}

/* Takes d's message if the bucket allows one now (the caller frees it). */
static bool kx_take_deferred(struct kx_core *kx, const struct kx_peer *p, struct kx_deferred *d, unsigned *tokens,
				uint64_t *at, struct kx_deferred *out)
{
	if (!d->buf || !kx_bucket_ready(kx, p, tokens, at, kx->now.mono_ms))
		return false;
	*out = *d;
	memset(d, 0, sizeof(*d));
	return true;
}

void kx_process_pending_(struct kx_core *kx)
{
	struct kx_deferred m;
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		kx_run_ann(kx, p);
		if (kx_take_deferred(kx, p, &p->pending_ack, &p->ack_tokens, &p->ack_tokens_at, &m)) {
			kx_on_ack(kx, p, m.topic, m.buf, m.len, true);
			kx_deferred_free(&m);
		}
	}
	kx_rerequest(kx, kx->now.mono_ms);
}
