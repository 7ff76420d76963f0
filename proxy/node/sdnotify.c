/* sdnotify.c - sd_notify(3) of our own: the protocol is one datagram per message on an AF_UNIX
 * socket whose address systemd passes in $NOTIFY_SOCKET (systemd.service(5), Type=notify), so
 * libsystemd is not needed. An address starting with '@' is in the abstract namespace (the '@'
 * becomes a NUL byte, unix(7)). The socket is opened once and is close-on-exec and non-blocking:
 * a notification is never worth stalling the event loop for. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sdnotify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
};

int sdnotify_addr(const char *text, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = text ? strlen(text) : 0;

	if (n < 2 || (text[0] != '/' && text[0] != '@') || n >= sizeof(sa->sun_path))
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, text, n);
	if (text[0] == '@') {
		sa->sun_path[0] = '\0';
		/* An abstract name is exactly n bytes long: no terminating NUL in the length. */
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

uint64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self)
{
	unsigned long long v, p;
	char *end;

	if (!usec || !*usec || *usec == '-')
		return 0;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	if (pid && *pid) {
		if (*pid == '-')
			return 0;
		p = strtoull(pid, &end, 10);
		if (errno || *end || p != (unsigned long long)self)
			return 0;
	}
	return (uint64_t)v;
}

struct sdnotify *sdnotify_open(char *err, size_t errlen)
{
	const char *text = getenv("NOTIFY_SOCKET");
	struct sdnotify *sd = NULL;

	err[0] = '\0';
	if (!text || !*text)
		return NULL;
	sd = calloc(1, sizeof(*sd));
	if (!sd) {
		snprintf(err, errlen, "NOTIFY_SOCKET: out of memory");
		return NULL;
	}
	if (sdnotify_addr(text, &sd->addr, &sd->addrlen) != 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET=%s: not an absolute path or @abstract name", text);
		goto fail;
	}
	sd->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sd->fd < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
		goto fail;
	}
	return sd;
fail:
	free(sd);
	return NULL;
}

void sdnotify_free(struct sdnotify *sd)
{
	if (!sd)
		return;
	close(sd->fd);
	free(sd);
}

int sdnotify_send(struct sdnotify *sd, const char *msg)
{
	ssize_t n;

	if (!sd)
		return 0;
	n = sendto(sd->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sd->addr, sd->addrlen);
	return n < 0 ? -1 : 0;
}
