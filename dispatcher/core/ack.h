/*
 * ack.h - outcomes buffered and written back in one set-based statement.
 *
 * Every finished attempt (sent, retry at a time, token dead, failed,
 * expired, dropped) is appended to the buffer (finish.c), which is
 * written every few milliseconds or when it holds ACK_BATCH_MAX rows, as
 * the parameters of ACK_SQL.  That one statement, guarded by the lease owner:
 *   - deletes finished rows from push.queue, puts retries back with their
 *     next time and the lease cleared,
 *   - records each in push.deliveries,
 *   - invalidates the device of an invalid_token outcome, unless it was
 *     registered again after the provider's verdict (APNs timestamp) or
 *     after the request was sent; the first case is recorded as failed
 *     ("Unregistered (stale: ...)"), since no token died.
 * Rows whose lease was taken over by another dispatcher are ignored, and
 * running the statement twice (a retry after a lost connection) changes
 * nothing the second time.
 *
 * This file is the statement and its batch only (pure: the benchmark's
 * raw-ceiling program compiles it as it is); acker.h writes the batch.
 */
#ifndef PGPUSH_ACK_H
#define PGPUSH_ACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"

#define ACK_BATCH_MAX 1000
#define ACK_NPARAMS   12

struct ack_row {
	int64_t queue_id;
	int64_t campaign_id;
	enum push_outcome outcome;
	int http_status;
	char *reason;             /* NULL: none */
	char *message_id;         /* NULL: none */
	int64_t retry_at_us;      /* 0: none */
	int64_t sent_at_us;       /* 0: never sent */
	int64_t finished_at_us;
	int64_t latency_us;       /* < 0: none */
	int64_t provider_ts_us;   /* 0: none */
	bool gated;               /* counted in the pools' gate (pool.h) */
};

struct ack_buf {
	struct ack_row *rows;
	size_t len;
	size_t cap;
};

/* Append the outcome of `item`; copies what it needs from both. */
void ack_add(struct ack_buf *b, const struct push_item *item,
	     const struct push_result *res, int64_t now_us);

/*
 * Fill ACK_SQL's parameters: $1 is `owner` (this dispatcher's id), $2..$12
 * array literals of the buffered rows.  Heap strings; free with
 * ack_free_params().  The buffer is unchanged.
 */
void ack_build_params(const struct ack_buf *b, const char *owner,
		      char *params[ACK_NPARAMS]);
void ack_free_params(char *params[ACK_NPARAMS]);

/* Move all rows of `from` to the end of `to` (a failed flush). */
void ack_move(struct ack_buf *to, struct ack_buf *from);

/* Drop every row (after a successful flush). */
void ack_clear(struct ack_buf *b);
void ack_free(struct ack_buf *b);

extern const char ACK_SQL[];

#endif
