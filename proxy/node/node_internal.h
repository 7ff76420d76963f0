/* node_internal.h - struct node, shared by node.c (setup, run, teardown) and node_signal.c
 * (SIGTERM/SIGINT graceful stop, SIGHUP reload). Not for other modules. */
#ifndef PX_NODE_INTERNAL_H
#define PX_NODE_INTERNAL_H

#include <stdint.h>

#include <event2/event.h>

#include "ctx.h"
#include "node.h"
#include "stats.h"
#include "conf.h"

struct node {
	struct px_ctx ctx;
	struct px_conf *conf;      /* the configuration in force; a reload swaps in only peers, topics, log */
	const char *conf_path;
	int verbosity;
	struct stats stats;
	struct listener *listener;
	struct admin_http *admin;
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *shutdown_timer;
	uint64_t shutdown_deadline; /* monotonic ms: close whatever is left */
	struct event *housekeeping;
	char *marks_path;           /* <state_dir>/marks */
	uint64_t marks_saved;       /* monotonic ms of the last save */
	/* node_notify.c: service manager and `mqseal reload` */
	struct sdnotify *sd;        /* NULL without $NOTIFY_SOCKET */
	struct event *watchdog;     /* WATCHDOG=1 timer, with $WATCHDOG_USEC */
	char sd_status[128];        /* the last STATUS= sent */
	char *reload_path;          /* <state_dir>/reload-result */
	unsigned long reloads;      /* SIGHUPs handled */
};

void node_apply_log_(const struct px_conf *conf, int verbosity);
void node_print_conf_errors_(const struct conf_errors *errs);

/* node_signal.c */
void node_on_signal_(evutil_socket_t sig, short what, void *arg);
void node_on_shutdown_timer_(evutil_socket_t fd, short what, void *arg);

/* node_notify.c */
int node_notify_ready_(struct node *n, char *err, size_t errlen);
void node_notify_status_(struct node *n);
void node_notify_reloading_(struct node *n);
void node_notify_reloaded_(struct node *n);
void node_notify_stopping_(struct node *n);
void node_notify_free_(struct node *n);
void node_reload_result_(struct node *n, const char *result, const char *message);

#endif
