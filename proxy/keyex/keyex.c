/* keyex.c - the key exchange's adapter: drives the sans-I/O core (kx_core.h) from the libmosquitto
 * control connection (control.c) and one libevent timer, writes the state file (keyex_state.c),
 * and keeps the face the rest of the node uses (keyex.h: the data path, admin /peers, status).
 * Every call into the core is followed by draining its actions in order. */
#include "keyex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "conf.h"
#include "control.h"
#include "identity.h"
#include "keyex_state.h"
#include "keyfile.h"
#include "kx_core.h"
#include "log.h"
#include "stats.h"

#define KEYEX_REPUBLISH_FLAP_MS 2000 /* connection lost this soon after re-publishing: refused */

struct keyex {
	struct px_ctx *ctx;
	struct kx_core *core;
	struct id_key *id;
	struct id_pub *self_pub; /* id's public half: proves this node's own signed messages (§5.8) */
	struct control *ctl;
	struct event *timer;     /* kx_core_next_wakeup */
	char *state_path;        /* <state_dir>/state */
	char *state_dir;         /* copied: the configuration may be replaced */
	struct keyex_hooks hooks;
	uint64_t republished_mono; /* when retained values were last re-published */
	bool republish_refused;    /* the broker closed the connection at a re-publish: stop */
	bool draining;             /* keyex_drain is running (a hook may call back into us) */
};

/* The time for a call into the core; also hands it the node's current topic policy, which a
 * reload replaces after keyex_reload returned. */
static struct kx_now keyex_enter(const struct keyex *kx)
{
	kx_core_set_policy(kx->core, kx->ctx->policy);
	return (struct kx_now){.mono_ms = clock_mono_ms(), .wall_ms = clock_wall_ms()};
}

static int keyex_do_filters(struct keyex *kx, const struct kx_action *a)
{
	int rc = 0;
	size_t i;

	if (a->type == KX_ACT_SUBSCRIBE)
		rc = control_subscribe_multiple(kx->ctl, a->filters, a->nfilters, a->qos);
	else
		for (i = 0; i < a->nfilters; i++)
			if (control_unsubscribe(kx->ctl, a->filters[i]) != 0)
				rc = -1;
	if (rc != 0)
		log_error("keyex", "cannot %s the key-exchange topics (%zu filter(s))",
			  a->type == KX_ACT_SUBSCRIBE ? "subscribe to" : "unsubscribe from", a->nfilters);
	return rc;
}

/* Carries out one action; 0, or -1 when it failed. */
static int keyex_do(struct keyex *kx, const struct kx_action *a)
{
	switch (a->type) {
	case KX_ACT_PUBLISH:
		if (control_publish(kx->ctl, a->topic, a->data, a->len, a->qos, a->retain) == 0)
			return 0;
		log_emit(LOG_DEBUG, "keyex", NULL, NULL, "cannot publish on %s", a->topic);
		return -1;
	case KX_ACT_SUBSCRIBE:
	case KX_ACT_UNSUBSCRIBE:
		return keyex_do_filters(kx, a);
	case KX_ACT_PERSIST:
		return keyex_state_write(kx->state_dir, kx->state_path, (const char *)a->data, a->len);
	case KX_ACT_KEYS_CHANGED:
		if (kx->hooks.keys_changed)
			kx->hooks.keys_changed(kx->hooks.arg);
		return 0;
	case KX_ACT_ACTIVATED:
		if (kx->hooks.activated)
			kx->hooks.activated(kx->hooks.arg);
		return 0;
	case KX_ACT_SET_WILL:
		return control_set_will(kx->ctl, a->topic, a->data, a->len, a->qos, a->retain);
	}
	return -1;
}

static void keyex_arm(struct keyex *kx)
{
	uint64_t now = clock_mono_ms(), at = kx_core_next_wakeup(kx->core), ms = at > now ? at - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	if (kx->timer && event_add(kx->timer, &tv) != 0)
		log_error("keyex", "cannot arm the key-exchange timer");
}

/* Carries out what the core asked for, in order. A hook may call back into keyex (and so into the
 * core): the outer loop takes the new actions too. */
static void keyex_drain(struct keyex *kx)
{
	struct kx_action a;

	if (kx->draining)
		return;
	kx->draining = true;
	while (kx_core_next_action(kx->core, &a)) {
		if (keyex_do(kx, &a) != 0) {
			struct kx_now now = keyex_enter(kx);
			kx_core_action_failed(kx->core, &now);
		}
	}
	kx->draining = false;
	keyex_arm(kx);
}

