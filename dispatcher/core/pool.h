/*
 * pool.h - one pool per (app, platform, credential): a bounded ring of
 * claimed pushes waiting to be sent, and an in-flight window of sends.
 *
 * The claimer asks each pool how many rows it wants (pool_claim_want):
 * nothing while the app is paused or while its ring, counting the rows
 * that outstanding claims asked for, is more than half full; otherwise
 * enough to fill the ring.  Claimed items go into the ring (pool_add);
 * pool_pump() starts sends while fewer than `window` are in flight and
 * while the process's gate (struct pool_gate, shared by its pools) holds
 * fewer answered sends whose outcome is not written yet than its
 * maximum.  So a crash (kill -9) loses the record of at most the windows
 * in flight plus the gate's maximum of answered-but-unacked sends, which
 * are sent again; slow or stalled acks stop the sends instead of letting
 * the unrecorded ones pile up.  The window starts at the
 * app's minimum, grows in steps while the ring is more than 10% full
 * (pool_tick) or as soon as a push has waited for a slot for a few
 * milliseconds (pool_pump), and shrinks back toward the minimum when the
 * pool is idle (pool_tick).  So a
 * backlog in one app fills only that app's ring; other apps' pools claim
 * and send on their own.
 *
 * Pushes that must not be sent are finished here without a request: the
 * app is banned (dropped_banned) or the push expired (expired).  A push
 * that waited so long that its lease would lapse in flight is given back
 * unsent (finish with a NULL result), never sent late.  Every
 * item, sent or not, leaves the pool through the `finish` callback given
 * to pool_new(), which takes ownership of it.
 *
 * Ownership: the pool owns the items in its ring; the sender owns an item
 * while it is in flight; `finish` receives it.  The pool does not own the
 * sender credential (the daemon's config does).
 */
#ifndef PGPUSH_POOL_H
#define PGPUSH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "platforms/sender.h"

struct pool;

/*
 * Called once per item that leaves the pool; takes ownership of `item`.
 * `res` is NULL for an item given back unsent (its send_by_us passed
 * while it waited): the caller returns it to the queue.
 */
typedef void (*pool_finish_fn)(void *arg, struct pool *pool,
			       struct push_item *item,
			       const struct push_result *res);

/* What the app row says; refreshed on every config reload. */
struct pool_limits {
	int min_window;           /* push.apps.min_concurrency */
	int max_window;           /* push.apps.max_concurrency */
	int max_attempts;         /* push.apps.max_attempts */
	bool paused;
	int64_t banned_until_us;  /* 0: not banned */
	char ban_reason[128];
};

struct pool_stats {
	uint64_t claimed;
	uint64_t sent_requests;   /* requests handed to the sender */
	uint64_t finished;
};

/*
 * Answered sends whose outcome is not written back yet, counted for every
 * pool of a process (the outcomes share one ack connection): no pool
 * starts a send while `unacked` >= `max`.  Owned by the daemon; it must
 * outlive the pools that point to it.
 */
struct pool_gate {
	int unacked;
	int max;
};

struct pool {
	int32_t app_id;
	enum push_platform platform;
	int credential_id;
	const struct sender_ops *ops;
	struct sender_cred *cred;
	struct pool_limits lim;

	struct push_item **ring;
	size_t cap;
	size_t head;              /* index of the oldest item */
	size_t len;

	int window;
	int in_flight;
	int claim_pending;        /* rows asked for by outstanding claims */
	uint64_t serial;          /* unique among the process's pools */
	int64_t resized_at_us;
	int64_t active_at_us;     /* last time the pool had work */

	bool closed;              /* pool_close_cred() ran: send nothing */
	struct pool_gate *gate;   /* NULL: no limit on unwritten answers */
	pool_finish_fn finish;
	void *finish_arg;
	struct pool_stats stats;
	char cred_error[192];     /* why cred is NULL, for the failures */
};

/*
 * A new pool with an empty ring of eight times the app's largest window (at
 * least 64, at most 8192 items).  `cred` may be NULL when the credential
 * could not be opened: every push is then finished FAILED with the reason
 * the caller puts in p->cred_error.
 */
struct pool *pool_new(int32_t app_id, enum push_platform platform,
		      int credential_id, const struct sender_ops *ops,
		      struct sender_cred *cred, const struct pool_limits *lim,
		      pool_finish_fn finish, void *finish_arg);

/*
 * Free the pool.  The ring must be empty and nothing in flight (see
 * pool_take_unsent and pool_idle).  NULL is a no-op.
 */
void pool_free(struct pool *p);

/* Apply new limits (config reload); the window is clamped to them. */
void pool_set_limits(struct pool *p, const struct pool_limits *lim);

/* How many rows the next claim should ask for (0: none now). */
int pool_claim_want(const struct pool *p, int max_batch);

/* Add a claimed item to the ring; the pool owns it.  Never fails: the
 * claim asked for at most the free space.  `now_us` is push_now_us(). */
void pool_add(struct pool *p, struct push_item *item, int64_t now_us);

/*
 * Start sends while the window allows, finishing banned and expired
 * pushes without a request; grow the window when the oldest waiting push
 * has waited WAIT_GROW_US for a slot.  `now_us` is push_now_us().
 */
void pool_pump(struct pool *p, int64_t now_us);

/*
 * Close the pool's credential (shutdown, a retired pool going away): its
 * sends in flight are cancelled, and their results reach `finish` before
 * this returns.  p->cred is cleared before the sender's cred_close() runs,
 * so a `finish` that comes back here (or looks at the pool) never closes
 * the same credential twice; a second call is a no-op.  Afterwards the
 * pool starts no send: what waits in the ring stays there for
 * pool_take_unsent().
 */
void pool_close_cred(struct pool *p);

/*
 * `n` outcomes of sends counted in `g` were written (the ack committed).
 * Call pool_pump() on the pools after: they may send again.
 */
void pool_acked(struct pool_gate *g, int n);

/* Grow or shrink the window; call every ~100 ms. */
void pool_tick(struct pool *p, int64_t now_us);

/*
 * Move every waiting (unsent) item out of the ring into `out` (room for
 * p->len items), e.g. to release their leases on pause or shutdown.
 * Returns how many were moved.
 */
size_t pool_take_unsent(struct pool *p, struct push_item **out);

/* True when nothing waits and nothing is in flight. */
bool pool_idle(const struct pool *p);

/* Ring fill in percent (0..100), for heartbeats and metrics. */
int pool_fill_percent(const struct pool *p);

#endif
