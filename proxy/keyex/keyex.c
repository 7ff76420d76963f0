/* keyex.c - the node's epochs (PROTOCOL.md §9): the first epoch once the control connection is
 * up, rotation every interval (jittered) or at the soft usage limits, make-before-break activation
 * (all live peers confirmed, or the activation delay), announcing and re-issuing (debounced), and
 * the housekeeping tick (expiry, gauges). What arrives from peers is handled in keyex_rx.c. */
#include "keyex_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "clock.h"
#include "control.h"
#include "keyfile.h"
#include "mqtt_topic.h"
#include "policy.h"
#include "replay.h"
#include "stats.h"
#include "conf.h"

static uint64_t keyex_interval_ms(const struct keyex *kx)
{
	return (uint64_t)kx->ctx->conf->keyex.interval_seconds * 1000u;
}

/* Activation delay: keyex.activation_seconds, at most T/2 (PROTOCOL.md §14). */
static uint64_t keyex_activation_ms(const struct keyex *kx)
{
	uint64_t ms = (uint64_t)kx->ctx->conf->keyex.activation_seconds * 1000u;

	return ms < keyex_interval_ms(kx) / 2 ? ms : keyex_interval_ms(kx) / 2;
}

/* Next rotation: T - U(0, min(T/20, 30 s)) after now (R30). */
static uint64_t keyex_next_rotation(const struct keyex *kx, uint64_t now)
{
	uint64_t t = keyex_interval_ms(kx), span = t / 20 < 30000 ? t / 20 : 30000;
	uint32_t r = 0;

	if (span && RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
		return now + t - r % span;
	return now + t;
}

/* The first rotation after start: uniform in [T/2, T), so that a fleet started together does not
 * keep rotating together (the jitter of R30 alone would keep them within 30 s of each other). */
static uint64_t keyex_first_rotation(const struct keyex *kx, uint64_t now)
{
	uint64_t half = keyex_interval_ms(kx) / 2;
	uint32_t r = 0;

	if (half && RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
		return now + half + r % half;
	return now + keyex_interval_ms(kx);
}

struct kx_peer *keyex_peer_(struct keyex *kx, const char *id, size_t len)
{
	size_t i;

	for (i = 0; i < kx->npeers; i++)
		if (strlen(kx->peers[i].id) == len && memcmp(kx->peers[i].id, id, len) == 0)
			return &kx->peers[i];
	return NULL;
}

void keyex_reject_(struct keyex *kx, struct kx_peer *peer, int reason, const char *fmt, ...)
{
	struct log_limit *lim = peer ? &peer->reject_log : &kx->log_reject;
	struct log_fields f = {0};
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];
	char msg[256];
	va_list ap;

	kx->ctx->stats->rejected[reason]++;
	if (peer)
		keyex_peer_rejected_(peer, reason);
	if (!log_limit_allow(lim, clock_mono_ms(), &suppressed))
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

void keyex_keys_changed_(struct keyex *kx)
{
	if (kx->on_keys_changed)
		kx->on_keys_changed(kx->cb_arg);
}

/* Live peers: their current announcement is accepted and not expired. */
static bool keyex_peer_live(const struct kx_peer *p, uint64_t now_wall)
{
	return p->have_ann && now_wall <= p->ann_expires_wall;
}

bool keyex_peer_live_(const struct kx_peer *p, uint64_t now_wall)
{
	return keyex_peer_live(p, now_wall);
}

void keyex_sample_(struct keyex *kx)
{
	struct kx_sample *smp = &kx->hist[kx->hist_next];

	if (!keyring_newest(kx->kr, &smp->epoch))
		return;
	smp->wall_ms = clock_wall_ms();
	smp->counter = keyring_newest_next_counter(kx->kr);
	kx->hist_next = (kx->hist_next + 1) % KEYEX_HISTORY;
	if (kx->hist_n < KEYEX_HISTORY)
		kx->hist_n++;
}

/* The newest epoch's counter at wall_ms (rounded down to the last sample before it): 0 if the
 * epoch began after that moment, the oldest sample if history does not reach back that far. */
uint64_t keyex_floor_at_(const struct keyex *kx, uint64_t wall_ms)
{
	uint64_t newest, floor = 0;
	size_t i;

	if (wall_ms == 0 || !keyring_newest(kx->kr, &newest))
		return 0;
	for (i = 1; i <= kx->hist_n; i++) {
		const struct kx_sample *smp = &kx->hist[(kx->hist_next + KEYEX_HISTORY - i) % KEYEX_HISTORY];
		if (smp->epoch != newest)
			return 0; /* wall_ms is before the newest epoch began: all of it is later */
		floor = smp->counter;
		if (smp->wall_ms <= wall_ms)
			return floor;
	}
	return floor;
}

static size_t keyex_recipients(struct keyex *kx, struct ann_recipient *r)
{
	uint64_t now = clock_wall_ms(), acked;
	size_t i, n = 0;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		p->wrapped_valid = false;
		if (!keyex_peer_live(p, now) || p->eph_weak)
			continue;
		r[n].id = p->id;
		memcpy(r[n].eph_pub, p->eph_pub, KEX_PUB_LEN);
		r[n].acked_epoch = keyring_recv_newest(kx->kr, p->id, &acked) ? acked : 0;
		r[n].counter_floor = keyex_floor_at_(kx, p->epoch_start_wall);
		p->wrapped_valid = true;
		memcpy(p->wrapped_to, p->eph_pub, KEX_PUB_LEN);
		n++;
	}
	return n;
}

void keyex_announce_(struct keyex *kx, bool reissue)
{
	struct ann_recipient *r = calloc(kx->npeers ? kx->npeers : 1, sizeof(*r));
	struct ann_params p = {0};
	char tbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	uint8_t *buf = NULL;
	size_t len = 0;
	enum px_err rc;

	if (!r || !control_is_up(kx->ctl) || !keyring_newest(kx->kr, &p.epoch)) {
		kx->announce_due = true;
		free(r);
		return;
	}
	if (reissue)
		kx->rev++;
	p.sender_id = kx->ctx->conf->node_id;
	p.rev = kx->rev;
	p.issued_at_ms = clock_wall_ms();
	p.interval_s = kx->ctx->conf->keyex.interval_seconds;
	p.eph = keyring_newest_eph(kx->kr);
	p.secret = keyring_newest_secret(kx->kr);
	p.recipients = r;
	p.nrecipients = keyex_recipients(kx, r);
	keyex_sample_(kx);
	signed_topic = keyex_signed_topic_(kx, kx->topic_self, tbuf);
	rc = signed_topic ? ann_build(kx->id, signed_topic, &p, &buf, &len) : PX_ERR_TOO_LARGE;
	if (rc != PX_OK || control_publish(kx->ctl, kx->topic_self, buf, len, 1, true) != 0) {
		log_error("keyex", "cannot announce epoch %" PRIu64 ": %s", p.epoch,
			  rc != PX_OK ? px_strerror(rc) : "publish failed");
		kx->announce_due = true;
	} else {
		kx->announce_due = false;
		kx->announced_mono = clock_mono_ms();
		kx->announced_wall = p.issued_at_ms;
		kx->ctx->stats->announcements_sent++;
		log_emit(LOG_DEBUG, "keyex", NULL, NULL, "announced epoch %" PRIu64 " rev %" PRIu32 " to %zu peer(s)",
			 p.epoch, p.rev, p.nrecipients);
	}
	if (reissue) {
		kx->reissue_pending = false;
		kx->reissue_last_mono = clock_mono_ms();
	}
	free(buf);
	free(r);
}

/* Debounced re-issue (R37): the first goes out at once, later ones at most once per second. */
void keyex_request_reissue_(struct keyex *kx)
{
	if (clock_mono_ms() - kx->reissue_last_mono >= KEYEX_REISSUE_DEBOUNCE_MS)
		keyex_announce_(kx, true);
	else
		kx->reissue_pending = true;
}

static void keyex_activate(struct keyex *kx, const char *how)
{
	uint64_t epoch = 0;
	bool had_active = keyring_active(kx->kr, &epoch);

	if (keyring_epoch_activate(kx->kr, clock_mono_ms()) != PX_OK)
		return;
	keyring_active(kx->kr, &epoch);
	kx->activate_at_mono = 0;
	kx->ctx->stats->activations++;
	kx->ctx->stats->current_epoch = epoch;
	if (had_active)
		kx->ctx->stats->epochs_erased++; /* the previous sending key */
	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.epoch = epoch, .has_epoch = true},
		  "epoch %" PRIu64 " active (%s)%s", epoch, how,
		  had_active ? "; previous sending key erased" : "");
	if (kx->on_activated)
		kx->on_activated(kx->cb_arg);
	keyex_keys_changed_(kx);
}