static void keyex_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct keyex *kx = arg;
	struct kx_now now = keyex_enter(kx);

	(void)fd;
	(void)what;
	kx_core_tick(kx->core, &now);
	keyex_drain(kx);
}

static void keyex_event(struct keyex *kx, const struct kx_event *ev)
{
	struct kx_now now = keyex_enter(kx);

	if (kx_core_handle(kx->core, &now, ev) != 0)
		log_error("keyex", "event %d not understood by the core", (int)ev->type);
	keyex_drain(kx);
}

static void keyex_on_up(void *arg)
{
	struct keyex *kx = arg;

	keyex_event(kx, &(struct kx_event){.type = KX_EV_UP});
	if (kx->hooks.up)
		kx->hooks.up(kx->hooks.arg);
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
	keyex_event(kx, &(struct kx_event){.type = KX_EV_DOWN});
}

static void keyex_on_message(void *arg, const char *topic, const uint8_t *payload, size_t len, bool retained)
{
	struct keyex *kx = arg;
	const char *prefix = kx->ctx->conf->keyex.topic_prefix;
	size_t plen = strlen(prefix);

	if (strncmp(topic, prefix, plen) != 0 || topic[plen] != '/') {
		if (kx->hooks.watched) /* a topic the retained cache watches (§10.1) */
			kx->hooks.watched(kx->hooks.arg, topic, payload, len);
		return;
	}
	keyex_event(kx, &(struct kx_event){
		.type = KX_EV_MESSAGE, .topic = topic, .payload = payload, .len = len, .retained = retained});
}

static void keyex_on_connecting(void *arg)
{
	struct keyex *kx = arg;

	keyex_event(kx, &(struct kx_event){.type = KX_EV_CONNECTING});
}

static char *keyex_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s/%s", dir, name);
	return s;
}

/* The core, started from the state file's text (its first action persists it again). */
static int keyex_make_core(struct keyex *kx, char *err, size_t errlen)
{
	struct kx_env env = {.conf = kx->ctx->conf, .id = kx->id, .policy = kx->ctx->policy,
			     .stats = kx->ctx->stats, .persist_path = kx->state_path};
	struct kx_now now = {.mono_ms = clock_mono_ms(), .wall_ms = clock_wall_ms()};
	struct kx_action a;
	char *text = NULL;
	int rc = -1;

	if (keyex_state_read(kx->state_dir, kx->state_path, &text) != 0)
		goto cannot;
	kx->core = kx_core_new(&env, text, &now, err, errlen);
	if (!kx->core)
		goto out;
	while (kx_core_next_action(kx->core, &a)) /* the PERSIST of what was read */
		if (keyex_do(kx, &a) != 0)
			goto cannot;
	rc = 0;
	goto out;
cannot:
	snprintf(err, errlen, "state_dir %s: cannot read or write %s", kx->state_dir, kx->state_path);
out:
	free(text);
	return rc;
}

/* The public half of the identity key, ready to verify this node's own signed messages. */
static enum px_err keyex_make_self_pub(struct keyex *kx)
{
	uint8_t raw[ID_PUB_LEN];
	enum px_err rc = id_key_public(kx->id, raw);

	if (rc == PX_OK)
		rc = id_pub_new(raw, &kx->self_pub);
	return rc;
}

struct keyex *keyex_new(struct px_ctx *ctx, const struct keyex_hooks *hooks, char *err, size_t errlen)
{
	static const struct control_handlers handlers = {.on_up = keyex_on_up,
							   .on_down = keyex_on_down,
							   .on_message = keyex_on_message,
							   .on_connecting = keyex_on_connecting};
	struct keyex *kx = calloc(1, sizeof(*kx));

	snprintf(err, errlen, "out of memory");
	if (!kx)
		return NULL;
	kx->ctx = ctx;
	kx->hooks = *hooks;
	if (keyfile_load(ctx->conf->identity_file, true, &kx->id, err, errlen) != PX_OK)
		goto fail;
	snprintf(err, errlen, "out of memory");
	if (keyex_make_self_pub(kx) != PX_OK)
		goto fail;
	kx->state_dir = strdup(ctx->conf->state_dir);
	kx->state_path = keyex_path(ctx->conf->state_dir, "state");
	if (!kx->state_dir || !kx->state_path || keyex_make_core(kx, err, errlen) != 0)
		goto fail;
	kx->ctl = control_new(ctx->base, ctx->conf, &handlers, kx, err, errlen);
	kx->timer = event_new(ctx->base, -1, 0, keyex_on_timer, kx);
	if (!kx->ctl || !kx->timer)
		goto fail;
	return kx;
fail:
	keyex_free(kx);
	return NULL;
}

