/* sim_sabotage.c - kx_sim --sabotage KIND: breaks one invariant on purpose, from outside the core
 * (through the key ring, the seal record or the network), so that a test can show each check
 * catches what it is meant to catch: a check that never fires proves nothing. */
#include <string.h>

#include "keyring.h"
#include "sim_fleet_internal.h"

static const char *const names[] = { [SAB_NONE] = "none",	  [SAB_TRUST] = "trust",
				     [SAB_ROLLBACK] = "rollback", [SAB_NONCE] = "nonce",
				     [SAB_REVOKE] = "revocation", [SAB_KEYED] = "keyed" };

int sim_sabotage_parse(const char *s, enum sim_sabotage *out)
{
	size_t i;

	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum sim_sabotage)i;
			return 0;
		}
	}
	return -1;
}

static void install(struct sim_fleet *f, struct sim_node *at, const struct sim_node *of, uint64_t epoch)
{
	static const uint8_t secret[ANN_SECRET_LEN] = { 0x5a };
	enum px_err e;

	e = keyring_recv_install(kx_core_keyring(at->core), of->id, epoch, secret, f->o->interval_s, 0,
				 sim_now_of_(f, at).mono_ms);
	sim_trace_(f, "SABOTAGE: %s installs epoch %llu of %s: %s", at->id, (unsigned long long)epoch, of->id,
		   px_strerror(e));
}

/* Once the fleet is first keyed: trust (a sensor takes a key of another sensor, or of a node it
 * removed), rollback (a node drops a peer's keys and installs an older epoch). */
void sim_sabotage_keyed_(struct sim_fleet *f)
{
	struct sim_node *n = &f->n[f->nn - 1], *p;
	uint64_t e = 0;

	if (!n->core)
		return;
	if (f->o->sabotage == SAB_TRUST && !f->o->mesh && f->o->sensors >= 2) {
		p = &f->n[f->nn - 2]; /* another sensor: not a peer */
		install(f, n, p, 1);
		sim_check_keys_(f, n);
	} else if (f->o->sabotage == SAB_ROLLBACK) {
		p = &f->n[n->topo[0]];
		if (!keyring_recv_newest(kx_core_keyring(n->core), p->id, &e) || e < 2)
			return;
		keyring_remove_peer(kx_core_keyring(n->core), p->id);
		install(f, n, p, e - 1);
		sim_check_keys_(f, n);
	}
}

/* After a reload at n removed p: p takes a key of a newer epoch of n. */
void sim_sabotage_removed_(struct sim_fleet *f, struct sim_node *n, struct sim_node *p)
{
	if (f->o->sabotage != SAB_REVOKE || !p->core)
		return;
	install(f, p, n, n->newest + 1);
	sim_check_keys_(f, p);
}

/* keyed: from the end of the faults on, the last node hears nothing. */
bool sim_sabotage_muted_(const struct sim_fleet *f, const struct sim_node *n)
{
	return f->o->sabotage == SAB_KEYED && n->idx == f->nn - 1 && f->now >= f->plan->p.faults_end_ms;
}