void keyex_check_activation_(struct keyex *kx)
{
	uint64_t pending;
	size_t i;

	if (!keyring_pending(kx->kr, &pending))
		return;
	for (i = 0; i < kx->npeers; i++)
		if (kx->peers[i].must_confirm && kx->peers[i].acked < pending)
			return;
	keyex_activate(kx, "confirmed by every live peer");
}

/* Starts a new epoch (PROTOCOL.md §9.2, §9.5): persisted before it is announced. */
static void keyex_rotate(struct keyex *kx, const char *why)
{
	uint64_t now = clock_mono_ms(), wall_s = clock_wall_ms() / 1000, active = 0, epoch;
	bool has_active = keyring_active(kx->kr, &active);
	size_t i;

	epoch = kx->state_epoch + 1 > wall_s ? kx->state_epoch + 1 : wall_s;
	kx->state_epoch = epoch;
	if (keyex_state_save_(kx) != 0)
		log_error("keyex", "cannot write %s; epochs may not increase across a restart", kx->state_path);
	if (keyring_epoch_create(kx->kr, epoch, now) != PX_OK) {
		log_error("keyex", "cannot create epoch %" PRIu64 "; retrying at the next tick", epoch);
		return;
	}
	kx->rev = 0;
	kx->epoch_created_mono = now;
	keyex_sample_(kx);
	kx->rotate_at_mono = has_active ? keyex_next_rotation(kx, now) : keyex_first_rotation(kx, now);
	kx->ctx->stats->rotations++;
	kx->ctx->stats->last_rotation_wall_ms = clock_wall_ms();
	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.epoch = epoch, .has_epoch = true},
		  "epoch %" PRIu64 " started (%s)", epoch, why);
	if (!has_active) {
		keyex_activate(kx, "first epoch");
	} else {
		kx->activate_at_mono = now + keyex_activation_ms(kx);
		for (i = 0; i < kx->npeers; i++)
			kx->peers[i].must_confirm = kx->peers[i].acked >= active;
	}
	keyex_announce_(kx, false);
	if (kx->revoking) { /* a removed peer held the previous key: no make-before-break (§9.6) */
		kx->revoking = false;
		keyex_activate(kx, "a peer was removed: the new key at once");
		return;
	}
	keyex_check_activation_(kx);
}