int keyex_reload(struct keyex *kx, const struct px_conf *nc, char *err, size_t errlen)
{
	struct kx_now now = keyex_enter(kx);

	if (kx_core_reload(kx->core, &now, nc, err, errlen) != 0)
		return -1;
	keyex_drain(kx);
	return 0;
}

int keyex_start(struct keyex *kx)
{
	keyex_arm(kx);
	return control_start(kx->ctl);
}

void keyex_free(struct keyex *kx)
{
	if (!kx)
		return;
	if (kx->core && kx->ctl && control_is_up(kx->ctl)) {
		keyex_event(kx, &(struct kx_event){.type = KX_EV_STOP}); /* presence: offline, retained */
		control_flush(kx->ctl, 500);
	}
	control_free(kx->ctl);
	if (kx->timer)
		event_free(kx->timer);
	kx_core_free(kx->core);
	id_key_free(kx->id);
	id_pub_free(kx->self_pub);
	free(kx->state_path);
	free(kx->state_dir);
	free(kx);
}

const struct id_key *keyex_identity(const struct keyex *kx)
{
	return kx->id;
}

const struct id_pub *keyex_sender_pub(const struct keyex *kx, const char *sender)
{
	if (!sender)
		return NULL;
	if (strcmp(sender, kx->ctx->conf->node_id) == 0)
		return kx->self_pub;
	return kx_core_peer_pub(kx->core, sender);
}

struct keyring *keyex_keyring(struct keyex *kx)
{
	return kx_core_keyring(kx->core);
}

bool keyex_can_seal(const struct keyex *kx)
{
	struct kx_now now = keyex_enter(kx);

	return kx_core_can_seal(kx->core, &now);
}

void keyex_after_seal(struct keyex *kx)
{
	keyex_event(kx, &(struct kx_event){.type = KX_EV_SEALED});
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

bool keyex_may_publish(const struct keyex *kx, const char *sender, const uint8_t *topic, size_t len)
{
	return kx_core_may_publish(kx->core, sender, topic, len);
}

int keyex_healthy(const struct keyex *kx, char *reason, size_t len)
{
	const struct stats *st = kx->ctx->stats;
	size_t npeers = kx_core_peer_count(kx->core);

	if (!control_is_up(kx->ctl)) {
		snprintf(reason, len, "key-exchange connection to the broker is down");
		return 0;
	}
	if (st->peers_keyed < npeers) {
		snprintf(reason, len, "%" PRIu64 " of %zu peers keyed", st->peers_keyed, npeers);
		return 0;
	}
	return 1;
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
	return kx_core_peer_count(kx->core);
}

void keyex_peer_info(const struct keyex *kx, size_t i, struct keyex_peer_info *out)
{
	struct kx_now now = keyex_enter(kx);

	kx_core_peer_info(kx->core, &now, i, out);
}

void keyex_peer_count_message(struct keyex *kx, const char *sender, int reason)
{
	if (kx)
		kx_core_count_message(kx->core, sender, reason);
}

uint64_t keyex_group_entries_ignored(const struct keyex *kx)
{
	return kx_core_ignored_group_entries(kx->core);
}

uint64_t keyex_ignored_not_a_peer(const struct keyex *kx)
{
	return kx_core_ignored_not_a_peer(kx->core);
}

int keyex_ready(const struct keyex *kx, size_t need, char *reason, size_t len)
{
	uint64_t keyed = kx->ctx->stats->peers_keyed;
	size_t npeers = kx_core_peer_count(kx->core);

	if (!control_is_up(kx->ctl)) {
		snprintf(reason, len, "key-exchange connection to the broker is down");
		return 0;
	}
	if (need > npeers)
		need = npeers;
	if (keyed < need) {
		snprintf(reason, len, "%" PRIu64 " of %zu peers keyed, %zu needed (readiness.ready_when)", keyed,
			 npeers, need);
		return 0;
	}
	return 1;
}
