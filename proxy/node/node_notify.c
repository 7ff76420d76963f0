/* node_notify.c - what a running node tells its service manager (sd_notify(3), through
 * sdnotify.c) and `mqseal reload` (reload.c): READY=1 once the listener (and the admin endpoint)
 * are bound and the key exchange is started, whether or not the broker is up yet (STATUS= says
 * it: a broker outage must not fail the start); STATUS= with the peer summary whenever it
 * changes (checked each second); WATCHDOG=1 at half of $WATCHDOG_USEC from the event loop itself,
 * so a stalled loop is noticed; RELOADING=1 (with MONOTONIC_USEC=, systemd 253+) and READY=1
 * around a SIGHUP; STOPPING=1 at SIGTERM/SIGINT. docs/OPERATIONS.md, "systemd". */
#include "node_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "reload.h"
#include "sdnotify.h"
#include "session.h"

static void node_notify(struct node *n, const char *msg)
{
	static struct log_limit lim;

	if (sdnotify_send(n->sd, msg) != 0 && log_limit_allow(&lim, clock_mono_ms(), NULL))
		log_warn("node", "NOTIFY_SOCKET: cannot notify the service manager: %s", strerror(errno));
}

/* "broker connected; 3 of 3 peers keyed, 12 devices" */
static void node_status_text(const struct node *n, char *out, size_t len)
{
	size_t devices = n->ctx.sessions ? session_set_count(n->ctx.sessions) : 0;

	snprintf(out, len, "broker %s; %" PRIu64 " of %zu peers keyed, %zu device%s",
		 n->stats.control_connected ? "connected" : "not connected", n->stats.peers_keyed,
		 n->conf->npeers, devices, devices == 1 ? "" : "s");
}

void node_notify_status_(struct node *n)
{
	char status[sizeof(n->sd_status)], msg[sizeof(n->sd_status) + 8];

	if (!n->sd)
		return;
	node_status_text(n, status, sizeof(status));
	if (strcmp(status, n->sd_status) == 0)
		return;
	memcpy(n->sd_status, status, sizeof(status));
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	node_notify(n, msg);
}

static void node_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	node_notify(arg, "WATCHDOG=1");
}

/* WATCHDOG=1 at half the interval systemd expects (sd_watchdog_enabled(3)). */
static int node_watchdog_start(struct node *n)
{
	char pid[32];
	uint64_t usec = sdnotify_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid());
	struct timeval tv;

	if (!usec)
		return 0;
	usec /= 2;
	if (usec < 1000)
		usec = 1000; /* a zero-length persistent timer would spin the loop */
	tv.tv_sec = (time_t)(usec / 1000000u);
	tv.tv_usec = (suseconds_t)(usec % 1000000u);
	n->watchdog = event_new(n->ctx.base, -1, EV_PERSIST, node_on_watchdog, n);
	if (!n->watchdog || event_add(n->watchdog, &tv) != 0)
		return -1;
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	log_info("node", "systemd watchdog: WATCHDOG=1 every %" PRIu64 " ms (pid %s)", usec / 1000, pid);
	return 0;
}

/* The reload-result file for `mqseal reload`; a failure to write it is logged, not fatal. */
void node_reload_result_(struct node *n, const char *result, const char *message)
{
	struct reload_result r;

	if (!n->reload_path)
		return;
	memset(&r, 0, sizeof(r));
	r.pid = getpid();
	r.reloads = n->reloads;
	snprintf(r.result, sizeof(r.result), "%s", result);
	snprintf(r.message, sizeof(r.message), "%s", message);
	if (reload_result_write(n->reload_path, &r) != 0)
		log_warn("node", "cannot write %s: %s (mqseal reload cannot report the outcome)",
			 n->reload_path, strerror(errno));
}

int node_notify_ready_(struct node *n, char *err, size_t errlen)
{
	size_t len = strlen(n->conf->state_dir) + sizeof("/" RELOAD_RESULT_FILE);

	n->reload_path = malloc(len);
	if (!n->reload_path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(n->reload_path, len, "%s/%s", n->conf->state_dir, RELOAD_RESULT_FILE);
	node_reload_result_(n, "started", "running");
	n->sd = sdnotify_open(err, errlen);
	if (!n->sd && err[0])
		log_warn("node", "%s: readiness is not reported", err);
	err[0] = '\0';
	if (!n->sd)
		return 0;
	if (node_watchdog_start(n) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	node_notify(n, "READY=1");
	node_notify_status_(n);
	return 0;
}

void node_notify_reloading_(struct node *n)
{
	struct timespec ts;
	char msg[64];

	if (!n->sd)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		 (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	node_notify(n, msg);
}

void node_notify_reloaded_(struct node *n)
{
	if (!n->sd)
		return;
	node_notify(n, "READY=1");
	n->sd_status[0] = '\0'; /* say the summary again after the reload */
	node_notify_status_(n);
}

void node_notify_stopping_(struct node *n)
{
	node_notify(n, "STOPPING=1");
}

void node_notify_free_(struct node *n)
{
	if (n->reload_path)
		(void)unlink(n->reload_path);
	free(n->reload_path);
	if (n->watchdog)
		event_free(n->watchdog);
	sdnotify_free(n->sd);
}
