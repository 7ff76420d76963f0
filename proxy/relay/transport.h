/* transport.h - ending one side of a session in order, whatever its transport: the part of an
 * orderly close that is not MQTT (a WebSocket Close frame, a TLS close_notify) before the TCP FIN
 * or the close. A plain socket has nothing to add. */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

struct bufferevent;

/* Why a side ends: chooses the WebSocket close status (RFC 6455 §7.4.1). */
enum relay_end {
	RELAY_END_NORMAL,   /* the session is over (1000) */
	RELAY_END_SHUTDOWN, /* the node is stopping (1001, going away) */
	RELAY_END_PROTOCOL, /* the device broke the MQTT protocol (1002) */
};

enum relay_finish {
	RELAY_FINISH_DONE,    /* the transport is ended: half-close or free the side now */
	RELAY_FINISH_PENDING, /* a Close frame was queued: call again once the side's output is written */
};

/* Ends the transport of a side whose output is written (call it only then, or what was queued
 * would follow the close). A WebSocket filter (the only filter bufferevent the relay makes) gets
 * its Close frame with the status for why queued once (PENDING; DONE on the next call, or when a
 * close was already exchanged); a TLS connection under it, or alone, then sends close_notify now
 * (written to the socket at once; libevent 2.1 does not send it when the bufferevent is freed).
 * bev may be NULL. The bufferevent stays the caller's, still readable. */
enum relay_finish relay_transport_finish(struct bufferevent *bev, enum relay_end why);

#endif
