/* keyex_state.c - the only persisted facts (PROTOCOL.md §9.5): this node's last epoch and, per
 * peer, the last accepted (epoch, rev). Written to a temporary file, fsync'd, renamed over the
 * old one and the directory fsync'd, so a crash leaves the old or the new file, never half of one. */
#include "keyex_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#define STATE_MAGIC "mqseal-state 1"

static void keyex_state_line(struct keyex *kx, const char *line)
{
	char id[ANN_ID_MAX + 2];
	uint64_t epoch;
	uint32_t rev;
	struct kx_peer *p;

	if (sscanf(line, "epoch %" SCNu64, &epoch) == 1) {
		kx->state_epoch = epoch;
	} else if (sscanf(line, "peer %65s %" SCNu64 " %" SCNu32, id, &epoch, &rev) == 3) {
		p = keyex_peer_(kx, id, strlen(id));
		if (p) { /* peers no longer configured are forgotten */
			p->epoch = epoch;
			p->rev = rev;
		}
	}
}

int keyex_state_load_(struct keyex *kx)
{
	char line[256];
	FILE *f;

	if (mkdir(kx->ctx->conf->state_dir, 0700) != 0 && errno != EEXIST)
		return -1;
	f = fopen(kx->state_path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	if (!fgets(line, sizeof(line), f) || strncmp(line, STATE_MAGIC, strlen(STATE_MAGIC)) != 0) {
		log_warn("keyex", "%s: not an mqseal state file; starting from the clock", kx->state_path);
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f))
		keyex_state_line(kx, line);
	fclose(f);
	return 0;
}

static int keyex_state_write(struct keyex *kx, FILE *f)
{
	size_t i;

	if (fprintf(f, "%s\nepoch %" PRIu64 "\n", STATE_MAGIC, kx->state_epoch) < 0)
		return -1;
	for (i = 0; i < kx->npeers; i++) {
		const struct kx_peer *p = &kx->peers[i];
		if (p->epoch && fprintf(f, "peer %s %" PRIu64 " %" PRIu32 "\n", p->id, p->epoch, p->rev) < 0)
			return -1;
	}
	return fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
}

int keyex_state_save_(struct keyex *kx)
{
	size_t n = strlen(kx->state_path) + 8;
	char *tmp = malloc(n);
	int rc = -1, fd, dfd;
	FILE *f;

	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp", kx->state_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (keyex_state_write(kx, f) != 0) {
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, kx->state_path) != 0)
		goto out;
	dfd = open(kx->ctx->conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}
