/* test_ws_filter.c - the WebSocket filter bufferevent (proxy/relay/ws_filter.c) over a
 * bufferevent_pair: client frames in pieces arrive as MQTT bytes; what the session writes leaves
 * as binary frames; a ping is answered with a pong of the same payload; a close is answered and
 * reported as EOF; a text frame is answered with close 1003 and reported as an error; and when
 * the queue under the filter drains, the session's write callback runs (its backpressure resume
 * and the end of a close depend on it); ws_filter_close ends the WebSocket from our side with one
 * Close frame. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "check.h"
#include "ws_filter.h"
#include "ws_frame.h"

struct seen {
	unsigned writes;
	short events;
};

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	((struct seen *)arg)->writes++;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct seen *s = arg;

	s->events = (short)(s->events | what);
}

static void spin(struct event_base *base)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* A masked client frame into out; returns its length (payloads under 126 bytes). */
static size_t client_frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
	static const uint8_t key[4] = {0xA1, 0x02, 0xF3, 0x44};
	const uint8_t *p = payload;

	out[0] = b0;
	out[1] = (uint8_t)(0x80 | n);
	memcpy(out + 2, key, 4);
	for (size_t i = 0; i < n; i++)
		out[6 + i] = p[i] ^ key[i & 3];
	return 6 + n;
}

struct rig {
	struct event_base *base;
	struct bufferevent *pair[2]; /* [0] under the filter, [1] the client */
	struct bufferevent *ws;
	struct seen seen;
};

static void rig_open(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	CHECK(r->base && bufferevent_pair_new(r->base, BEV_OPT_CLOSE_ON_FREE, r->pair) == 0);
	r->ws = ws_filter_new(r->pair[0], 1000, "test");
	CHECK(r->ws != NULL);
	bufferevent_setcb(r->ws, NULL, on_write, on_event, &r->seen);
	bufferevent_enable(r->ws, EV_READ | EV_WRITE);
	bufferevent_enable(r->pair[1], EV_READ | EV_WRITE);
}

static void rig_close(struct rig *r)
{
	bufferevent_free(r->ws);
	bufferevent_free(r->pair[1]);
	event_base_free(r->base);
}

static void test_data_both_ways(void)
{
	struct rig r;
	uint8_t fr[256], got[64], head[2];
	size_t n;

	rig_open(&r);
	/* "MQTT-CONNECT" in two fragments, the second fed byte by byte */
	n = client_frame(fr, 0x02, "MQTT-", 5);
	n += client_frame(fr + n, 0x80, "CONNECT", 7);
	for (size_t i = 0; i < n; i++) {
		bufferevent_write(r.pair[1], fr + i, 1);
		spin(r.base);
	}
	CHECK_EQ(evbuffer_get_length(bufferevent_get_input(r.ws)), 12);
	CHECK(evbuffer_remove(bufferevent_get_input(r.ws), got, sizeof(got)) == 12 && memcmp(got, "MQTT-CONNECT", 12) == 0);
	/* what the session writes: one binary frame, unmasked */
	bufferevent_write(r.ws, "CONNACK", 7);
	spin(r.base);
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), head, 2) == 2 && head[0] == 0x82 && head[1] == 7);
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 7 && memcmp(got, "CONNACK", 7) == 0);
	CHECK_EQ(r.seen.events, 0);
	rig_close(&r);
}

static void test_ping_close_text(void)
{
	struct rig r;
	uint8_t fr[64], got[16];
	size_t n;

	rig_open(&r);
	n = client_frame(fr, 0x89, "hi", 2);
	bufferevent_write(r.pair[1], fr, n);
	spin(r.base);
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 4);
	CHECK(got[0] == 0x8A && got[1] == 2 && got[2] == 'h' && got[3] == 'i');
	n = client_frame(fr, 0x88, "\x03\xe8", 2);
	bufferevent_write(r.pair[1], fr, n);
	spin(r.base);
	CHECK(r.seen.events == (BEV_EVENT_EOF | BEV_EVENT_READING));
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 4);
	CHECK(got[0] == 0x88 && got[1] == 2 && got[2] == 0x03 && got[3] == 0xe8);
	rig_close(&r);

	rig_open(&r);
	n = client_frame(fr, 0x81, "text", 4);
	bufferevent_write(r.pair[1], fr, n);
	spin(r.base);
	CHECK(r.seen.events == (BEV_EVENT_ERROR | BEV_EVENT_READING));
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 4);
	CHECK(got[0] == 0x88 && got[2] == 0x03 && got[3] == 0xEB); /* 1003 */
	CHECK_EQ(evbuffer_get_length(bufferevent_get_input(r.ws)), 0);
	rig_close(&r);
}

/* The queue under the filter drains: the write callback runs, as for a socket bufferevent. */
static void test_drain_calls_write_callback(void)
{
	struct rig r;
	static uint8_t big[100000];

	rig_open(&r);
	bufferevent_disable(r.pair[1], EV_READ); /* the client does not read: the queue stays */
	bufferevent_setwatermark(r.ws, EV_WRITE, 1024, 0);
	bufferevent_write(r.ws, big, sizeof(big));
	spin(r.base);
	CHECK(evbuffer_get_length(bufferevent_get_output(r.pair[0])) > sizeof(big));
	r.seen.writes = 0;
	bufferevent_enable(r.pair[1], EV_READ); /* the client reads: the queue drains */
	spin(r.base);
	CHECK_EQ(evbuffer_get_length(bufferevent_get_output(r.pair[0])), 0);
	CHECK(r.seen.writes >= 1);
	rig_close(&r);
}

/* ws_filter_close: once what the session wrote is out, a Close frame with the status follows it
 * (1 the first time), nothing more after it (0: data written later is not framed, a second close
 * adds nothing), and the write callback runs when it has drained (the session's cue to go on). */
static void test_close_from_our_side(void)
{
	struct rig r;
	uint8_t got[32];

	rig_open(&r);
	bufferevent_write(r.ws, "LAST", 4);
	spin(r.base);
	CHECK_EQ(ws_filter_close(r.ws, 1001), 1); /* what the session wrote went out first */
	r.seen.writes = 0;
	spin(r.base);
	CHECK(r.seen.writes >= 1);
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 10);
	CHECK(got[0] == 0x82 && got[1] == 4 && memcmp(got + 2, "LAST", 4) == 0);
	CHECK(got[6] == 0x88 && got[7] == 2 && got[8] == 0x03 && got[9] == 0xE9); /* 1001 */
	CHECK_EQ(ws_filter_close(r.ws, 1000), 0);
	bufferevent_write(r.ws, "MORE", 4);
	spin(r.base);
	CHECK_EQ(evbuffer_get_length(bufferevent_get_input(r.pair[1])), 0);
	CHECK_EQ(r.seen.events, 0);
	rig_close(&r);

	/* The client closed first: its close was answered; ours is not sent again. */
	rig_open(&r);
	{
		uint8_t fr[16];
		size_t n = client_frame(fr, 0x88, "\x03\xe8", 2);

		bufferevent_write(r.pair[1], fr, n);
		spin(r.base);
	}
	CHECK(evbuffer_remove(bufferevent_get_input(r.pair[1]), got, sizeof(got)) == 4 && got[0] == 0x88);
	CHECK_EQ(ws_filter_close(r.ws, 1000), 0);
	spin(r.base);
	CHECK_EQ(evbuffer_get_length(bufferevent_get_input(r.pair[1])), 0);
	rig_close(&r);
}

int main(void)
{
	test_data_both_ways();
	test_ping_close_text();
	test_drain_calls_write_callback();
	test_close_from_our_side();
	CHECK_DONE();
}
