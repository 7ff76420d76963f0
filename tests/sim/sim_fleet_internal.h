/* sim_fleet_internal.h - what the fleet simulation's files share: the fleet, its nodes, the event
 * kinds. sim_fleet.c sets up and runs (the event loop, the fault plan), sim_node.c drives one core
 * (actions, timers, crashes, reloads, seals), sim_net.c moves packets between nodes and the broker,
 * sim_check.c holds the invariants. */
#ifndef PX_SIM_FLEET_INTERNAL_H
#define PX_SIM_FLEET_INTERNAL_H

#include <stdio.h>

#include "conf.h"
#include "identity.h"
#include "kx_core.h"
#include "sim_broker.h"
#include "sim_fleet.h"
#include "sim_map.h"
#include "sim_rng.h"
#include "sim_sched.h"
#include "stats.h"

#define SIM_WALL_BASE_MS 1800000000000ull /* 2027-01-15: the fleet's true wall clock at t = 0 */
#define SIM_CHECK_MS	 250u		  /* period of the keyed check */

enum sim_ev_kind {
	EV_TIMER,       /* node, gen = timer arming: kx_core_tick */
	EV_DELIVER,     /* node, gen = connection: a message from the broker (data: struct sim_msg) */
	EV_UPLINK,      /* node, gen = connection: a packet reaches the broker (data: struct sim_pkt) */
	EV_CONNECT,     /* node, gen = attempt: the CONNECT reaches the broker */
	EV_CONNACK,     /* node, gen = connection: the node sees CONNACK */
	EV_CONN_LOST,   /* node, gen = connection: the node notices the connection is gone */
	EV_RECONNECT,   /* node, gen = attempt: the node tries again */
	EV_WILL_DUE,    /* node, gen = connection: the broker's keepalive bound for a lost connection */
	EV_FAULT,       /* node = index in the plan */
	EV_BROKER_UP,   /* the restarted broker accepts connections */
	EV_NODE_START,  /* node: (re)start of its process */
	EV_SEAL,        /* node: seal one message */
	EV_CHECK,       /* the keyed check */
};

enum sim_pkt_type { PKT_PUBLISH, PKT_SUBSCRIBE, PKT_UNSUBSCRIBE, PKT_DISCONNECT };

struct sim_pkt { /* what a node sent, on its way to the broker */
	enum sim_pkt_type type;
	struct sim_msg *msg; /* PKT_PUBLISH */
	char **filters;      /* the others */
	size_t nfilters;
};

enum sim_conn { CONN_DOWN, CONN_CONNECTING, CONN_UP };

/* A removal of a peer by a reload, for the revocation invariant. */
struct sim_removal {
	bool active;
	uint64_t at;
	uint64_t ev;               /* index of the reload's event (r->events): the order within a ms */
	uint64_t newest_at_reload; /* the reloading node's newest epoch then (0: none) */
};

struct sim_node {
	uint32_t idx;
	char id[24];
	struct id_key *key;
	char pub[ID_PUB_TEXT_LEN + 1];
	/* Trust: the topology's peers (fleet indices) and which of them the configuration has now. */
	uint32_t *topo;
	size_t ntopo;
	bool *trusts;              /* [ntopo] */
	struct sim_removal *rm;    /* [ntopo] */
	uint64_t *max_epoch;       /* [ntopo]: newest epoch of that peer ever held (rollback check) */
	size_t removed_stack[8];   /* topo slots removed by reloads, last on top */
	size_t nremoved;
	struct px_conf conf[2];    /* shallow copies of the template; conf[cur] is in use */
	struct conf_peer *cpeers[2];
	int cur;
	struct stats stats;
	struct kx_env env;
	struct kx_core *core;      /* NULL while the process is down */
	char *state;               /* text of the last PERSIST that succeeded */
	struct sim_rng rng_core, rng_misc;
	int64_t skew_ms;
	uint64_t mono_off;
	enum sim_conn conn;
	uint64_t conn_gen, attempt;
	uint32_t backoff_ms;
	struct sim_msg *will;      /* for the next CONNECT */
	uint64_t timer_at, timer_gen;
	bool timer_armed;
	uint64_t up_last, down_last; /* FIFO order on each link */
	uint64_t *activated;       /* own epochs activated, in order (revocation invariant) */
	uint64_t *activated_at;
	uint64_t *activated_ev;    /* index of the event in which it was activated */
	size_t nactivated, capactivated;
	uint64_t last_scan_ms;     /* large nodes: rollback scan throttle */
	uint64_t newest;           /* its newest own epoch seen so far (revocation invariant) */
	uint64_t life;             /* process incarnation: stale seal events are ignored */
	bool started;
};

