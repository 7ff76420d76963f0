/* test_sdnotify.c - proxy/node/sdnotify.c: $NOTIFY_SOCKET addresses (a path with its NUL in the
 * length, an abstract '@' name without), $WATCHDOG_USEC/$WATCHDOG_PID parsing, and a datagram
 * that really arrives on a bound socket; proxy/node/reload.c: the reload-result file round trip and
 * its rejection of files in another format. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "reload.h"
#include "sdnotify.h"

static void test_addr(void)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	char big[200];

	CHECK(sdnotify_addr("/run/systemd/notify", &sa, &len) == 0);
	CHECK(strcmp(sa.sun_path, "/run/systemd/notify") == 0);
	CHECK_EQ(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
	CHECK(sdnotify_addr("@abc", &sa, &len) == 0);
	CHECK(sa.sun_path[0] == '\0' && memcmp(sa.sun_path + 1, "abc", 3) == 0);
	CHECK_EQ(len, offsetof(struct sockaddr_un, sun_path) + 4);
	CHECK(sdnotify_addr("relative", &sa, &len) == -1);
	CHECK(sdnotify_addr("", &sa, &len) == -1);
	CHECK(sdnotify_addr("@", &sa, &len) == -1);
	CHECK(sdnotify_addr(NULL, &sa, &len) == -1);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	CHECK(sdnotify_addr(big, &sa, &len) == -1);
}

static void test_watchdog(void)
{
	CHECK_EQ(sdnotify_watchdog_usec("30000000", NULL, 5), 30000000);
	CHECK_EQ(sdnotify_watchdog_usec("30000000", "", 5), 30000000);
	CHECK_EQ(sdnotify_watchdog_usec("30000000", "5", 5), 30000000);
	CHECK_EQ(sdnotify_watchdog_usec("30000000", "6", 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("30000000", "5x", 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("0", NULL, 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("-5", NULL, 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("12s", NULL, 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("", NULL, 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec(NULL, "5", 5), 0);
	CHECK_EQ(sdnotify_watchdog_usec("99999999999999999999999", NULL, 5), 0);
}

/* A real datagram on a socket bound in the abstract namespace. */
static void test_send(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct sdnotify *sd;
	char name[64], err[128], buf[64];
	struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	CHECK(fd >= 0);
	snprintf(name, sizeof(name), "@mqseal-test-sdnotify-%ld", (long)getpid());
	CHECK(sdnotify_addr(name, &sa, &len) == 0);
	CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(unsetenv("NOTIFY_SOCKET") == 0);
	CHECK(sdnotify_open(err, sizeof(err)) == NULL && err[0] == '\0');
	CHECK(sdnotify_send(NULL, "READY=1") == 0);
	CHECK(setenv("NOTIFY_SOCKET", "not/absolute", 1) == 0);
	CHECK(sdnotify_open(err, sizeof(err)) == NULL && strstr(err, "NOTIFY_SOCKET") != NULL);
	CHECK(setenv("NOTIFY_SOCKET", name, 1) == 0);
	sd = sdnotify_open(err, sizeof(err));
	CHECK(sd != NULL);
	CHECK(sdnotify_send(sd, "READY=1\nSTATUS=x") == 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	CHECK(n == 16);
	if (n > 0) {
		buf[n] = '\0';
		CHECK(strcmp(buf, "READY=1\nSTATUS=x") == 0);
	}
	sdnotify_free(sd);
	sdnotify_free(NULL);
	close(fd);
	CHECK(unsetenv("NOTIFY_SOCKET") == 0);
}

static void test_reload_result(void)
{
	char dir[] = "/tmp/mqseal-test-reload-XXXXXX", path[128];
	struct reload_result w = {.pid = 1234, .reloads = 7}, r;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/%s", dir, RELOAD_RESULT_FILE);
	CHECK(reload_result_read(path, &r) == -1 && errno == ENOENT);
	snprintf(w.result, sizeof(w.result), "refused");
	snprintf(w.message, sizeof(w.message), "node_id changed");
	CHECK(reload_result_write(path, &w) == 0);
	CHECK(reload_result_read(path, &r) == 0);
	CHECK(r.pid == 1234 && r.reloads == 7 && strcmp(r.result, "refused") == 0 &&
	      strcmp(r.message, "node_id changed") == 0);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("pid 0\nreloads 1\nresult ok\nmessage m\n", f);
		fclose(f);
	}
	CHECK(reload_result_read(path, &r) == -1 && errno == EINVAL);
	f = fopen(path, "w");
	if (f) {
		fputs("pid 12\nresult ok\n", f);
		fclose(f);
	}
	CHECK(reload_result_read(path, &r) == -1 && errno == EINVAL);
	CHECK(unlink(path) == 0);
	CHECK(rmdir(dir) == 0);
}

int main(void)
{
	test_addr();
	test_watchdog();
	test_send();
	test_reload_result();
	CHECK_DONE();
}
