/*
 * finish.h - where a finished push goes: its outcome into the ack buffer
 * (ack.h), its counts into the statistics (obs/stats.h) and, for a debug
 * push, its story into push.debug_events (obs/trace.h).
 *
 * The ack buffer is written when it holds ACK_BATCH_MAX rows, else
 * --ack-interval-ms after its first row.  A debug push's trace gets
 * "claimed" and "pool" when claimed, then "response" (if sent),
 * "classified" and "retry_decision" when finished; "acked" follows
 * when its outcome is written (trace_ack_done()).
 *
 * The pools finish their pushes here (finish_on_pool), and the acker
 * reports written batches here (finish_on_acked, finish_on_ack_freed).
 */
#ifndef PGPUSH_FINISH_H
#define PGPUSH_FINISH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/push.h"

struct acker;
struct ack_buf;
struct db_async;
struct faults;
struct pool;
struct pool_gate;
struct pools;
struct release;
struct sqltime;
struct stats;
struct trace;

struct finisher {
	struct acker *ack;
	struct stats *stats;
	struct trace *trace;
	struct release *release;    /* pushes that waited too long */
	struct faults *faults;      /* sees every outcome (auto-ban) */
	struct pools *pools;        /* pumped when acks free room */
	struct pool_gate *gate;     /* written outcomes leave it */
	struct sqltime *sqltime;    /* ack times */
	struct db_async *ask;       /* the stats connection (sqltime.h) */
	const char *id;             /* this dispatcher, for the trace */
	uint64_t ack_interval_ms;
	bool stopped;               /* draining: finish_stop() */
	void *arg;                  /* the owner's, for the two hooks */
	/* A pool finished a push: room in a ring (claim or drain check). */
	void (*finished)(void *arg);
	/* Written outcomes freed places in the windows: claim soon. */
	void (*kick)(void *arg);
	uint64_t acks, acked_rows;  /* ack statements written, rows */
	uint64_t ack_us;            /* sent to answered, summed */
};

/* Draining: outcomes no longer count towards auto-bans (faults.h), and
 * a slow ack no longer asks who holds a snapshot. */
void finish_stop(struct finisher *f);

/*
 * pool_finish_fn for every pool (`arg` is the finisher): `res` NULL means
 * the push waited too long and goes back unsent; otherwise faults.h sees
 * the outcome and finish_push() records it, gated when a request went
 * out.  Then the `finished` hook.
 */
void finish_on_pool(void *arg, struct pool *pool, struct push_item *item,
		    const struct push_result *res);

/*
 * struct ack_hooks (`arg` is the finisher): a written batch counts,
 * times the statement (sqltime.h), emits debug pushes' "acked" events
 * and takes its sends out of the gate; once it is dropped, every pool
 * pumps and the `kick` hook runs.
 */
void finish_on_acked(void *arg, const struct ack_buf *b, int64_t sent_us);
void finish_on_ack_freed(void *arg);

/*
 * Record `res` for `item` and free the item.  `gated`: its request is
 * counted in the pools' gate until its outcome is written.
 */
void finish_push(struct finisher *f, struct push_item *item,
		 const struct push_result *res, bool gated);

/* Finish an item that was never sent, with `outcome` and `reason`. */
void finish_unsent(struct finisher *f, struct push_item *item,
		   enum push_outcome outcome, const char *reason);

/* A debug item was claimed; `p` is its pool (NULL: none). */
void finish_trace_claimed(struct finisher *f, struct push_item *item,
			  const struct pool *p);

/* A sender's hook (sender_env.trace; `arg` is the struct trace). */
void finish_on_sender_trace(void *arg, const struct push_item *item,
			    const char *step, const char *detail_json);

#endif
