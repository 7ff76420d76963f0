/* sim_broker.h - the simulated MQTT broker the fleet simulation runs against: topic matching
 * (MQTT 3.1.1 §4.7, px_mqtt's matcher), retained messages (§3.3.1.3: stored per topic, an empty
 * payload clears, handed to each new subscription with RETAIN set, and to existing subscriptions
 * with RETAIN clear), clean sessions (a connection starts with no subscriptions and nothing
 * queued), QoS 1 as the key exchange needs it (what the broker accepted while a client is
 * connected is queued for it in order, once per client however many of its filters match; what is
 * queued for a connection is lost with it), wills (kept from CONNECT, published when the connection
 * is lost, once the keepalive bound passes or at once when the client connects again: session
 * takeover; discarded by a clean DISCONNECT), and a restart that loses every connection and keeps
 * or loses the retained store.
 * The broker is pure: it only queues. The simulation pops each client's queue (sim_broker_pop) and
 * decides when, and whether, each message reaches the client (delay, loss, duplication). */
#ifndef PX_SIM_BROKER_H
#define PX_SIM_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message; `next` links it in a queue. Owned by whoever holds it; sim_msg_free frees it. */
struct sim_msg {
	struct sim_msg *next;
	char *topic;
	uint8_t *payload;
	size_t len;
	bool retain;
};

/* A copy of the arguments; NULL on allocation failure. */
struct sim_msg *sim_msg_new(const char *topic, const uint8_t *payload, size_t len, bool retain);
void sim_msg_free(struct sim_msg *m); /* accepts NULL */
/* Size of the MQTT PUBLISH packet (QoS 1) carrying m: what the broker accounting counts. */
size_t sim_msg_wire_size(const struct sim_msg *m);

/* Traffic through the broker: PUBLISH packets (and their bytes) received from clients and sent
 * to clients, wills included. */
struct sim_broker_stats {
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out;
	uint64_t wills;       /* wills published */
	uint64_t restarts;
};

#define SIM_BROKER_SELF SIZE_MAX /* publisher index of a message the broker publishes itself */

struct sim_broker;

/* A broker for clients 0..nclients-1. NULL on allocation failure. */
struct sim_broker *sim_broker_new(size_t nclients);
void sim_broker_free(struct sim_broker *b); /* accepts NULL */

/* A new connection of client c (clean session). If its previous connection was lost and its will
 * is still pending, that will is published first. will (may be NULL) is copied. Returns the
 * connection's generation (> 0, increasing), or 0 on allocation failure. */
uint64_t sim_broker_connect(struct sim_broker *b, size_t c, const struct sim_msg *will);
/* Clean DISCONNECT: subscriptions and queue dropped, will discarded. */
void sim_broker_disconnect(struct sim_broker *b, size_t c);
/* The connection is lost (crash, network): subscriptions and queue dropped, will pending. */
void sim_broker_drop(struct sim_broker *b, size_t c);
/* The keepalive bound of the lost connection `gen` passed: publishes its will if still pending.
 * Returns 1 if a will was published. */
int sim_broker_will_due(struct sim_broker *b, size_t c, uint64_t gen);
bool sim_broker_connected(const struct sim_broker *b, size_t c);
uint64_t sim_broker_gen(const struct sim_broker *b, size_t c); /* current or last generation */

/* Subscribe (again: the retained messages are queued again) and unsubscribe. -1 if the filter is
 * invalid, c is not connected, or on allocation failure. */
int sim_broker_subscribe(struct sim_broker *b, size_t c, const char *filter);
int sim_broker_unsubscribe(struct sim_broker *b, size_t c, const char *filter);
/* A PUBLISH from client c (or SIM_BROKER_SELF). -1 if the topic is invalid, c is not connected, or
 * on allocation failure. */
int sim_broker_publish(struct sim_broker *b, size_t c, const char *topic, const uint8_t *payload, size_t len,
		       bool retain);
/* Restart: every connection lost without its will (the broker is gone); the retained store is kept
 * (persistence) or lost. */
void sim_broker_restart(struct sim_broker *b, bool keep_retained);

/* A client with something queued (in the order they became non-empty); false if none. */
bool sim_broker_next_ready(struct sim_broker *b, size_t *c);
/* The next message queued for c (the caller's to free), NULL if none. */
struct sim_msg *sim_broker_pop(struct sim_broker *b, size_t c);
size_t sim_broker_queued(const struct sim_broker *b, size_t c);
size_t sim_broker_retained_count(const struct sim_broker *b);
/* The retained message on topic, NULL if none (owned by the broker). */
const struct sim_msg *sim_broker_retained(const struct sim_broker *b, const char *topic);
void sim_broker_get_stats(const struct sim_broker *b, struct sim_broker_stats *out);

#endif
