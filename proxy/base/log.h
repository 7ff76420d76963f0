/* log.h - one line per event on stderr, as text or JSON, with a level, a component and (where
 * there are some) structured fields: the device address, MQTT client id, peer node id, epoch,
 * topic, reason. When stderr is the systemd journal (JOURNAL_STREAM), each line starts with its
 * sd-daemon(3) priority prefix. Never pass key material or payload bytes to these functions.
 * Repetitive warnings go through a struct log_limit. */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Process-wide settings (the logger is the one process-wide facility). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_json(bool json);
bool log_enabled(enum log_level level);

/* Structured fields of one line (docs/OPERATIONS.md, "Logs"); NULL fields are left out. The JSON
 * names are the member names; text shows only "[DEVICE client=ID]" (the message says the rest). */
struct log_fields {
	const char *device;    /* a device connection's address, "host:port" */
	const char *client_id; /* its MQTT client id */
	const char *peer_id;   /* a peer node's id */
	const char *topic;     /* an MQTT topic */
	const char *reason;    /* a short machine-readable cause (e.g. a rejection name) */
	uint64_t epoch;	       /* a key epoch, when has_epoch */
	bool has_epoch;
};

/* f may be NULL. */
void log_emitf(enum log_level level, const char *component, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* device (a device address) and client (its client id) may be NULL: log_emitf with those two. */
void log_emit(enum log_level level, const char *component, const char *device, const char *client,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* journald (sd-daemon(3), systemd.exec(5) JOURNAL_STREAM): is stderr the journal stream? Reads
 * JOURNAL_STREAM ("DEV:INO") and fstat(2)s stderr; turns the "<N>" priority prefixes on if so.
 * Call once before the first line. */
void log_detect_journal(void);
void log_set_journal(bool on);
/* Pure: does env (JOURNAL_STREAM's value, may be NULL) name the file with device dev, inode ino? */
bool log_journal_stream_is(const char *env, uint64_t dev, uint64_t ino);
/* A line not in the log format (configuration errors before the format is known), with the
 * journald prefix of level when stderr is the journal. */
void log_plain(enum log_level level, const char *line);

#define log_error(comp, ...) log_emit(LOG_ERROR, comp, NULL, NULL, __VA_ARGS__)
#define log_warn(comp, ...) log_emit(LOG_WARN, comp, NULL, NULL, __VA_ARGS__)
#define log_info(comp, ...) log_emit(LOG_INFO, comp, NULL, NULL, __VA_ARGS__)
#define log_debug(comp, ...) log_emit(LOG_DEBUG, comp, NULL, NULL, __VA_ARGS__)

/* Rate limit for one kind of repetitive line: at most LOG_LIMIT_BURST lines per
 * LOG_LIMIT_WINDOW_MS; the first line after a window with suppressed lines reports how many. */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_WINDOW_MS 10000
struct log_limit {
	uint64_t window_start;
	unsigned emitted;
	unsigned suppressed;
};
/* Returns true if the caller should log now; *suppressed_before (if not NULL) gets the number of
 * lines suppressed in the previous window (to append "(N similar suppressed)"). */
bool log_limit_allow(struct log_limit *lim, uint64_t now_ms, unsigned *suppressed_before);
/* " (N similar suppressed)" for N > 0, else "": the tail of the first line after suppression. */
#define LOG_NOTE_MAX 48
const char *log_suppressed_note(unsigned suppressed, char buf[static LOG_NOTE_MAX]);

#endif
