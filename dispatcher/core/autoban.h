/*
 * autoban.h - the "patience cup": per app, a sliding window of the
 * failures that are the app's (or the provider's opinion of the app's)
 * fault, and the decision to ban the app or, for a critical-tier app, to
 * hold its pushes instead.
 *
 * What counts (autoban_signal_of): an auth or configuration failure
 * (push_result.auth_failure, or a credential that cannot be opened), a
 * provider abuse signal (push_result.throttled: 429, 406, QUOTA_EXCEEDED,
 * TooManyRequests...), and a transport failure of a request that was sent
 * (no HTTP answer: timeout, reset, untrusted certificate), known by the
 * senders' convention for it: a reason starting "transport: ", or naming
 * the provider's "token endpoint: " (the auth request failed).  Ordinary
 * provider trouble with an answer (500, 503), per-device answers (a dead
 * token, a bad payload) and a sender's own waits (an APNs token re-mint
 * floor) do not count.
 *
 * When the app's window holds `threshold` signals no older than `window`,
 * autoban_note() says BAN (tier below critical, auto-ban enabled) or HOLD
 * (critical tier: never banned, its pushes stay queued for one window and
 * then it is tried again), empties the cup and ignores further signals of
 * that app until the ban or hold ends.  With auto-ban disabled it says
 * nothing, ever.
 *
 * Pure: no clock (callers pass now_us), no I/O.  Ownership: struct autoban
 * owns its per-app entries; autoban_free() releases them.
 */
#ifndef PGPUSH_AUTOBAN_H
#define PGPUSH_AUTOBAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"

/* The signals longest kept per app (a larger threshold is clamped). */
#define AUTOBAN_THRESHOLD_MAX 10000

enum autoban_signal {
	AUTOBAN_SIGNAL_NONE,
	AUTOBAN_SIGNAL_AUTH,        /* auth / configuration failure */
	AUTOBAN_SIGNAL_THROTTLED,   /* provider-side abuse signal */
	AUTOBAN_SIGNAL_TRANSPORT,   /* sent, no answer: timeout, reset, TLS */
	AUTOBAN_SIGNAL_COUNT
};

enum autoban_action {
	AUTOBAN_NOTHING,
	AUTOBAN_BAN,                /* write the ban to push.apps */
	AUTOBAN_HOLD                /* critical tier: stop claiming a while */
};

/* From push.apps; refreshed on every config reload. */
struct autoban_policy {
	bool enabled;               /* autoban_enabled */
	bool critical;              /* tier = 'critical' */
	bool overflow_drop;         /* overflow_policy = 'drop' */
	int threshold;              /* autoban_threshold */
	int64_t window_us;          /* autoban_window */
	int64_t duration_us;        /* autoban_duration */
	int64_t max_retry_age_us;   /* max_retry_age; 0: none */
};

struct autoban_app {
	int32_t app_id;
	struct autoban_policy pol;
	int64_t *at;                /* ring of signal times, oldest at head */
	uint8_t *kind;              /* the signal of each */
	size_t cap, head, len;
	int64_t quiet_until_us;     /* banned or held: no counting until */
	int64_t held_until_us;      /* critical hold: claim nothing until */
};

struct autoban {
	struct autoban_app *apps;
	size_t n;
};

/*
 * The signal a finished push gives.  `sent` is whether a request went out
 * for it; `cred_unusable` whether its pool has no usable credential.
 */
enum autoban_signal autoban_signal_of(const struct push_result *res,
				      bool sent, bool cred_unusable);

/* Set (or replace) an app's policy; its window is kept. */
void autoban_set_policy(struct autoban *ab, int32_t app_id,
			const struct autoban_policy *pol);

/* The app's policy, or NULL when none was loaded. */
const struct autoban_policy *autoban_policy_of(const struct autoban *ab,
					       int32_t app_id);

/*
 * Count one signal of `app_id` at now_us.  On BAN or HOLD `why` (may be
 * NULL) gets a sentence for push.apps.ban_reason / the log: counts by
 * kind and the window.  `last_reason` (may be NULL) is the provider's
 * words for the last signal, added to `why`.
 */
enum autoban_action autoban_note(struct autoban *ab, int32_t app_id,
				 enum autoban_signal sig, int64_t now_us,
				 const char *last_reason, char *why,
				 size_t whylen);

/*
 * The app is not banned in push.apps (an admin lifted the ban, or it
 * ran out): count its signals again now, not only after the ban's
 * duration.  A critical app's hold is not touched.
 */
void autoban_lifted(struct autoban *ab, int32_t app_id, int64_t now_us);

/* True while a critical app is held (its pools claim nothing). */
bool autoban_held(const struct autoban *ab, int32_t app_id, int64_t now_us);

/* Signals in the app's window at now_us (for tests and metrics). */
int autoban_count(const struct autoban *ab, int32_t app_id, int64_t now_us);

/* Free every entry; the struct may be reused (empty).  NULL is a no-op. */
void autoban_free(struct autoban *ab);

#endif
