/* reload.c - `mqseal reload`: the reload that reports its outcome. A SIGHUP cannot answer, so the
 * node writes the outcome of each reload to <state_dir>/reload-result (and the start, with its
 * pid); this command validates the file with the same loader the node uses (an invalid file is
 * refused without signalling), reads the pid and the reload count, sends SIGHUP, and waits until
 * the count moves, then exits 0 for "ok" and 1 for "refused". Used as systemd's ExecReload=, it
 * makes `systemctl reload` fail when the node keeps its old configuration. */
#include "reload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node.h"
#include "conf.h"

int reload_result_write(const char *path, const struct reload_result *r)
{
	char tmp[4096];
	FILE *f;
	int rc = -1, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	if (fprintf(f, "pid %ld\nreloads %lu\nresult %s\nmessage %s\n", (long)r->pid, r->reloads, r->result,
		    r->message) > 0 &&
	    fflush(f) == 0)
		rc = 0;
	saved = errno;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		(void)unlink(tmp);
		errno = saved ? saved : EIO;
	}
	return rc;
}

/* Copies the rest of line after "key " into out (without the newline). */
static int reload_field(const char *line, const char *key, char *out, size_t len)
{
	size_t k = strlen(key), n;

	if (strncmp(line, key, k) != 0 || line[k] != ' ')
		return -1;
	line += k + 1;
	n = strcspn(line, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, line, n);
	out[n] = '\0';
	return 0;
}

int reload_result_read(const char *path, struct reload_result *r)
{
	static const char *const keys[] = {"pid", "reloads", "result", "message"};
	char line[RELOAD_MESSAGE_MAX + 16], val[4][RELOAD_MESSAGE_MAX];
	char *end;
	long pid;
	FILE *f = fopen(path, "r");
	int i;

	if (!f)
		return -1;
	for (i = 0; i < 4; i++)
		if (!fgets(line, sizeof(line), f) || reload_field(line, keys[i], val[i], sizeof(val[i])) != 0)
			break;
	fclose(f);
	if (i < 4)
		goto bad;
	memset(r, 0, sizeof(*r));
	errno = 0;
	pid = strtol(val[0], &end, 10);
	if (errno || *end || pid <= 0)
		goto bad;
	r->pid = (pid_t)pid;
	r->reloads = strtoul(val[1], &end, 10);
	if (errno || *end || val[1][0] == '-')
		goto bad;
	if (strlen(val[2]) >= sizeof(r->result))
		goto bad;
	memcpy(r->result, val[2], strlen(val[2]) + 1);
	snprintf(r->message, sizeof(r->message), "%s", val[3]);
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* Loads conf_path as the node would; on success *state_path is <state_dir>/reload-result. */
static int reload_validate(const char *conf_path, char *state_path, size_t len)
{
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	size_t i, nerr = conf_load(conf_path, true, &conf, &errs);

	for (i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.lines[i]);
	for (i = 0; i < errs.nwarnings; i++)
		fprintf(stderr, "warning: %s\n", errs.warnings[i]);
	conf_errors_clear(&errs);
	if (nerr != 0) {
		fprintf(stderr,
			"mqseal: reload refused: %s is invalid; the node was not signalled and keeps its "
			"configuration\n",
			conf_path);
		return -1;
	}
	snprintf(state_path, len, "%s/%s", conf->state_dir, RELOAD_RESULT_FILE);
	conf_free(conf);
	return 0;
}

static void reload_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Waits (bounded: timeout_s in 50 ms steps) until the node reports a reload after `before`. */
static int reload_wait(const char *path, const struct reload_result *before, unsigned timeout_s,
		       struct reload_result *after)
{
	unsigned long step, steps = (unsigned long)timeout_s * 20;

	for (step = 0; step < steps; step++) {
		reload_sleep_ms(50);
		if (reload_result_read(path, after) == 0 &&
		    (after->pid != before->pid || after->reloads != before->reloads))
			return after->pid == before->pid ? 0 : -1;
		if (kill(before->pid, 0) != 0 && errno == ESRCH)
			return -1;
	}
	return -1;
}

/* Reads /proc/PID/comm (pid 0: self) into out; -1 if it cannot be read. */
static int reload_comm(pid_t pid, char *out, size_t len)
{
	char path[64];
	FILE *f;
	int rc = -1;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/comm");
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(out, (int)len, f))
		rc = 0;
	fclose(f);
	return rc;
}

/* A reload-result left by a node that crashed may name a pid now used by another program: only
 * signal a process that runs the same program as this command (when /proc says so). */
static bool reload_same_program(pid_t pid)
{
	char mine[64], theirs[64];

	if (reload_comm(0, mine, sizeof(mine)) != 0 || reload_comm(pid, theirs, sizeof(theirs)) != 0)
		return true; /* no /proc to ask: kill() below still checks the pid exists */
	return strcmp(mine, theirs) == 0;
}

int reload_cmd(const char *conf_path, unsigned timeout_s)
{
	struct reload_result before, after;
	char path[4096];

	if (reload_validate(conf_path, path, sizeof(path)) != 0)
		return NODE_EXIT_USAGE;
	if (reload_result_read(path, &before) != 0) {
		fprintf(stderr,
			"mqseal: reload: cannot read %s: %s (is the node running with this state_dir?)\n",
			path, errno == EINVAL ? "not a reload-result file" : strerror(errno));
		return NODE_EXIT_FAILURE;
	}
	if (!reload_same_program(before.pid)) {
		fprintf(stderr, "mqseal: reload: pid %ld from %s is not an mqseal node (a stale file?)\n",
			(long)before.pid, path);
		return NODE_EXIT_FAILURE;
	}
	if (kill(before.pid, SIGHUP) != 0) {
		fprintf(stderr, "mqseal: reload: cannot signal the node (pid %ld from %s): %s\n",
			(long)before.pid, path, strerror(errno));
		return NODE_EXIT_FAILURE;
	}
	if (reload_wait(path, &before, timeout_s, &after) != 0) {
		fprintf(stderr,
			"mqseal: reload: node %ld did not report the reload within %us (see its log)\n",
			(long)before.pid, timeout_s);
		return NODE_EXIT_FAILURE;
	}
	if (strcmp(after.result, "ok") != 0) {
		fprintf(stderr, "mqseal: reload refused by the node: %s\n", after.message);
		return NODE_EXIT_FAILURE;
	}
	fprintf(stderr, "mqseal: reloaded: %s\n", after.message);
	return NODE_EXIT_OK;
}
