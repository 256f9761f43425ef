/*
 * claim.h - one set-based statement claims work for every pool at once.
 *
 * The daemon asks each pool how many rows it wants and sends CLAIM_SQL
 * with three parallel arrays (app ids, platforms, counts), its own id as
 * the lease owner and the lease length.  For each (app, platform) the
 * statement takes up to that many due rows (not_before <= now(), no live
 * lease) in priority order with FOR UPDATE SKIP LOCKED, so concurrent
 * dispatchers never claim the same row, leases them, counts the attempt,
 * and returns each row joined to its push (payload, options) and device
 * (current token, whether it was invalidated since it was queued).
 */
#ifndef PGPUSH_CLAIM_H
#define PGPUSH_CLAIM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/push.h"
#include "db/sqlarr.h"

#define CLAIM_NPARAMS 5
#define CLAIM_NCOLS   16

/* What one claim asked of one pool. */
struct claim_ask {
	uint64_t pool_serial;
	int rows;
};

/* The parameters of one claim, built up pool by pool. */
struct claim_req {
	struct sqlarr apps;
	struct sqlarr platforms;
	struct sqlarr counts;
	struct claim_ask *asks;     /* `pools` of them */
	int pools;
	int rows;
	int asks_cap;
};

void claim_req_reset(struct claim_req *c);
void claim_req_add(struct claim_req *c, int32_t app_id,
		   enum push_platform platform, uint64_t pool_serial, int n);
/* Pointers into `c` (valid until the next change) and two caller strings. */
void claim_req_params(struct claim_req *c, const char *owner,
		      const char *lease_seconds,
		      const char *params[CLAIM_NPARAMS]);
void claim_req_free(struct claim_req *c);

/*
 * Turn one returned row (CLAIM_NCOLS text values, NULL for SQL NULL) into
 * a new item.  *device_gone is set when the device was invalidated after
 * the push was queued (finish it as invalid_token, do not send).
 * Returns 0, or -EINVAL for a row that cannot be parsed (never expected).
 */
int claim_parse_row(const char *const *v, struct push_item **out,
		    bool *device_gone);

extern const char CLAIM_SQL[];

/*
 * Sent once per session on the claim and ack connections, before any
 * claim or ack: plan CLAIM_SQL and ACK_SQL once (generic plans) instead of
 * at every execution. Planning them is most of what a small claim or ack
 * costs Postgres, at light load many times a second), and a plan made
 * for one batch's array sizes can be a disaster for the next (an ack
 * planned for a large batch can scan the queue once per id). The
 * statements are written so that their generic plans are the
 * index-driven ones (ids from arrays, LIMIT 1 lookups).
 *
 * And without JIT: a generic plan is costed for the whole queue, and on
 * a large queue the claim's estimate crosses jit_above_cost, so every
 * claim would compile its expressions with LLVM again, which costs far
 * more than the executor run itself.  One statement (set_config), so it
 * can also be sent on a pipelined connection.
 */
extern const char WORK_SESSION_SQL[];

#endif