static void keyex_update_gauges(struct keyex *kx, uint64_t now_wall)
{
	uint64_t keyed = 0;
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		if (keyex_peer_live(p, now_wall) && keyring_recv_has(kx->kr, p->id, p->epoch))
			keyed++;
	}
	kx->ctx->stats->peers_keyed = keyed;
}

static void keyex_expire_peers(struct keyex *kx, uint64_t now_wall)
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

static void keyex_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct keyex *kx = arg;
	uint64_t now = clock_mono_ms(), wall = clock_wall_ms(), pending;
	size_t before, after;
	struct keyring_stats st;

	(void)fd;
	(void)what;
	keyex_sample_(kx);
	keyring_get_stats(kx->kr, &st);
	before = st.recv_keys;
	keyring_expire(kx->kr, now);
	keyring_get_stats(kx->kr, &st);
	after = st.recv_keys;
	if (after < before) {
		kx->ctx->stats->epochs_erased += before - after;
		log_info("keyex", "%zu expired receive key(s) erased", before - after);
	}
	keyex_expire_peers(kx, wall);
	if (control_is_up(kx->ctl)) {
		bool has_pending = keyring_pending(kx->kr, &pending);
		bool reissue_now = kx->reissue_pending && now - kx->reissue_last_mono >= KEYEX_REISSUE_DEBOUNCE_MS;
		bool rotate_due = (!has_pending || kx->revoking) &&
				  (now >= kx->rotate_at_mono || keyring_wants_rotation(kx->kr));
		/* A pending re-issue goes before a rotation, even inside its debounce (PROTOCOL.md §7.4):
		 * a peer lacks the current key, and what is sealed under it meanwhile waits at that peer
		 * (R35) for a wrap that the rotation would never send. The rotation follows a tick later. */
		if (rotate_due && !kx->reissue_pending)
			keyex_rotate(kx, now >= kx->rotate_at_mono ? "interval" : "usage limit");
		else if (kx->announce_due || reissue_now || rotate_due)
			keyex_announce_(kx, true);
	}
	if (kx->activate_at_mono && now >= kx->activate_at_mono)
		keyex_activate(kx, "activation delay passed");
	keyex_process_pending_(kx);
	keyex_update_gauges(kx, wall);
	keyex_peers_tick_(kx, now);
}

