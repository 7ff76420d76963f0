/* log.c - text or JSON log lines on stderr, one per event (docs/OPERATIONS.md, "Logs"). Every
 * field may carry bytes from the network (topics, client ids, peer ids, reasons quoting them), so
 * both formats escape what could end a line or forge one: in text, control characters, DEL,
 * backslash and bytes that are not UTF-8 become \xNN (\\ for a backslash); in JSON, RFC 8259
 * escapes, with DEL as \u007f and non-UTF-8 bytes as the text \xNN. One event, one line.
 * Under journald (JOURNAL_STREAM names stderr) each line starts with "<N>", its syslog priority
 * (sd-daemon(3)); journald strips it and files the line at that priority. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static enum log_level log_level_cur = LOG_INFO;
static bool log_json;
static bool log_journal; /* stderr is the journal: "<N>" prefixes */

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

static const char log_hex[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 if the byte at s does not start one. s is NUL-terminated, and NUL
 * is no continuation byte, so no read goes past it. */
static size_t log_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Writes esc ("\\x" or "\\u00") and the byte c in two hex digits at out + pos. */
static size_t log_put_hex(char *out, size_t pos, const char *esc, unsigned char c)
{
	size_t n = strlen(esc);

	memcpy(out + pos, esc, n);
	out[pos + n] = log_hex[c >> 4];
	out[pos + n + 1] = log_hex[c & 15];
	return pos + n + 2;
}

/* Appends s to out (json: as the body of a JSON string); stops, at a character boundary, when
 * fewer than 8 bytes of cap are left. Returns the new end. */
static size_t log_escape(char *out, size_t cap, size_t pos, const char *s, bool json)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p && pos + 8 < cap) {
		n = log_utf8_len(p);
		if (n == 0) {
			pos = log_put_hex(out, pos, json ? "\\\\x" : "\\x", *p);
		} else if (*p == '\\') {
			memcpy(out + pos, "\\\\", 2);
			pos += 2;
		} else if (json && *p == '"') {
			memcpy(out + pos, "\\\"", 2);
			pos += 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			pos = log_put_hex(out, pos, json ? "\\u00" : "\\x", *p);
		} else if (pos + n + 8 < cap) {
			memcpy(out + pos, p, n);
			pos += n;
		} else {
			break;
		}
		p += n ? n : 1;
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

/* The "<N>" prefix of sd-daemon(3) for level (LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7),
 * or "" when stderr is not the journal. */
static const char *log_prefix(enum log_level level)
{
	static const char *const prefixes[] = {"<3>", "<4>", "<6>", "<7>"};

	return log_journal ? prefixes[level] : "";
}

/* A line is at most LOG_LINE_MAX bytes. Escaped fields stop LOG_LINE_ROOM bytes before the end: the
 * fixed parts after them (field names, an epoch, the tail: under 140 bytes all together) always fit. */
#define LOG_LINE_MAX  4096
#define LOG_LINE_ROOM 256
#define LOG_LINE_LIM  (LOG_LINE_MAX - LOG_LINE_ROOM)

/* Appends ,"name":"value" if value is set. */
static size_t log_put_field(char *line, size_t pos, const char *name, const char *value)
{
	if (!value)
		return pos;
	pos += (size_t)snprintf(line + pos, LOG_LINE_MAX - pos, ",\"%s\":\"", name);
	pos = log_escape(line, LOG_LINE_LIM, pos, value, true);
	line[pos++] = '"';
	return pos;
}

/* The structured fields, each under its own name (docs/OPERATIONS.md, "Logs"). */
static size_t log_put_fields(char *line, size_t pos, const struct log_fields *f)
{
	pos = log_put_field(line, pos, "device", f->device);
	pos = log_put_field(line, pos, "client_id", f->client_id);
	pos = log_put_field(line, pos, "peer_id", f->peer_id);
	if (f->has_epoch)
		pos += (size_t)snprintf(line + pos, LOG_LINE_MAX - pos, ",\"epoch\":%" PRIu64, f->epoch);
	pos = log_put_field(line, pos, "topic", f->topic);
	return log_put_field(line, pos, "reason", f->reason);
}

static void log_write_json(const char *ts, enum log_level level, const char *component,
			   const struct log_fields *f, const char *msg)
{
	char line[LOG_LINE_MAX];
	size_t pos = 0;

	pos += (size_t)snprintf(line, sizeof(line), "%s{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
				log_prefix(level), ts, log_level_names[level]);
	pos = log_escape(line, LOG_LINE_LIM, pos, component, true);
	line[pos++] = '"';
	pos = log_put_fields(line, pos, f);
	memcpy(line + pos, ",\"msg\":\"", 8);
	pos = log_escape(line, LOG_LINE_LIM, pos + 8, msg, true);
	memcpy(line + pos, "\"}\n", 4);
	fputs(line, stderr);
}

/* "TS LEVEL COMPONENT [DEVICE client=ID] MSG", each field escaped. Of the structured fields, text
 * shows only the device connection's (as it always did): the message itself names the peer, the
 * epoch, the topic and the reason, and people grep the lines as they are. */
static void log_write_text(const char *ts, enum log_level level, const char *component,
			   const struct log_fields *f, const char *msg)
{
	char line[LOG_LINE_MAX];
	size_t pos;

	pos = (size_t)snprintf(line, sizeof(line), "%s%s %s ", log_prefix(level), ts, log_level_names[level]);
	pos = log_escape(line, LOG_LINE_LIM, pos, component, false);
	line[pos++] = ' ';
	if (f->device || f->client_id) {
		line[pos++] = '[';
		pos = log_escape(line, LOG_LINE_LIM, pos, f->device ? f->device : "", false);
		if (f->client_id) {
			memcpy(line + pos, " client=", 8);
			pos = log_escape(line, LOG_LINE_LIM, pos + 8, f->client_id, false);
		}
		memcpy(line + pos, "] ", 2);
		pos += 2;
	}
	pos = log_escape(line, LOG_LINE_LIM, pos, msg, false);
	memcpy(line + pos, "\n", 2);
	fputs(line, stderr);
}

static void log_vemit(enum log_level level, const char *component, const struct log_fields *f,
		      const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void log_vemit(enum log_level level, const char *component, const struct log_fields *f,
		      const char *fmt, va_list ap)
{
	static const struct log_fields none = {0};
	char msg[1024], ts[64];

	/* clang-analyzer 14 misreads x86-64's array-typed va_list after va_start. */
	vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	log_timestamp(ts, sizeof(ts));
	if (log_json)
		log_write_json(ts, level, component, f ? f : &none, msg);
	else
		log_write_text(ts, level, component, f ? f : &none, msg);
}

void log_emitf(enum log_level level, const char *component, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vemit(level, component, f, fmt, ap);
	va_end(ap);
}

void log_emit(enum log_level level, const char *component, const char *device, const char *client,
	      const char *fmt, ...)
{
	const struct log_fields f = {.device = device, .client_id = client};
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vemit(level, component, &f, fmt, ap);
	va_end(ap);
}

bool log_journal_stream_is(const char *env, uint64_t dev, uint64_t ino)
{
	unsigned long long d, i;
	char *end;

	if (!env || !*env || *env == '-' || *env == ' ')
		return false;
	errno = 0;
	d = strtoull(env, &end, 10);
	if (errno || end == env || *end != ':' || end[1] == '-' || end[1] == ' ' || !end[1])
		return false;
	env = end + 1;
	i = strtoull(env, &end, 10);
	if (errno || end == env || *end)
		return false;
	return d == dev && i == ino;
}

void log_detect_journal(void)
{
	struct stat st;

	if (fstat(STDERR_FILENO, &st) != 0)
		return;
	log_journal =
		log_journal_stream_is(getenv("JOURNAL_STREAM"), (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

void log_set_journal(bool on)
{
	log_journal = on;
}

void log_plain(enum log_level level, const char *line)
{
	fprintf(stderr, "%s%s\n", log_prefix(level), line);
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
