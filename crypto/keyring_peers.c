/* keyring_peers.c - the key ring's index of receive keys by peer: an open-addressing table keyed
 * by the peer id, each entry the list of that peer's keys (every epoch and group, at most
 * KR_RECV_PER_PEER per group). Per-peer questions (install, newest, remove, shorten) walk that
 * list instead of the whole key table, so they cost O(keys of the peer) whatever the fleet's size
 * (a ring holds up to 3 keys x 10,000 peers x groups). Peer ids come from the configuration and
 * from authenticated announcements only, so a plain FNV-1a hash is enough. */
#include "keyring_internal.h"

#include <string.h>

#include <openssl/crypto.h>

static size_t kr_peer_home(const struct keyring *kr, const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits */

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 0x100000001b3ull;
	return (size_t)h & (kr->cap - 1);
}

enum px_err kr_peers_init_(struct keyring *kr)
{
	/* As many slots as the key table: at most max_keys peers (each holds a key), half full. */
	kr->peers = OPENSSL_zalloc(kr->cap * sizeof(struct kr_peer_ix *));
	return kr->peers ? PX_OK : PX_ERR_NOMEM;
}

void kr_peers_free_(struct keyring *kr)
{
	size_t i;

	if (!kr->peers)
		return;
	for (i = 0; i < kr->cap; i++)
		OPENSSL_free(kr->peers[i]);
	OPENSSL_free(kr->peers);
	kr->peers = NULL;
}

static size_t kr_peer_slot(const struct keyring *kr, const char *id)
{
	size_t i = kr_peer_home(kr, id);

	while (kr->peers[i]) {
		if (strcmp(kr->peers[i]->id, id) == 0)
			return i;
		i = (i + 1) & (kr->cap - 1);
	}
	return SIZE_MAX;
}

struct kr_recv *kr_peer_keys_(const struct keyring *kr, const char *peer_id)
{
	size_t i = kr->peers && peer_id ? kr_peer_slot(kr, peer_id) : SIZE_MAX;

	return i == SIZE_MAX ? NULL : kr->peers[i]->keys;
}

enum px_err kr_peer_link_(struct keyring *kr, struct kr_recv *r)
{
	size_t i = kr_peer_slot(kr, r->peer_id);
	struct kr_peer_ix *p;

	if (i == SIZE_MAX) {
		p = OPENSSL_zalloc(sizeof(*p));
		if (!p)
			return PX_ERR_NOMEM;
		memcpy(p->id, r->peer_id, sizeof(p->id));
		/* Never full: fewer peers than keys, and cap >= 2 * max_keys. */
		for (i = kr_peer_home(kr, p->id); kr->peers[i]; i = (i + 1) & (kr->cap - 1))
			;
		kr->peers[i] = p;
	}
	r->peer_next = kr->peers[i]->keys;
	kr->peers[i]->keys = r;
	return PX_OK;
}

/* Removes the entry in slot i; later members of the probe run move back (as kr_slot_delete). */
static void kr_peer_drop(struct keyring *kr, size_t i)
{
	size_t mask = kr->cap - 1, j = i, home;

	OPENSSL_free(kr->peers[i]);
	kr->peers[i] = NULL;
	for (;;) {
		j = (j + 1) & mask;
		if (!kr->peers[j])
			return;
		home = kr_peer_home(kr, kr->peers[j]->id);
		if ((i < j) ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		kr->peers[i] = kr->peers[j];
		kr->peers[j] = NULL;
		i = j;
	}
}

void kr_peer_unlink_(struct keyring *kr, const struct kr_recv *r)
{
	size_t i = kr_peer_slot(kr, r->peer_id);
	struct kr_recv **pp;

	if (i == SIZE_MAX)
		return; /* not linked (an installation that failed before) */
	for (pp = &kr->peers[i]->keys; *pp; pp = &(*pp)->peer_next)
		if (*pp == r) {
			*pp = r->peer_next;
			break;
		}
	if (!kr->peers[i]->keys)
		kr_peer_drop(kr, i);
}
