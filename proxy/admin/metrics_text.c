/* metrics_text.c - the parts of /metrics that are not mqseal's own counters, and the second
 * exposition format:
 *  - mqseal_build_info and the standard process_* metrics (the names every Prometheus client
 *    library exports, read from getrusage, getrlimit and /proc), docs/OPERATIONS.md §8;
 *  - OpenMetrics 1.0 when the scraper asks for it in Accept (Prometheus and the OpenTelemetry
 *    collector do): the same samples, with counter families named without "_total" and a final
 *    "# EOF" (OpenMetrics §4.1, "Counter"). The 0.0.4 text stays the default.
 * The body is written once, in the 0.0.4 form; metrics_to_openmetrics rewrites it, so every
 * metric anybody adds to admin_http.c is served in both formats without a second writer. */
#include "metrics_text.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

/* /proc/self/fd holds one entry per descriptor; a node has at most RLIMIT_NOFILE of them, so this
 * bound only protects the loop from a corrupt listing. */
#define METRICS_MAX_FD_ENTRIES (1u << 22)

static void metrics_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds of CPU (user + system) used by the process so far. */
static double metrics_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Resident set size: the second field of /proc/self/statm, in pages (proc(5)). */
static int metrics_rss_bytes(double *out)
{
	unsigned long size = 0, resident = 0;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "r");
	int rc = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%lu %lu", &size, &resident) == 2 && page > 0) {
		*out = (double)resident * (double)page;
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* Descriptors open now: the entries of /proc/self/fd, less ".", ".." and the one opendir holds. */
static int metrics_open_fds(double *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return -1;
	while (n < METRICS_MAX_FD_ENTRIES && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	*out = n > 0 ? (double)(n - 1) : 0.0;
	return 0;
}

/* "btime" of /proc/stat: the boot time, in seconds since the Unix epoch. */
static int metrics_boot_time(unsigned long long *btime)
{
	char line[256];
	FILE *f = fopen("/proc/stat", "r");
	int rc = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", btime) == 1) {
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}

/* Start time of the process: field 22 of /proc/self/stat (clock ticks after boot) plus btime.
 * Field 2 (the command name) may hold spaces and parentheses, so fields are counted from the
 * last ')'. */
static int metrics_start_time(double *out)
{
	char buf[1024], *p;
	unsigned long long start = 0, btime = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;
	int field;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || hz <= 0 || metrics_boot_time(&btime) != 0)
		return -1;
	for (field = 2; field < 22 && p; field++) /* from the end of field 2, field 22 is 20 blanks on */
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return -1;
	*out = (double)btime + (double)start / (double)hz;
	return 0;
}

static void metrics_value(struct evbuffer *b, const char *name, const char *type, const char *help, double v)
{
	metrics_head(b, name, type, help);
	if (v >= 0 && v < 1e15 && v == (double)(uint64_t)v) /* whole numbers (counts, bytes) in full */
		evbuffer_add_printf(b, "%s %.0f\n", name, v);
	else
		evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

void metrics_build_info(struct evbuffer *b)
{
	metrics_head(b, "mqseal_build_info", "gauge",
		     "Always 1; the labels say which mqseal and which libraries this process runs.");
	evbuffer_add_printf(b, "mqseal_build_info{version=\"%s\",openssl=\"%s\",libevent=\"%s\"} 1\n",
			    MQSEAL_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), event_get_version());
}

void metrics_process(struct evbuffer *b)
{
	struct rlimit rl;
	double v;

	metrics_value(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
		      metrics_cpu_seconds());
	if (metrics_rss_bytes(&v) == 0)
		metrics_value(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", v);
	if (metrics_open_fds(&v) == 0)
		metrics_value(b, "process_open_fds", "gauge", "Number of open file descriptors.", v);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_value(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
			      (double)rl.rlim_cur);
	if (metrics_start_time(&v) == 0)
		metrics_value(b, "process_start_time_seconds", "gauge",
			      "Start time of the process since unix epoch in seconds.", v);
}

/* ---------------------------------------------------------------- content negotiation */

static const char METRICS_OM_TYPE[] = "application/openmetrics-text";

bool metrics_wants_openmetrics(const char *head, size_t len)
{
	size_t i = 0, eol, tlen = sizeof(METRICS_OM_TYPE) - 1;

	while (i < len) {
		for (eol = i; eol < len && head[eol] != '\n'; eol++)
			;
		if (eol - i > 7 && strncasecmp(head + i, "accept:", 7) == 0) {
			for (size_t k = i + 7; k + tlen <= eol; k++)
				if (strncasecmp(head + k, METRICS_OM_TYPE, tlen) == 0)
					return true;
		}
		i = eol + 1;
	}
	return false;
}

/* ---------------------------------------------------------------- OpenMetrics rewrite */

/* Is "# TYPE <name> counter" in text, for the name at name[0..nlen)? */
static bool metrics_is_counter(const char *text, size_t len, const char *name, size_t nlen)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (l == 7 + nlen + 8 && memcmp(p, "# TYPE ", 7) == 0 && memcmp(p + 7, name, nlen) == 0 &&
		    memcmp(p + 7 + nlen, " counter", 8) == 0)
			return true;
		p += l + 1;
	}
	return false;
}

/* A "# HELP" or "# TYPE" line of a counter family named "..._total": the family name loses the
 * suffix (its samples keep it). Returns how many bytes of the name to drop (0 or 6). */
static size_t metrics_om_trim(const char *text, size_t len, const char *line, size_t l)
{
	const char *name, *sp;
	size_t nlen;

	if (l < 7 || (memcmp(line, "# HELP ", 7) != 0 && memcmp(line, "# TYPE ", 7) != 0))
		return 0;
	name = line + 7;
	sp = memchr(name, ' ', l - 7);
	nlen = sp ? (size_t)(sp - name) : l - 7;
	if (nlen <= 6 || memcmp(name + nlen - 6, "_total", 6) != 0 || !metrics_is_counter(text, len, name, nlen))
		return 0;
	return 6;
}

int metrics_to_openmetrics(struct evbuffer *in, struct evbuffer *out)
{
	size_t len = evbuffer_get_length(in);
	const char *text = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *p = text, *end = text + len;

	if (len && !text)
		return -1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
		size_t drop = metrics_om_trim(text, len, p, l);
		const char *sp = drop ? memchr(p + 7, ' ', l - 7) : NULL;

		if (drop && sp) {
			if (evbuffer_add(out, p, (size_t)(sp - p) - drop) != 0 ||
			    evbuffer_add(out, sp, l - (size_t)(sp - p)) != 0 || evbuffer_add(out, "\n", 1) != 0)
				return -1;
		} else if (drop) {
			if (evbuffer_add(out, p, l - drop) != 0 || evbuffer_add(out, "\n", 1) != 0)
				return -1;
		} else if (evbuffer_add(out, p, l) != 0 || evbuffer_add(out, "\n", 1) != 0) {
			return -1;
		}
		p += l + 1;
	}
	return evbuffer_add(out, "# EOF\n", 6);
}
