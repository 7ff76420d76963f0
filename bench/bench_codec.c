/* bench_codec.c - micro-benchmark of the per-packet MQTT codec work of a session (proxy/mqtt/, on the
 * wire cursor of wire/wire.h): the fixed header, the parse of an MQTT 5 PUBLISH with properties and
 * the re-encoding of its head (what sealing does), a QoS 1 PUBACK, a SUBSCRIBE.
 *
 * Output: one JSON line per op, op in "frame", "publish_parse", "publish_encode_head", "ack_parse",
 * "subscribe_parse":
 *   {"op":"publish_parse","ns_per_op":41.2,"ops":24000000}
 * Usage: bench_codec [seconds per measurement, default 1]; bench_codec --iters N runs every op N
 * times with no clock and prints one line {"iters":N,"check":...}: a fixed amount of work for
 * `valgrind --tool=callgrind` (instruction counts do not depend on the machine's load). Not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt_codec.h"
#include "mqtt_frame.h"

#define BENCH_BATCH 1024 /* operations between clock reads */

struct bench_pkts {
	uint8_t publish[256];
	size_t publish_len;
	struct mqtt_frame publish_frame;
	struct mqtt_publish parsed;
	uint8_t props[64];
};

static const uint8_t bench_ack[] = {0x40, 0x02, 0x00, 0x07};
static const uint8_t bench_sub[] = {0x82, 0x0b, 0x00, 0x09, 0x00, 0x00, 0x05, 'a', '/', 'b', '/', '#', 0x01};

/* A QoS 1 PUBLISH on a 30-byte topic with payload format, content type and a user property, and a
 * 32-byte payload. */
static int bench_pkts_init(struct bench_pkts *b)
{
	static const char topic[] = "plant/line1/sensor/temperature", ct[] = "application/json";
	static const uint8_t payload[32] = "0123456789abcdef0123456789abcdef";
	static const uint8_t user[] = {0x26, 0, 1, 'k', 0, 1, 'v'};
	struct mqtt_publish p;
	size_t n = 0;
	const char *why = NULL;

	memset(&p, 0, sizeof(p));
	b->props[n++] = 0x01; /* payload format indicator */
	b->props[n++] = 1;
	b->props[n++] = 0x03; /* content type */
	b->props[n++] = 0;
	b->props[n++] = (uint8_t)(sizeof(ct) - 1);
	memcpy(b->props + n, ct, sizeof(ct) - 1);
	n += sizeof(ct) - 1;
	memcpy(b->props + n, user, sizeof(user));
	n += sizeof(user);
	p.qos = 1;
	p.packet_id = 7;
	p.topic = (struct mqtt_buf){(const uint8_t *)topic, sizeof(topic) - 1};
	p.props = (struct mqtt_buf){b->props, n};
	p.payload = (struct mqtt_buf){payload, sizeof(payload)};
	b->publish_len = mqtt_publish_encode(MQTT_LEVEL_5, &p, b->publish, sizeof(b->publish));
	if (b->publish_len == 0 || mqtt_frame_parse(b->publish, b->publish_len, 1u << 20, MQTT_LEVEL_5,
						    &b->publish_frame, &why) != MQTT_PARSE_OK)
		return -1;
	return mqtt_publish_parse(MQTT_LEVEL_5, b->publish_frame.flags, b->publish + b->publish_frame.hdr_len,
				  b->publish_frame.remaining, &b->parsed, &why) == MQTT_PARSE_OK
		       ? 0
		       : -1;
}

/* One operation; returns something derived from the result so that it is not optimised away. */
static size_t bench_run(const struct bench_pkts *b, int op)
{
	uint8_t out[256];
	struct mqtt_frame f;
	struct mqtt_publish p;
	struct mqtt_ack a;
	struct mqtt_subscribe s;
	const char *why = NULL;
	const struct mqtt_frame *pf = &b->publish_frame;

	switch (op) {
	case 0:
		return mqtt_frame_parse(b->publish, b->publish_len, 1u << 20, MQTT_LEVEL_5, &f, &why) ==
				       MQTT_PARSE_OK
			       ? f.remaining
			       : 0;
	case 1:
		return mqtt_publish_parse(MQTT_LEVEL_5, pf->flags, b->publish + pf->hdr_len, pf->remaining,
					  &p, &why) == MQTT_PARSE_OK
			       ? p.payload.len
			       : 0;
	case 2:
		return mqtt_publish_encode_head(MQTT_LEVEL_5, &b->parsed, b->parsed.payload.len, out,
						sizeof(out));
	case 3:
		return mqtt_ack_parse(MQTT_LEVEL_5, MQTT_PUBACK, bench_ack + 2, 2, &a, &why) == MQTT_PARSE_OK
			       ? a.packet_id
			       : 0;
	default:
		return mqtt_subscribe_parse(MQTT_LEVEL_5, MQTT_SUBSCRIBE, bench_sub + 2,
					    sizeof(bench_sub) - 2, &s, &why) == MQTT_PARSE_OK
			       ? s.count
			       : 0;
	}
}

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const bench_names[] = {"frame", "publish_parse", "publish_encode_head", "ack_parse",
					  "subscribe_parse"};

int main(int argc, char **argv)
{
	static struct bench_pkts b;
	size_t check = 0, i, ops;
	double secs = 1.0, t0, t;
	int op;

	if (bench_pkts_init(&b) != 0) {
		fprintf(stderr, "bench_codec: the sample packets do not parse\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "--iters") == 0) {
		size_t iters = strtoul(argv[2], NULL, 10);

		for (i = 0; i < iters; i++)
			for (op = 0; op < 5; op++)
				check += bench_run(&b, op);
		printf("{\"iters\":%zu,\"check\":%zu}\n", iters, check);
		return 0;
	}
	if (argc == 2)
		secs = atof(argv[1]);
	if (secs <= 0)
		secs = 1.0;
	for (op = 0; op < 5; op++) {
		ops = 0;
		t0 = bench_now();
		do {
			for (i = 0; i < BENCH_BATCH; i++)
				check += bench_run(&b, op);
			ops += BENCH_BATCH;
			t = bench_now() - t0;
		} while (t < secs);
		printf("{\"op\":\"%s\",\"ns_per_op\":%.1f,\"ops\":%zu}\n", bench_names[op],
		       t * 1e9 / (double)ops, ops);
	}
	return check == 0; /* every op returns something non-zero */
}
