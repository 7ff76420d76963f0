/* reload.h - the outcome of a node's last reload, kept in <state_dir>/reload-result for `mqseal
 * reload`, which signals the node and waits for it: ExecReload= fails when a reload is refused
 * (docs/OPERATIONS.md, "systemd"). The file holds four lines:
 *   pid N          the node's process id
 *   reloads K      reloads done since the start (0: none yet)
 *   result R       started, ok or refused
 *   message TEXT   one line saying what happened */
#ifndef PX_RELOAD_H
#define PX_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RELOAD_RESULT_FILE "reload-result"
#define RELOAD_MESSAGE_MAX 256

struct reload_result {
	pid_t pid;
	unsigned long reloads;
	char result[16];
	char message[RELOAD_MESSAGE_MAX];
};

/* Replaces the file at path (write to path.tmp, then rename: a reader sees the old or the new
 * one). 0 or -1 with errno set. */
int reload_result_write(const char *path, const struct reload_result *r);
/* Reads it. 0, or -1 (errno set; EINVAL when the file is not in the format above). */
int reload_result_read(const char *path, struct reload_result *r);

/* `mqseal reload -c FILE`: validates FILE, finds the node in its state_dir, sends SIGHUP and
 * waits up to timeout_s for the outcome. Returns an exit code: 0 reloaded, 1 refused by the node
 * (or no answer, or no node), 2 FILE invalid (the node is not signalled). */
#define RELOAD_TIMEOUT_S 30
int reload_cmd(const char *conf_path, unsigned timeout_s);

#endif
