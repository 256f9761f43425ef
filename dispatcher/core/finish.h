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
 */
#ifndef PGPUSH_FINISH_H
#define PGPUSH_FINISH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/push.h"

struct acker;
struct pool;
struct stats;
struct trace;

struct finisher {
	struct acker *ack;
	struct stats *stats;
	struct trace *trace;
	const char *id;             /* this dispatcher, for the trace */
	uint64_t ack_interval_ms;
};

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