static void keyex_on_up(void *arg)
{
	struct keyex *kx = arg;
	uint64_t epoch;

	kx->ctx->stats->control_connected = 1;
	if (control_subscribe(kx->ctl, kx->topic_keyex_sub, 1) != 0 ||
	    control_subscribe(kx->ctl, kx->topic_ack_sub, 1) != 0)
		log_error("keyex", "cannot subscribe to the key-exchange topics");
	if (!keyring_newest(kx->kr, &epoch))
		keyex_rotate(kx, "start");
	else
		keyex_announce_(kx, true); /* the broker may have lost it: say it again, fresh */
	if (kx->on_up)
		kx->on_up(kx->cb_arg);
}

static void keyex_on_down(void *arg)
{
	struct keyex *kx = arg;

	if (kx->republished_mono && clock_mono_ms() - kx->republished_mono < KEYEX_REPUBLISH_FLAP_MS &&
	    !kx->republish_refused) {
		kx->republish_refused = true;
		log_error("keyex", "the broker closed the key-exchange connection just after it re-published or "
			  "watched retained values: it may not publish on or subscribe to the data topics "
			  "(docs/BROKERS.md); retained values are no longer re-sealed at rotation");
	}

	kx->ctx->stats->control_connected = 0;
	kx->ctx->stats->control_reconnects++;
}

static char *keyex_join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static void keyex_peer_clear(struct kx_peer *p)
{
	id_pub_free(p->pub);
	keyex_peer_drop_deferred_(p);
	memset(p, 0, sizeof(*p));
}

/* The configured peers as a fresh array; state of peers that stay (same id, same key) moves over
 * from old (whose moved entries are cleared). */
static struct kx_peer *keyex_build_peers(const struct px_conf *conf, struct kx_peer *old, size_t nold, char *err,
					 size_t errlen)
{
	struct kx_peer *peers = calloc(conf->npeers ? conf->npeers : 1, sizeof(*peers));
	uint8_t raw[ID_PUB_LEN];
	size_t i, j;

	for (i = 0; peers && i < conf->npeers; i++) {
		struct kx_peer *p = &peers[i];
		if (id_pub_decode(conf->peers[i].public_key, raw) != PX_OK) {
			snprintf(err, errlen, "%s:%u: peers.public_key of %s is not a valid Ed25519 key", conf->path,
				 conf->peers[i].line, conf->peers[i].id);
			goto fail;
		}
		for (j = 0; j < nold; j++)
			if (old[j].pub && strcmp(old[j].id, conf->peers[i].id) == 0 &&
			    memcmp(id_pub_raw(old[j].pub), raw, ID_PUB_LEN) == 0)
				break;
		if (j < nold) {
			*p = old[j];
			memset(&old[j], 0, sizeof(old[j]));
			p->conf = &conf->peers[i];
			continue;
		}
		p->conf = &conf->peers[i];
		snprintf(p->id, sizeof(p->id), "%s", conf->peers[i].id);
		p->tokens = p->ack_tokens = KEYEX_BUCKET_BURST;
		if (id_pub_new(raw, &p->pub) != PX_OK) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (!peers)
		snprintf(err, errlen, "out of memory");
	return peers;
fail:
	/* Give moved state back to old (matched by id), so a refused reload changes nothing. */
	for (j = 0; j < i; j++) {
		size_t k;
		for (k = 0; k < nold && peers[j].pub; k++) {
			if (!old[k].pub && !old[k].id[0]) {
				old[k] = peers[j];
				memset(&peers[j], 0, sizeof(peers[j]));
			}
		}
		keyex_peer_clear(&peers[j]);
	}
	free(peers);
	return NULL;
}

/* Does any peer of conf have a publish list? */
static bool keyex_conf_restricted(const struct px_conf *conf)
{
	size_t i;

	for (i = 0; i < conf->npeers; i++)
		if (conf->peers[i].has_publish)
			return true;
	return false;
}

static int keyex_load_peers(struct keyex *kx, char *err, size_t errlen)
{
	kx->peers = keyex_build_peers(kx->ctx->conf, NULL, 0, err, errlen);
	kx->npeers = kx->peers ? kx->ctx->conf->npeers : 0;
	kx->restricted = keyex_conf_restricted(kx->ctx->conf);
	return kx->peers ? 0 : -1;
}

const char *keyex_signed_topic_(const struct keyex *kx, const char *topic, char buf[static KX_SIGNED_TOPIC_MAX])
{
	const uint8_t *out;
	size_t n;

	if (!policy_aad_topic(kx->ctx->policy, (const uint8_t *)topic, strlen(topic), (uint8_t *)buf,
			      KX_SIGNED_TOPIC_MAX - 1, &out, &n)) {
		log_error("keyex", "topic_prefix_map makes %s longer than %d bytes", topic, KX_SIGNED_TOPIC_MAX - 1);
		return NULL;
	}
	if (out != (const uint8_t *)buf)
		return topic;
	buf[n] = '\0';
	return buf;
}

bool keyex_may_publish(const struct keyex *kx, const char *sender, const uint8_t *topic, size_t len)
{
	const struct conf_peer *c = NULL;
	size_t i;

	if (!kx->restricted || (sender && strcmp(sender, kx->ctx->conf->node_id) == 0))
		return true; /* no publish lists at all, or a device of this very node */
	for (i = 0; sender && i < kx->npeers && !c; i++)
		if (strcmp(kx->peers[i].id, sender) == 0)
			c = kx->peers[i].conf;
	if (!c)
		return false;
	if (!c->has_publish)
		return true;
	for (i = 0; i < c->npublish; i++)
		if (mqtt_topic_match((const uint8_t *)c->publish[i], strlen(c->publish[i]), topic, len))
			return true;
	return false;
}

static int keyex_make_topics(struct keyex *kx)
{
	const struct px_conf *conf = kx->ctx->conf;
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "%s/keyex/", conf->keyex.topic_prefix);
	kx->prefix_len = strlen(conf->keyex.topic_prefix);
	kx->topic_self = keyex_join(prefix, conf->node_id, "");
	kx->topic_keyex_sub = keyex_join(prefix, "+", "");
	snprintf(prefix, sizeof(prefix), "%s/ack/", conf->keyex.topic_prefix);
	kx->topic_ack_sub = keyex_join(prefix, conf->node_id, "/+");
	kx->state_path = keyex_join(conf->state_dir, "/", "state");
	return kx->topic_self && kx->topic_keyex_sub && kx->topic_ack_sub && kx->state_path ? 0 : -1;
}