struct sim_fleet {
	const struct sim_opts *o;
	struct sim_result *r;
	struct sim_node *n;
	size_t nn;
	struct sim_broker *b;
	struct sim_sched *q;
	struct sim_fault_plan *plan;
	struct sim_rng rng_net;
	struct px_conf *tmpl;
	struct sim_map *nonces; /* (key id, counter) of every seal */
	struct sim_map *slots;  /* (node, peer) -> &node->topo[slot] */
	size_t removals;        /* reloads that removed a peer, so far */
	uint64_t unkeyed_since; /* after the quiet keyed time: when the fleet last fell out of it */
	bool keys_dirty;        /* some key ring or node changed since the last keyed check */
	size_t last_unkeyed;    /* its result */
	uint64_t last_full_check;
	bool broker_up;
	uint64_t now;
	uint64_t round_start;
	struct sim_broker_stats round_base;
	bool measuring, done;
	FILE *trace; /* NULL unless --trace */
};

/* sim_fleet.c */
void sim_violation_(struct sim_fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace_(struct sim_fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sim_push_(struct sim_fleet *f, uint64_t at, enum sim_ev_kind kind, uint32_t node, uint64_t gen, void *data);
struct kx_now sim_now_of_(const struct sim_fleet *f, const struct sim_node *n);

/* sim_node.c */
int sim_node_init_(struct sim_fleet *f, struct sim_node *n);
void sim_node_free_(struct sim_node *n);
void sim_node_start_(struct sim_fleet *f, struct sim_node *n);
void sim_node_crash_(struct sim_fleet *f, struct sim_node *n, bool host, uint32_t down_ms);
/* A clean stop: KX_EV_STOP, its last messages, DISCONNECT (the will is discarded), then as a crash. */
void sim_node_stop_(struct sim_fleet *f, struct sim_node *n, uint32_t down_ms);
void sim_node_reload_(struct sim_fleet *f, struct sim_node *n, bool add, uint32_t which);
void sim_node_handle_(struct sim_fleet *f, struct sim_node *n, const struct kx_event *ev);
void sim_node_tick_(struct sim_fleet *f, struct sim_node *n, uint64_t gen);
void sim_node_seal_(struct sim_fleet *f, struct sim_node *n, uint64_t life);
/* The slot of peer in n's topology (n->ntopo if none), through the fleet's (node, peer) index. */
size_t sim_slot_(const struct sim_fleet *f, const struct sim_node *n, uint32_t peer);

/* sim_net.c */
void sim_net_connect_start_(struct sim_fleet *f, struct sim_node *n);
void sim_net_on_event_(struct sim_fleet *f, const struct sim_ev *ev);
int sim_net_send_(struct sim_fleet *f, struct sim_node *n, struct sim_pkt *p);
/* The connection of n is cut now (broker side at once; the node notices a little later). */
void sim_net_cut_(struct sim_fleet *f, struct sim_node *n, bool will_now);
void sim_net_flush_(struct sim_fleet *f);
/* A clean DISCONNECT, sent after what n has queued (the broker discards the will). */
void sim_net_disconnect_(struct sim_fleet *f, struct sim_node *n);
void sim_pkt_free_(struct sim_pkt *p);

/* sim_sabotage.c */
void sim_sabotage_keyed_(struct sim_fleet *f);
void sim_sabotage_removed_(struct sim_fleet *f, struct sim_node *n, struct sim_node *p);
bool sim_sabotage_muted_(const struct sim_fleet *f, const struct sim_node *n);

/* sim_check.c */
void sim_check_keys_(struct sim_fleet *f, struct sim_node *n);      /* after KEYS_CHANGED at n */
void sim_check_activated_(struct sim_fleet *f, struct sim_node *n); /* after ACTIVATED at n */
int sim_check_seal_(struct sim_fleet *f, const struct sim_node *n, const uint8_t *env, size_t len);
/* Counts trusting pairs where one side lacks the other's current key (0: fleet keyed). */
size_t sim_check_unkeyed_(struct sim_fleet *f, bool print);
size_t sim_check_pairs_(const struct sim_fleet *f);
void sim_check_final_(struct sim_fleet *f);

#endif
