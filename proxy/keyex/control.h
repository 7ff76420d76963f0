/* control.h - the node's own MQTT connection to the broker, used only for key exchange. The one
 * file that knows libmosquitto: it is driven from the libevent loop (an event on the client's
 * socket calls mosquitto_loop_read/_write, a timer calls _misc; no extra thread), and reconnects
 * with capped exponential backoff while device connections keep working. */
#ifndef PX_CONTROL_H
#define PX_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct px_conf;
struct control;

struct control_handlers {
	/* Connected (CONNACK accepted): subscribe and announce from here. */
	void (*on_up)(void *arg);
	/* Connection lost (a reconnect is scheduled). */
	void (*on_down)(void *arg);
	/* A message arrived on a subscribed topic. */
	void (*on_message)(void *arg, const char *topic, const uint8_t *payload, size_t len, bool retained);
	/* A connection is about to be opened (before CONNECT): the time to set its will. May be NULL. */
	void (*on_connecting)(void *arg);
};

/* client_id, username, password (NULL = none) are copied. NULL with err set on failure. */
struct control *control_new(struct event_base *base, const struct px_conf *conf,
			    const struct control_handlers *h, void *arg, char *err, size_t errlen);
void control_free(struct control *c); /* disconnects; accepts NULL */
/* Starts connecting (asynchronously). */
int control_start(struct control *c);
bool control_is_up(const struct control *c);
/* 0 on success (queued), -1 if not connected or on failure. */
int control_publish(struct control *c, const char *topic, const uint8_t *payload, size_t len, int qos,
		    bool retain);
int control_subscribe(struct control *c, const char *filter, int qos);
int control_unsubscribe(struct control *c, const char *filter);
/* One SUBSCRIBE with n (1..CONTROL_SUB_BATCH) filters. */
#define CONTROL_SUB_BATCH 100
int control_subscribe_multiple(struct control *c, const char *const *filters, size_t n, int qos);
/* The will of the next CONNECTs (copied); topic NULL = none. 0 or -1 (out of memory). */
/* Sends what libmosquitto has queued (a last publish before control_free), waiting at most
 * timeout_ms. */
void control_flush(struct control *c, unsigned timeout_ms);
int control_set_will(struct control *c, const char *topic, const uint8_t *payload, size_t len, int qos,
		     bool retain);

#endif
