/* log.c - text or JSON log lines on stderr, one per event (docs/OPERATIONS.md, "Logs"). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level log_level_cur = LOG_INFO;
static bool log_json;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	log_level_cur = level;
}

enum log_level log_get_level(void)
{
	return log_level_cur;
}

void log_set_json(bool json)
{
	log_json = json;
}

bool log_enabled(enum log_level level)
{
	return level <= log_level_cur;
}

/* Appends s to out as the body of a JSON string (RFC 8259 §7 escapes). */
static size_t log_json_escape(char *out, size_t cap, size_t pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s && pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[pos++] = '\\';
			out[pos++] = (char)c;
		} else if (c < 0x20) {
			memcpy(out + pos, "\\u00", 4);
			out[pos + 4] = hex[c >> 4];
			out[pos + 5] = hex[c & 15];
			pos += 6;
		} else {
			out[pos++] = (char)c;
		}
	}
	return pos;
}

static void log_timestamp(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void log_write_json(const char *ts, enum log_level level, const char *component,
			   const char *peer, const char *client, const char *msg)
{
	char line[2048];
	const size_t lim = sizeof(line) - 48; /* room for the fixed parts after any field */
	size_t pos = 0;

	pos += (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
				ts, log_level_names[level]);
	pos = log_json_escape(line, lim, pos, component);
	if (peer) {
		memcpy(line + pos, "\",\"peer\":\"", 10);
		pos = log_json_escape(line, lim, pos + 10, peer);
	}
	if (client) {
		memcpy(line + pos, "\",\"client\":\"", 12);
		pos = log_json_escape(line, lim, pos + 12, client);
	}
	memcpy(line + pos, "\",\"msg\":\"", 9);
	pos = log_json_escape(line, lim, pos + 9, msg);
	memcpy(line + pos, "\"}\n", 4);
	fputs(line, stderr);
}

void log_emit(enum log_level level, const char *component, const char *peer, const char *client,
	      const char *fmt, ...)
{
	char msg[1024], ts[64];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	/* clang-analyzer 14 misreads x86-64's array-typed va_list after va_start. */
	vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	log_timestamp(ts, sizeof(ts));
	if (log_json) {
		log_write_json(ts, level, component, peer, client, msg);
		return;
	}
	if (peer || client)
		fprintf(stderr, "%s %s %s [%s%s%s] %s\n", ts, log_level_names[level], component,
			peer ? peer : "", client ? " client=" : "", client ? client : "", msg);
	else
		fprintf(stderr, "%s %s %s %s\n", ts, log_level_names[level], component, msg);
}

bool log_limit_allow(struct log_limit *lim, uint64_t now_ms, unsigned *suppressed_before)
{
	if (suppressed_before)
		*suppressed_before = 0;
	if (lim->window_start == 0 || now_ms - lim->window_start >= LOG_LIMIT_WINDOW_MS) {
		if (suppressed_before)
			*suppressed_before = lim->suppressed;
		lim->window_start = now_ms ? now_ms : 1;
		lim->emitted = 0;
		lim->suppressed = 0;
	}
	if (lim->emitted < LOG_LIMIT_BURST) {
		lim->emitted++;
		return true;
	}
	lim->suppressed++;
	return false;
}

const char *log_suppressed_note(unsigned suppressed, char buf[static LOG_NOTE_MAX])
{
	if (!suppressed)
		return "";
	snprintf(buf, LOG_NOTE_MAX, " (%u similar suppressed)", suppressed);
	return buf;
}
