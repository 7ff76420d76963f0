/* control.c - libmosquitto on the libevent loop (STYLE: "libmosquitto appears only in control.c").
 * One event watches mosquitto_socket() for reading (and for writing while mosquitto_want_write()),
 * a 1 s timer runs mosquitto_loop_misc (keepalive, retries) and the reconnect backoff
 * (1 s doubling to 30 s, with jitter). MQTT 3.1.1, clean session: the key exchange needs no
 * session state at the broker (announcements are retained). */
#include "control.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mosquitto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "clock.h"
#include "log.h"
#include "conf.h"

#define CONTROL_BACKOFF_MIN_MS 1000u
#define CONTROL_BACKOFF_MAX_MS 30000u

struct control {
	struct event_base *base;
	const struct px_conf *conf;
	struct control_handlers h;
	void *arg;
	struct mosquitto *mosq;
	struct event *io;       /* on the current socket; NULL while none */
	int io_fd;
	bool io_writing;
	struct event *tick;     /* 1 s: loop_misc and reconnect */
	bool up;
	bool connecting;
	bool stopping;          /* control_free: the disconnect is ours */
	char client_id[96];
	uint64_t retry_at;      /* monotonic ms of the next connect attempt; 0 = none scheduled */
	char *will_topic;       /* the MQTT will of every CONNECT from now on (NULL = none) */
	uint8_t *will_payload;
	size_t will_len;
	int will_qos;
	bool will_retain;
	unsigned backoff_ms;
};

static void control_rearm(struct control *c);

static void control_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	(void)fd;
	if (what & EV_READ)
		mosquitto_loop_read(c->mosq, 1);
	if (c->mosq && (what & EV_WRITE))
		mosquitto_loop_write(c->mosq, 1);
	control_rearm(c);
}

/* Keeps the socket event in step with libmosquitto's socket and its wish to write. */
static void control_rearm(struct control *c)
{
	int fd = mosquitto_socket(c->mosq);
	bool want_write = fd >= 0 && mosquitto_want_write(c->mosq);

	if (c->io && (fd != c->io_fd || want_write != c->io_writing)) {
		event_free(c->io);
		c->io = NULL;
	}
	if (fd < 0 || c->io)
		return;
	c->io = event_new(c->base, fd, (short)(EV_READ | EV_PERSIST | (want_write ? EV_WRITE : 0)), control_on_io, c);
	if (!c->io) {
		log_error("control", "out of memory");
		return;
	}
	c->io_fd = fd;
	c->io_writing = want_write;
	event_add(c->io, NULL);
}

static void control_schedule_retry(struct control *c)
{
	unsigned jitter = 0;

	if (RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) != 1)
		jitter = 0;
	c->retry_at = clock_mono_ms() + c->backoff_ms + jitter % (c->backoff_ms / 4 + 1);
	c->backoff_ms = c->backoff_ms * 2 > CONTROL_BACKOFF_MAX_MS ? CONTROL_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* broker.tls for the key-exchange connection. Without ca_file/ca_path the system's default store is
 * used, as the device sessions do (upstream.c): libmosquitto's tls_set wants a CA file or directory,
 * so it gets OpenSSL's default directory, and MOSQ_OPT_TLS_USE_OS_CERTS (libmosquitto 2) adds the
 * rest of the defaults (the default file, SSL_CERT_FILE / SSL_CERT_DIR). */
static int control_tls(struct mosquitto *mosq, const struct conf_tls *tls)
{
	const char *ca_path = tls->ca_path;
	int rc = MOSQ_ERR_SUCCESS;

	if (!tls->ca_file && !ca_path) {
		ca_path = X509_get_default_cert_dir();
#if LIBMOSQUITTO_MAJOR >= 2
		rc = mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
#endif
	}
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_set(mosq, tls->ca_file, ca_path, tls->cert_file, tls->key_file, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_insecure_set(mosq, !tls->verify_hostname);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(mosq, 1, "tlsv1.2", NULL);
	return rc;
}

static int control_configure(struct control *c, char *err, size_t errlen);
static void control_on_connect(struct mosquitto *mosq, void *arg, int rc);
static void control_on_disconnect(struct mosquitto *mosq, void *arg, int rc);
static void control_on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m);

