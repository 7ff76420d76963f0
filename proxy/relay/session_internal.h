/* session_internal.h - struct session, shared by session.c (lifecycle, states, the frame loop; the
 * bytes move through its pump, pump.c; the broker connection is made by struct upstream) and
 * session_pkt.c, session_seal.c, session_held.c (what happens to each MQTT packet: one verdict,
 * verdict.h). Not for other modules. */
#ifndef PX_SESSION_INTERNAL_H
#define PX_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "envelope.h"
#include "mqtt_alias.h"
#include "mqtt_codec.h"
#include "mqtt_frame.h"
#include "pump_internal.h"
#include "stats.h"
#include "session.h"
#include "verdict.h"

/* Before CONNECT nothing is authenticated: the first packet has a tighter cap (STYLE habit 3). */
#define SESSION_CONNECT_MAX ((size_t)256 * 1024)
#define SESSION_DRAIN_SECONDS 5 /* bound of draining + lingering (the session's timer) */
/* A PUBLISH larger than this is parsed from its header alone (session_frame_head): a device's is
 * sealed, a broker's opened, from the input chains. */
#define SESSION_LAZY_MIN ((size_t)2048)

/* Session states (ARCHITECTURE.md, "Session states"). Every transition goes through
 * session_set_state_(), which refuses (and asserts on) one not in its table. The order matters:
 * "state >= SESSION_DRAINING" means closing, and a closing session reads nothing more. */
enum session_state {
	SESSION_AWAIT_CONNECT, /* device accepted; its CONNECT has not arrived (connect timer) */
	SESSION_CONNECTING,    /* CONNECT relayed into the upstream queue; TCP/TLS connect under way
				* (struct upstream, with broker.connect_timeout_seconds) */
	SESSION_ESTABLISHED,   /* upstream connected: packets flow both ways */
	SESSION_STOPPING,      /* node shutdown: the device is not read any more; closes once the
				* broker has acknowledged the device's in-flight publishes */
	SESSION_DRAINING,      /* closing: no more reading, flushing queued output (drain timer) */
	SESSION_LINGERING,     /* flushed; FIN sent to the device, its input discarded until it
				* closes (drain timer); the broker connection is closed */
	SESSION_CLOSED,        /* freed from a deferred event; callbacks do nothing */
};

/* A small set of packet identifiers (usually empty), for QoS 2 flows mqseal completes itself. */
struct pid_set {
	uint16_t *ids;
	uint16_t n, cap;
};

/* An incoming sealed PUBLISH whose key is not known yet (session_held.c). */
struct held;
/* A broker connection being made (upstream.h). */
struct upstream;

/* What became of an incoming sealed PUBLISH (session_open_down_): internal to the open path, which
 * serves both a frame (session_publish_down_, whose verdict is then DROP or ABORT) and the held
 * messages retried outside the frame loop (session_held.c). */
enum down_verdict {
	DOWN_DONE,  /* delivered to the device, or dropped (counted, acked for it) */
	DOWN_HOLD,  /* its key id is unknown: keep it aside for a while */
	DOWN_ERROR, /* out of memory: the session is being closed */
};

/* A SUBSCRIBE relayed without its denied filters: the SUBACK gets failure codes put back. */
struct sub_fix {
	struct sub_fix *next;
	uint16_t packet_id;
	uint16_t count; /* entries in the device's SUBSCRIBE */
	bool denied[];  /* count flags */
};

enum session_dir {
	DIR_UP,   /* device -> broker */
	DIR_DOWN, /* broker -> device */
};

