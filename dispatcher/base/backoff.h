/*
 * backoff.h - retry timing: exponential backoff with full jitter, and
 * Retry-After parsing.
 *
 * Pure functions: no loop, no clock (the caller passes "now"), and the
 * random source is injectable so tests can pin the jitter.  Times are
 * microseconds; absolute times are microseconds since the Unix epoch, as
 * push_now_us() returns them.
 */
#ifndef PGPUSH_BACKOFF_H
#define PGPUSH_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A source of uniformly distributed 64-bit values.  `arg` is the
 * caller's.
 */
typedef uint64_t (*backoff_rand_fn)(void *arg);

/*
 * The default random source (a xorshift generator seeded once from the
 * kernel).  Not for secrets.  One per thread is not needed: pgpushd uses
 * it from the loop thread only.
 */
uint64_t backoff_rand_default(void *arg);

/*
 * The delay before retry number `attempt` (1 = the first retry), with
 * "full jitter": uniform in [0, min(cap_us, base_us * 2^(attempt-1))].
 * `rnd` NULL uses backoff_rand_default.  attempt < 1 counts as 1;
 * base_us <= 0 or cap_us <= 0 give 0.  Never overflows.
 */
int64_t backoff_delay_us(int attempt, int64_t base_us, int64_t cap_us,
			 backoff_rand_fn rnd, void *rnd_arg);

/*
 * Parse a Retry-After header value (RFC 9110 10.2.3): delta-seconds
 * ("120") or an HTTP-date in any of the three forms (IMF-fixdate, RFC
 * 850, asctime), into the absolute time *at_us.  Delta-seconds are added
 * to now_us (and capped at one year); a date in the past gives now_us.
 * Leading and trailing blanks are allowed.  Returns 0, or -EINVAL (and
 * leaves *at_us alone) for anything else, including NULL.
 */
int backoff_parse_retry_after(const char *value, int64_t now_us,
			      int64_t *at_us);

/*
 * Whether a push enqueued at enqueued_at_us is too old to retry at now_us
 * under the app's max_retry_age (max_age_us; 0 or less: no limit, and an
 * unknown enqueue time (0) is never too old).  Such a push fails instead.
 */
bool backoff_retry_too_old(int64_t enqueued_at_us, int64_t max_age_us,
			   int64_t now_us);

#endif
