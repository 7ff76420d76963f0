/* log.h - one line per event on stderr, as text or JSON, with a level, a component and (where
 * there is one) the device peer address and MQTT client id. Never pass key material or payload
 * bytes to these functions. Repetitive warnings go through a struct log_limit. */
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

/* peer and client may be NULL. */
void log_emit(enum log_level level, const char *component, const char *peer, const char *client,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

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