struct session {
	/* pointers first, then counters, then the small fields: no padding to speak of (an idle
	 * device connection should cost little) */
	struct px_ctx *ctx;
	struct session *prev, *next; /* in the session set */
	struct upstream *upstream;   /* the broker connection being made (CONNECTING, or STOPPING
				      * begun then): its bufferevent is lent to the pump as s->up */
	struct event *timer;         /* connect / drain timeout (the broker connect has its own) */
	struct mqtt_alias *alias[2]; /* Topic Alias tables, per direction */
	/* sealing (session_seal.c) */
	struct event *wait_timer;    /* a device publish waiting for a key (created on first use) */
	struct held *held;           /* incoming sealed messages waiting for their key (FIFO) */
	struct held **held_tail;
	struct event *held_timer;    /* the oldest held message's deadline (created on first use) */
	size_t held_count, held_bytes;
	struct sub_fix *subfix;      /* SUBSCRIBEs relayed without their denied filters */
	struct devstate *devstate;   /* replay state of this client id (devstate.h) */
	struct pid_set q2_local;     /* device QoS 2 publishes answered by mqseal (denied/refused) */
	struct pid_set q2_behalf;    /* broker QoS 2 publishes acknowledged by mqseal for the device */
	struct pid_set up_inflight;  /* device QoS 1/2 publishes relayed, not yet acked by the broker */
	/* The pump moves the bytes (backpressure, direct I/O, the finish, the deferred free). Its two
	 * sides are also named here as the session's code knows them, without a second copy of the
	 * pointers (an idle connection should cost little): s->dev is the pump's PUMP_DEV bufferevent,
	 * the device connection, and s->up its PUMP_UP one, the broker connection (NULL before
	 * CONNECT). Both are NULL once dropped. Only upstream.c stores into s->up, right before it
	 * gives it to the pump (session_set_callbacks_). */
	union {
		struct pump pump;
		struct {
			struct bufferevent *dev;
			struct bufferevent *up;
		};
	};
	enum session_state state;
	uint32_t broker_max_packet;  /* CONNACK Maximum Packet Size (level 5); 0 = none */
	uint32_t dev_max_packet;     /* the device's CONNECT Maximum Packet Size (level 5); 0 = none */
	uint32_t frame_head;         /* contiguous leading bytes of the frame being handled (either
				      * side; set by session_next_frame for each frame): its total, or
				      * only its header (a large PUBLISH, session_frame_head) */
	uint16_t keepalive;
	uint8_t level;               /* MQTT protocol level learnt from CONNECT */
	/* one bit each: an idle device connection should cost little (bench/README.md, memory) */
	bool got_connack : 1;
	bool hold_expired : 1;       /* device side waited seal.hold_seconds: refuse until keys exist */
	bool persistent : 1;         /* the broker keeps the session after the connection */
	bool dev_broke_protocol : 1; /* closing because the device broke the protocol */
	bool waiting[2];             /* the head frame waits for a key (device side only, see session_wait_) */
	char peer[64];               /* device address "ip:port" */
	char client[72];             /* client id (printable, truncated) for log lines */
};

void session_set_state_(struct session *s, enum session_state st);
/* Closes because the source of direction d broke the protocol, or the session cannot go on (one
 * log line). A device on an MQTT 5 session first gets the DISCONNECT a broker sends for why
 * (mqtt_reason_of; none for reasons that are not the codec's, like "out of memory"); the broker, on
 * MQTT 5, DISCONNECT 0x04 so the device's will is published; 3.x: both cut at once. */
void session_abort_(struct session *s, enum session_dir d, const char *why);
/* session_abort_ for a packet that breaks the protocol; from the broker it is counted in
 * mqseal_broker_malformed_total. */
void session_protocol_error_(struct session *s, enum session_dir d, const char *why);
/* The first bytes p[0..n) of a device connection, when they are not MQTT but another protocol
 * met on the wrong port: a sentence naming it (a TLS ClientHello, an HTTP request), else NULL;
 * *need_more when n bytes are too few to tell (a prefix of an HTTP method). Sans-I/O. */
const char *session_sniff_foreign_(const uint8_t *p, size_t n, bool *need_more);
/* The payload of the PUBLISH of total bytes from the source of d being handled, when only its header
 * is contiguous (s->frame_head bytes, session_frame_head): the input chains that hold it, into
 * parts (ENV_PARTS_MAX at most); 0 when the whole frame is contiguous, or the chains are more. */
