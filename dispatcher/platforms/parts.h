/*
 * parts.h - pushes that take several provider requests (WNS toast, badge,
 * tile and raw; MPNS toast and tile): the pure halves of multipart.h,
 * which sends them for sender_wns.c and sender_mpns.c.
 *
 * Each request ("part") is classified on its own into a struct
 * push_result; parts_combine() makes the one result the pipeline sees:
 *
 *   outcome   the worst part's, in the order invalid_token > failed >
 *             retry > uncertain > sent (so the push is sent only when
 *             every part was accepted, a dead channel wins over
 *             everything, and a permanent failure is not retried);
 *   reason    every part's outcome, "toast=200 received; badge=503
 *             Service Unavailable; tile=accepted earlier", so a part that
 *             failed is visible in the delivery row;
 *   message   the provider's id of each part, "toast=<id>; tile=<id>";
 *   retry_at  the latest of the retrying parts; throttled and
 *             auth_failure if any part says so.
 *
 * A retry resends only the parts that were not accepted: the parts a
 * queue row already had accepted (or left uncertain, which must not be
 * resent either) are remembered in a struct parts_memo under the queue
 * row's id until the push finishes, so a retry after "toast accepted,
 * badge 503" sends the badge alone and does not show the toast twice.
 * The memo lives in the sender's credential state, bounded in size and
 * age; a retry claimed by another dispatcher, or after the credential's
 * pool was replaced, resends every part (at-least-once, as documented).
 *
 * The memo is also a small bounded map from any string key to a time,
 * which multipart.c uses to hold back a channel after a 406 or 412
 * (MPNS: for an hour).
 */
#ifndef PGPUSH_PARTS_H
#define PGPUSH_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"

#define PARTS_MAX 4

/* One request of a push and what came of it. */
struct part_result {
	const char *name;          /* "toast", "badge", ...: a literal */
	bool skipped;              /* settled by an earlier attempt */
	bool was_uncertain;        /* skipped: it was left uncertain */
	struct push_result res;    /* this attempt's, unless skipped;
				    * reason: short text for this part */
};

/* Combine `n` part results (n >= 1) into `out` as described above. */
void parts_combine(const struct part_result *parts, size_t n,
		   struct push_result *out);

struct parts_memo;

/* A memo holding at most `cap` keys (the oldest go first). */
struct parts_memo *parts_memo_new(size_t cap);

/* Free it; NULL is a no-op. */
void parts_memo_free(struct parts_memo *m);

/*
 * Look `key` up: true and its two values and time if present and its
 * time `until_us` is still ahead of `now_us`; an expired entry is
 * removed and false returned.  Outputs may be NULL.
 */
bool parts_memo_get(struct parts_memo *m, const char *key, int64_t now_us,
		    unsigned *a, unsigned *b, int64_t *until_us);

/* Set `key` (replacing), to expire at `until_us`. */
void parts_memo_put(struct parts_memo *m, const char *key, unsigned a,
		    unsigned b, int64_t until_us);

/* Remove `key` if present. */
void parts_memo_del(struct parts_memo *m, const char *key);

/* Keys held now (expired ones included until looked up or evicted). */
size_t parts_memo_count(const struct parts_memo *m);
#endif
