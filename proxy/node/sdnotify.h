/* sdnotify.h - the service manager's notification protocol (sd_notify(3)), without libsystemd:
 * one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * an abstract name written with a leading '@'). Without $NOTIFY_SOCKET every call does nothing. */
#ifndef PX_SDNOTIFY_H
#define PX_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct sdnotify;

/* Opens the socket $NOTIFY_SOCKET names. Returns NULL when it is unset (nothing to notify) or
 * cannot be used (err says why; err[0] is '\0' when it is simply unset). Caller frees. */
struct sdnotify *sdnotify_open(char *err, size_t errlen);
void sdnotify_free(struct sdnotify *sd);

/* Sends msg (one or more "KEY=VALUE" lines) as one datagram. sd may be NULL (no-op, 0). 0 or -1
 * with errno set. */
int sdnotify_send(struct sdnotify *sd, const char *msg);

/* Pure: fills sa/len for the address text of $NOTIFY_SOCKET ("/path" or "@abstract"). -1 if it is
 * empty, relative, or too long. */
int sdnotify_addr(const char *text, struct sockaddr_un *sa, socklen_t *len);

/* Pure: the watchdog interval in microseconds from $WATCHDOG_USEC and $WATCHDOG_PID (either may
 * be NULL), or 0 when there is none for this process (self): unset, malformed, 0, or meant for
 * another PID (systemd.service(5) WatchdogSec=). */
uint64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self);

#endif
