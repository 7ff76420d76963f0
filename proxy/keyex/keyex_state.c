/* keyex_state.c - the state file (PROTOCOL.md §9.5) on disk, for the adapter: read whole at start;
 * each PERSIST action's text written to a temporary file, fsync'd, renamed over the old one and
 * the directory fsync'd, so a crash leaves the old or the new file, never half of one. */
#include "keyex_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_READ_MAX (16u << 20) /* far above 10,000 peers' lines */

int keyex_state_read(const char *dir, const char *path, char **text)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n = 0, cap = 4096;
	int rc = -1;

	*text = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n + 1 < cap || cap >= STATE_READ_MAX)
			break;
		char *nb = realloc(buf, cap * 2);
		if (!nb)
			goto out;
		buf = nb;
		cap *= 2;
	}
	if (!buf || ferror(f))
		goto out;
	buf[n] = '\0';
	*text = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int keyex_state_write_fd(int fd, const char *text, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return fsync(fd);
}

int keyex_state_write(const char *dir, const char *path, const char *text, size_t len)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	int rc = -1, fd, dfd;

	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (keyex_state_write_fd(fd, text, len) != 0) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
		goto out;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}