static int keyex_make_keyring(struct keyex *kx)
{
	const struct px_conf *conf = kx->ctx->conf;
	struct keyring_params kp = {
		.self_id = conf->node_id,
		.interval_s = conf->keyex.interval_seconds,
		.grace_s = conf->keyex.grace_seconds,
		.padding = conf->seal.padding,
		.replay_bits = REPLAY_BITS_DEFAULT,
		.max_keys = (size_t)(ANN_MAX_ENTRIES + 1) * (KR_RECV_PER_PEER + 1), /* peers may be added by reload */
	};

	return keyring_new(&kp, &kx->kr) == PX_OK ? 0 : -1;
}

struct keyex *keyex_new(struct px_ctx *ctx, const struct keyex_hooks *hooks, char *err, size_t errlen)
{
	static const struct control_handlers handlers = {
		.on_up = keyex_on_up, .on_down = keyex_on_down, .on_message = keyex_on_message_};
	struct keyex *kx = calloc(1, sizeof(*kx));

	snprintf(err, errlen, "out of memory");
	if (!kx)
		return NULL;
	kx->ctx = ctx;
	kx->on_keys_changed = hooks->keys_changed;
	kx->on_activated = hooks->activated;
	kx->on_up = hooks->up;
	kx->on_watched = hooks->watched;
	kx->cb_arg = hooks->arg;
	if (keyfile_load(ctx->conf->identity_file, true, &kx->id, err, errlen) != PX_OK)
		goto fail;
	snprintf(err, errlen, "out of memory");
	if (keyex_load_peers(kx, err, errlen) != 0 || keyex_make_topics(kx) != 0 || keyex_make_keyring(kx) != 0)
		goto fail;
	if (keyex_state_load_(kx) != 0 || keyex_state_save_(kx) != 0) {
		snprintf(err, errlen, "state_dir %s: cannot read or write %s", ctx->conf->state_dir, kx->state_path);
		goto fail;
	}
	kx->ctl = control_new(ctx->base, ctx->conf, &handlers, kx, err, errlen);
	kx->tick = event_new(ctx->base, -1, EV_PERSIST, keyex_on_tick, kx);
	if (!kx->ctl || !kx->tick)
		goto fail;
	return kx;
fail:
	keyex_free(kx);
	return NULL;
}