size_t session_payload_pieces_(struct session *s, enum session_dir d, size_t total, struct aead_part *parts);
/* Queues bytes we made ourselves to the device or to the broker. */
void session_send_(struct session *s, enum session_dir d, const uint8_t *buf, size_t len);
/* Opens the broker connection (struct upstream, upstream.h); s->up takes its bufferevent once it
 * is up, and a failure refuses the device. -1 if it could not even start (the device is refused
 * then too). */
int session_upstream_start_(struct session *s);
/* session_close with the reason its transport ends for (a WebSocket close status). */
void session_close_as_(struct session *s, const char *why, enum relay_end end);
/* Refuses the device's CONNECT with a CONNACK (reason per level) and closes after flushing; the
 * broker side, if any, is dropped unflushed (upstream.c, a will that cannot be sealed). */
void session_refuse_connect_(struct session *s, uint8_t reason_311, uint8_t reason_5, const char *why);
/* The same before the broker connection exists, as a verdict: the CONNACK is queued for the
 * device, the CONNECT dropped, and the session closes after flushing (no protocol error). */
struct verdict session_connect_refuse_(struct session *s, uint8_t reason_311, uint8_t reason_5, const char *why);

/* Installs our callbacks and watermarks on a new bufferevent of this session, enables it. */
void session_set_callbacks_(struct session *s, struct bufferevent *bev);
void session_set_nodelay_(evutil_socket_t fd);
/* The upstream just connected over plain TCP: it may be written directly from now on. */
void session_up_connected_(struct session *s);

/* session_seal.c: the sealing side of the packets, each returning the verdict for its frame
 * (WAIT: a device PUBLISH waits for a key, left in place; the direction pauses). */
struct verdict session_publish_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				   const struct mqtt_publish *p, struct mqtt_buf topic);
struct verdict session_publish_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				     const struct mqtt_publish *p, struct mqtt_buf topic);
/* The will of a CONNECT: FORWARD: the CONNECT may go on (*seal_will: with its will sealed), WAIT for
 * a key, or the CONNECT refused (session_connect_refuse_). */
struct verdict session_connect_up_(struct session *s, const struct mqtt_connect *c, bool *seal_will);
struct verdict session_subscribe_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes);
void session_unsubscribe_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes);
struct verdict session_suback_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes);
/* PUBREL pid from the device / from the broker for a flow mqseal completes itself: PUBCOMP queued
 * back to its sender, true (the PUBREL is dropped). */
bool session_pubrel_local_(struct session *s, enum session_dir d, uint16_t pid);
void session_wait_(struct session *s, enum session_dir d);
/* Opens an incoming sealed PUBLISH for the device; may_hold: an unknown key id gives DOWN_HOLD
 * instead of a drop. */
enum down_verdict session_open_down_(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic,
				     bool may_hold);
void session_drop_down_(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic,
			enum stats_drop reason);
/* session_held.c: holding incoming messages aside until their key is announced (R35). */
int session_hold_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes, struct mqtt_buf topic);
/* Is a message on this topic held (a new one on it must queue behind)? */
bool session_held_topic_(const struct session *s, struct mqtt_buf topic);
void session_held_retry_(struct session *s);
void session_held_free_(struct session *s);
/* A device publish went to the broker / the broker acknowledged one (shutdown waits for these):
 * true when that was the last one of a stopping session (it closes once the ack is relayed). */
void session_inflight_add_(struct session *s, const struct mqtt_publish *p);
bool session_inflight_done_(struct session *s, uint16_t pid);
/* session.c: the head frame of d may go on now: re-enable reading and handle what is buffered. */
void session_resume_(struct session *s, enum session_dir d);
void session_seal_free_(struct session *s);

/* session_pkt.c: decides what becomes of one complete frame (bytes: its contiguous leading bytes,
 * the whole frame or, for a large device PUBLISH, its header, s->frame_head) and returns it as one
 * verdict, which session.c carries out (session_apply, verdict.h). The handlers queue only packets
 * of their own (acks for the sender, a sealed or opened copy in the destination's output); they
 * never forward or drop the frame themselves. */
struct verdict session_packet_(struct session *s, enum session_dir d, const struct mqtt_frame *f,
			       const uint8_t *bytes);

#endif
