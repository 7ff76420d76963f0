/* ws_filter.h - MQTT over WebSocket as a libevent filter bufferevent: under it the connection
 * (a socket or OpenSSL bufferevent, after the opening handshake), above it plain MQTT bytes for
 * the session. Frames are decoded and encoded by ws_frame.c. */
#ifndef PX_WS_FILTER_H
#define PX_WS_FILTER_H

#include <stdint.h>

struct bufferevent;

/* Wraps under, whose upgrade is done, in a filter: its input is the payload of the client's
 * binary frames, its output goes out as binary frames; pings are answered, a close is answered
 * and reported as EOF, a protocol violation is logged (peer names the device), answered with a
 * close frame and reported as an error. Frames with more than max_frame payload bytes are
 * refused (1009). Takes ownership of under (freed with the filter; BEV_OPT_CLOSE_ON_FREE).
 * NULL on allocation failure, under then still the caller's. */
struct bufferevent *ws_filter_new(struct bufferevent *under, uint64_t max_frame, const char *peer);

/* Ends the WebSocket of bev (a filter made by ws_filter_new) from our side once its output is
 * written: queues a Close frame with code (RFC 6455 §7.4.1) on the connection under it; nothing
 * more is framed or decoded after it. Returns 1 when the frame was queued, 0 when a close was
 * sent already (ours, or the answer to the client's) or output is still waiting in bev. */
int ws_filter_close(struct bufferevent *bev, uint16_t code);

#endif
