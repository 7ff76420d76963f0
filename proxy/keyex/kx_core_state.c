/* kx_core_state.c - the only persisted facts (PROTOCOL.md §9.5) as text: this node's last epoch
 * and, per peer, the last accepted (epoch, rev). The core reads the text it is started with and
 * hands new text out in PERSIST actions; the adapter (keyex_state.c) writes the file. */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "mqseal-state 1"
/* "peer <id> <u64> <u32>\n" at most */
#define STATE_PEER_LINE_MAX (5 + ANN_ID_MAX + 1 + 20 + 1 + 10 + 2)

static void kx_state_line(struct kx_core *kx, const char *line)
{
	char id[ANN_ID_MAX + 2];
	uint64_t epoch;
	uint32_t rev;
	struct kx_peer *p;

	if (sscanf(line, "epoch %" SCNu64, &epoch) == 1) {
		kx->state_epoch = epoch;
	} else if (sscanf(line, "peer %65s %" SCNu64 " %" SCNu32, id, &epoch, &rev) == 3) {
		p = kx_peer_(kx, id, strlen(id));
		if (p) { /* peers no longer configured are forgotten */
			p->epoch = epoch;
			p->rev = rev;
		}
	}
}

void kx_state_load_(struct kx_core *kx, const char *text)
{
	char line[256];
	const char *s = text, *nl;
	size_t n;

	if (!text || !*text)
		return;
	if (strncmp(text, STATE_MAGIC, strlen(STATE_MAGIC)) != 0) {
		log_warn("keyex", "%s: not an mqseal state file; starting from the clock",
			 kx->env.persist_path ? kx->env.persist_path : "state");
		return;
	}
	while (*s) {
		nl = strchr(s, '\n');
		n = nl ? (size_t)(nl - s) : strlen(s);
		if (n < sizeof(line)) {
			memcpy(line, s, n);
			line[n] = '\0';
			kx_state_line(kx, line);
		}
		s += nl ? n + 1 : n;
	}
}

char *kx_state_text_(const struct kx_core *kx, size_t *len)
{
	size_t cap = sizeof(STATE_MAGIC) + 32 + kx->npeers * STATE_PEER_LINE_MAX + 1, off;
	char *out = malloc(cap);
	size_t i;
	int w;

	if (!out)
		return NULL;
	w = snprintf(out, cap, "%s\nepoch %" PRIu64 "\n", STATE_MAGIC, kx->state_epoch);
	off = w > 0 ? (size_t)w : 0;
	for (i = 0; i < kx->npeers && off < cap; i++) {
		const struct kx_peer *p = &kx->peers[i];
		if (!p->epoch)
			continue;
		w = snprintf(out + off, cap - off, "peer %s %" PRIu64 " %" PRIu32 "\n", p->id, p->epoch, p->rev);
		if (w < 0 || (size_t)w >= cap - off) {
			free(out);
			return NULL;
		}
		off += (size_t)w;
	}
	*len = off;
	return out;
}