/* A clean client for each connection: whatever the previous connection left unacknowledged is
 * dropped, not re-sent (a publish the broker refused by closing the connection would otherwise
 * close every new one too). The node announces afresh on every connection anyway. */
static int control_prepare(struct control *c, char *err, size_t errlen)
{
	if (c->io) {
		event_free(c->io);
		c->io = NULL;
	}
	if (mosquitto_reinitialise(c->mosq, c->client_id, true, c) != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "key-exchange client: out of memory");
		return -1;
	}
	if (control_configure(c, err, errlen) != 0)
		return -1;
	mosquitto_connect_callback_set(c->mosq, control_on_connect);
	mosquitto_disconnect_callback_set(c->mosq, control_on_disconnect);
	mosquitto_message_callback_set(c->mosq, control_on_message);
	return 0;
}

static void control_attempt(struct control *c, bool first)
{
	char err[256];
	int rc = MOSQ_ERR_NOMEM;

	c->retry_at = 0;
	c->connecting = true;
	if (c->h.on_connecting)
		c->h.on_connecting(c->arg); /* sets the will (control_set_will) before CONNECT */
	if (first || control_prepare(c, err, sizeof(err)) == 0)
		rc = mosquitto_connect_async(c->mosq, c->conf->broker.host, c->conf->broker.port,
					     (int)c->conf->keyex.keepalive_seconds);
	if (rc != MOSQ_ERR_SUCCESS) {
		c->connecting = false;
		log_emit(LOG_DEBUG, "control", NULL, NULL, "connect to %s:%u failed: %s", c->conf->broker.host,
			 c->conf->broker.port, mosquitto_strerror(rc));
		control_schedule_retry(c);
	}
	control_rearm(c);
}

static void control_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	(void)fd;
	(void)what;
	if (c->retry_at && clock_mono_ms() >= c->retry_at) {
		control_attempt(c, false);
		return;
	}
	if (mosquitto_socket(c->mosq) >= 0)
		mosquitto_loop_misc(c->mosq);
	control_rearm(c);
}

static void control_on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	struct control *c = arg;

	(void)mosq;
	c->connecting = false;
	if (rc != 0) {
		log_warn("control", "broker refused the key-exchange connection: %s", mosquitto_connack_string(rc));
		return; /* libmosquitto disconnects; on_disconnect schedules the retry */
	}
	c->up = true;
	c->backoff_ms = CONTROL_BACKOFF_MIN_MS;
	log_info("control", "key-exchange connection to %s:%u up", c->conf->broker.host, c->conf->broker.port);
	if (c->h.on_up)
		c->h.on_up(c->arg);
}

static void control_on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
	struct control *c = arg;
	bool was_up = c->up;

	(void)mosq;
	c->up = false;
	c->connecting = false;
	/* The socket is closed: forget its event, a new socket may reuse the descriptor number. */
	if (c->io) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->stopping)
		return;
	if (was_up)
		log_warn("control", "key-exchange connection lost (%s); reconnecting", mosquitto_strerror(rc));
	control_schedule_retry(c);
	if (was_up && c->h.on_down)
		c->h.on_down(c->arg);
}

static void control_on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m)
{
	struct control *c = arg;

	(void)mosq;
	if (c->h.on_message && m->payloadlen >= 0)
		c->h.on_message(c->arg, m->topic, m->payload, (size_t)m->payloadlen, m->retain);
}