int keyex_reload(struct keyex *kx, const struct px_conf *nc, char *err, size_t errlen)
{
	struct kx_peer *old = kx->peers, *peers;
	size_t nold = kx->npeers, i, removed = 0;

	peers = keyex_build_peers(nc, old, nold, err, errlen);
	if (!peers)
		return -1;
	for (i = 0; i < nold; i++) {
		if (!old[i].pub)
			continue; /* moved into the new array */
		keyring_remove_peer(kx->kr, old[i].id);
		log_info("keyex", "peer %s removed by reload: its keys are erased", old[i].id);
		keyex_peer_clear(&old[i]);
		removed++;
	}
	free(old);
	kx->peers = peers;
	kx->npeers = nc->npeers;
	kx->restricted = keyex_conf_restricted(nc);
	if (keyex_state_save_(kx) != 0)
		log_error("keyex", "cannot write %s", kx->state_path);
	if (removed) { /* R15: what is sent from now on must be unreadable to the removed peers */
		kx->rotate_at_mono = 0;
		kx->revoking = true;
		/* Nothing more under a key they hold, not even until the new epoch is confirmed: device
		 * publishes wait for it (§9.3), and it is active as soon as it is announced. */
		keyring_epoch_retire(kx->kr);
		keyex_keys_changed_(kx);
	}
	if (control_is_up(kx->ctl)) {
		/* Subscribing again replays the retained announcements, those of added peers too. */
		control_subscribe(kx->ctl, kx->topic_keyex_sub, 1);
		if (removed)
			keyex_rotate(kx, "peer removed");
	}
	return 0;
}

int keyex_start(struct keyex *kx)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)KEYEX_TICK_MS * 1000};

	event_add(kx->tick, &tv);
	return control_start(kx->ctl);
}

void keyex_free(struct keyex *kx)
{
	size_t i;

	if (!kx)
		return;
	control_free(kx->ctl);
	if (kx->tick)
		event_free(kx->tick);
	keyring_free(kx->kr);
	id_key_free(kx->id);
	for (i = 0; kx->peers && i < kx->npeers; i++)
		keyex_peer_clear(&kx->peers[i]);
	free(kx->peers);
	free(kx->topic_self);
	free(kx->topic_keyex_sub);
	free(kx->topic_ack_sub);
	free(kx->state_path);
	free(kx);
}

struct keyring *keyex_keyring(struct keyex *kx)
{
	return kx->kr;
}

bool keyex_can_seal(const struct keyex *kx)
{
	return (kx->ready || kx->npeers == 0) && keyring_can_seal(kx->kr, clock_mono_ms()) == PX_OK;
}

void keyex_after_seal(struct keyex *kx)
{
	uint64_t pending;

	if (keyring_wants_rotation(kx->kr) && !keyring_pending(kx->kr, &pending) && control_is_up(kx->ctl))
		keyex_rotate(kx, "usage limit");
}

int keyex_publish_retained(struct keyex *kx, const char *topic, const uint8_t *payload, size_t len)
{
	if (kx->republish_refused)
		return -1;
	kx->republished_mono = clock_mono_ms();
	return control_publish(kx->ctl, topic, payload, len, 1, true);
}

int keyex_watch(struct keyex *kx, const char *topic, bool on)
{
	if (!on)
		return control_unsubscribe(kx->ctl, topic);
	if (kx->republish_refused)
		return -1;
	/* Part of re-publishing: a broker that closes the connection on a refused SUBSCRIBE
	 * (RabbitMQ) turns both off, as for a refused re-publish (keyex_on_down). */
	kx->republished_mono = clock_mono_ms();
	return control_subscribe(kx->ctl, topic, 1);
}

bool keyex_republish_allowed(const struct keyex *kx)
{
	return !kx->republish_refused;
}

int keyex_healthy(const struct keyex *kx, char *reason, size_t len)
{
	const struct stats *st = kx->ctx->stats;

	if (!control_is_up(kx->ctl)) {
		snprintf(reason, len, "key-exchange connection to the broker is down");
		return 0;
	}
	if (st->peers_keyed < kx->npeers) {
		snprintf(reason, len, "%" PRIu64 " of %zu peers keyed", st->peers_keyed, kx->npeers);
		return 0;
	}
	return 1;
}
