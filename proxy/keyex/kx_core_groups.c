/* kx_core_groups.c - what a reload of `groups` means for the key exchange (PROTOCOL.md §11.1,
 * §9.6): comparing the running definition with the reloaded one, a reader removed from a group
 * this node seals for (or such a group removed, or this node no longer a writer of it) revokes
 * the current keys like a removed peer; a reader added gets a re-issue with the new entry; a group
 * this node starts to seal for needs a new epoch (its key is made with the epoch, §4.2). */
#include "kx_core_internal.h"

#include <string.h>

#include "conf.h"

/* The group named name in conf c, or NULL. */
static const struct conf_group *kx_find(const struct px_conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return &c->groups[i];
	return NULL;
}

/* Does node self seal for g under conf c (§4.2)? */
static bool kx_sealed_in(const struct px_conf *c, const struct conf_group *g)
{
	size_t i;

	if (!g || !g->has_writers)
		return g != NULL;
	for (i = 0; i < g->nwriters; i++)
		if (strcmp(g->writers[i], c->node_id) == 0)
			return true;
	return false;
}

/* Can peer id read what this node seals on group name under conf c? */
static bool kx_wraps_in(const struct px_conf *c, const char *name, const char *id)
{
	const struct conf_group *g = kx_find(c, name);

	return kx_sealed_in(c, g) && kx_group_reader_(g, id);
}

/* A reader of a group this node seals for under old that is no reader of it under nc. */
static bool kx_reader_lost(const struct px_conf *old, const struct px_conf *nc)
{
	size_t i, k;

	for (i = 0; i < old->ngroups; i++) {
		const struct conf_group *g = &old->groups[i];
		if (!kx_sealed_in(old, g))
			continue;
		for (k = 0; k < g->nreaders; k++)
			if (strcmp(g->readers[k], old->node_id) != 0 &&
			    !kx_wraps_in(nc, g->name, g->readers[k]))
				return true;
	}
	return false;
}

/* A group this node seals for under nc but not under old: the current epoch has no key of it. */
static bool kx_group_gained(const struct px_conf *old, const struct px_conf *nc)
{
	size_t i;

	for (i = 0; i < nc->ngroups; i++)
		if (kx_sealed_in(nc, &nc->groups[i]) && !kx_sealed_in(old, kx_find(old, nc->groups[i].name)))
			return true;
	return false;
}

/* Peer id reads, under nc, a group this node seals for under both and did not read it under old. */
static bool kx_reader_gained(const struct px_conf *old, const struct px_conf *nc, const char *id)
{
	size_t i;

	for (i = 0; i < nc->ngroups; i++) {
		const char *name = nc->groups[i].name;
		if (kx_wraps_in(nc, name, id) && kx_sealed_in(old, kx_find(old, name)) &&
		    !kx_wraps_in(old, name, id))
			return true;
	}
	return false;
}

/* This node reads, under nc, a group it did not read under old: the entries of it that peers
 * sealing it sent before were ignored (§7.3 step 8), and those peers' configurations may not have
 * changed, so nothing new comes. Their current announcements are taken again (§11.1): marked
 * here, subscribed to again at the next tick (the broker replays the retained copies). */
static void kx_reader_self_gained(struct kx_core *kx, const struct px_conf *old, const struct px_conf *nc)
{
	const char *self = nc->node_id;
	size_t i, k;

	for (i = 0; i < nc->ngroups; i++) {
		const struct conf_group *g = &nc->groups[i];
		if (!kx_group_reader_(g, self) || kx_group_reader_(kx_find(old, g->name), self))
			continue;
		for (k = 0; k < kx->npeers; k++)
			if (kx_group_writer_(g, kx->peers[k].id)) {
				kx->peers[k].refetch = true;
				kx->refetch_due = true;
			}
	}
}

enum kx_groups_change kx_groups_reload_(struct kx_core *kx, const struct px_conf *nc)
{
	const struct px_conf *old = kx->conf;
	size_t i;

	if (old->ngroups == 0 && nc->ngroups == 0)
		return KX_GROUPS_SAME;
	kx_reader_self_gained(kx, old, nc);
	if (kx_reader_lost(old, nc))
		return KX_GROUPS_REVOKE;
	/* Re-issues wait for the next tick, when the running configuration holds nc's groups. */
	for (i = 0; i < kx->npeers; i++)
		if (kx_reader_gained(old, nc, kx->peers[i].id))
			kx->peers[i].reissue_pending = true;
	return kx_group_gained(old, nc) ? KX_GROUPS_ROTATE : KX_GROUPS_SAME;
}