static int control_configure(struct control *c, char *err, size_t errlen)
{
	const struct px_conf *conf = c->conf;
	const struct conf_tls *tls = &conf->broker.tls;
	int rc = MOSQ_ERR_SUCCESS;

	mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	if (conf->keyex.username)
		rc = mosquitto_username_pw_set(c->mosq, conf->keyex.username, conf->keyex.password);
	if (rc == MOSQ_ERR_SUCCESS && tls->enabled)
		rc = control_tls(c->mosq, tls);
	if (rc == MOSQ_ERR_SUCCESS && c->will_topic)
		rc = mosquitto_will_set(c->mosq, c->will_topic, (int)c->will_len, c->will_payload, c->will_qos,
					c->will_retain);
	if (rc != MOSQ_ERR_SUCCESS)
		snprintf(err, errlen, "key-exchange client: %s", mosquitto_strerror(rc));
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

struct control *control_new(struct event_base *base, const struct px_conf *conf,
			    const struct control_handlers *h, void *arg, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->conf = conf;
	c->h = *h;
	c->arg = arg;
	c->io_fd = -1;
	c->backoff_ms = CONTROL_BACKOFF_MIN_MS;
	if (conf->keyex.client_id)
		snprintf(c->client_id, sizeof(c->client_id), "%s", conf->keyex.client_id);
	else
		snprintf(c->client_id, sizeof(c->client_id), "mqseal-%s", conf->node_id);
	c->mosq = mosquitto_new(c->client_id, true, c);
	c->tick = event_new(base, -1, EV_PERSIST, control_on_tick, c);
	if (!c->mosq || !c->tick) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (control_prepare(c, err, errlen) != 0)
		goto fail;
	return c;
fail:
	control_free(c);
	return NULL;
}

int control_start(struct control *c)
{
	struct timeval second = {.tv_sec = 1, .tv_usec = 0};

	event_add(c->tick, &second);
	control_attempt(c, true);
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	c->stopping = true;
	if (c->mosq && c->up)
		mosquitto_disconnect(c->mosq);
	if (c->io)
		event_free(c->io);
	if (c->tick)
		event_free(c->tick);
	if (c->mosq)
		mosquitto_destroy(c->mosq);
	free(c->will_topic);
	free(c->will_payload);
	free(c);
}

bool control_is_up(const struct control *c)
{
	return c && c->up;
}

int control_publish(struct control *c, const char *topic, const uint8_t *payload, size_t len, int qos,
		    bool retain)
{
	int rc;

	if (!c->up || len > (size_t)INT32_MAX)
		return -1;
	rc = mosquitto_publish(c->mosq, NULL, topic, (int)len, payload, qos, retain);
	control_rearm(c);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int control_subscribe(struct control *c, const char *filter, int qos)
{
	int rc;

	if (!c->up)
		return -1;
	rc = mosquitto_subscribe(c->mosq, NULL, filter, qos);
	control_rearm(c);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int control_unsubscribe(struct control *c, const char *filter)
{
	int rc;

	if (!c->up)
		return -1;
	rc = mosquitto_unsubscribe(c->mosq, NULL, filter);
	control_rearm(c);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int control_subscribe_multiple(struct control *c, const char *const *filters, size_t n, int qos)
{
	int rc;

	if (!c->up || n == 0 || n > CONTROL_SUB_BATCH)
		return -1;
	/* libmosquitto's prototype is not const-correct; it only reads the strings. */
	rc = mosquitto_subscribe_multiple(c->mosq, NULL, (int)n, (char *const *)(uintptr_t)filters, qos, 0, NULL);
	control_rearm(c);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int control_set_will(struct control *c, const char *topic, const uint8_t *payload, size_t len, int qos, bool retain)
{
	char *t = topic ? strdup(topic) : NULL;
	uint8_t *p = topic ? malloc(len ? len : 1) : NULL;

	if (topic && (!t || !p || len > (size_t)INT32_MAX)) {
		free(t);
		free(p);
		return -1;
	}
	if (p && len)
		memcpy(p, payload, len);
	free(c->will_topic);
	free(c->will_payload);
	c->will_topic = t;
	c->will_payload = p;
	c->will_len = len;
	c->will_qos = qos;
	c->will_retain = retain;
	/* For the connect about to start on this client; control_configure sets it again on a fresh one. */
	if (c->will_topic && mosquitto_will_set(c->mosq, c->will_topic, (int)c->will_len, c->will_payload,
						c->will_qos, c->will_retain) != MOSQ_ERR_SUCCESS)
		return -1;
	if (!c->will_topic)
		(void)mosquitto_will_clear(c->mosq);
	return 0;
}

void control_flush(struct control *c, unsigned timeout_ms)
{
	uint64_t end = clock_mono_ms() + timeout_ms;
	unsigned n;

	if (!c || !c->up)
		return;
	/* Bounded: at most 100 write rounds, each waiting up to 10 ms for the socket. */
	for (n = 0; n < 100 && mosquitto_want_write(c->mosq) && clock_mono_ms() < end; n++)
		if (mosquitto_loop_write(c->mosq, 1) != MOSQ_ERR_SUCCESS)
			break;
}
