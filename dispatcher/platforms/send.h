/*
 * send.h - the life cycle of one send, shared by every sender.
 *
 * A platform's credential state embeds a struct send_cred (the env, the
 * in-flight queue, the closing flag) and its send state embeds a struct
 * send (the claimed item, the done callback, the attempts limit, the
 * queue links).  The skeleton then does, once for every platform:
 *
 *   send_begin()        put the send in flight; a credential that is
 *                       closing cancels it at once (delivered later)
 *   send_finish()       take it off the queue, log "<platform> push
 *                       done" for a debug push, call the done callback
 *                       exactly once, free the send (the kind's `free`)
 *   send_finish_later() the same from the queue's zero timer, for a
 *                       result decided inside send(): the done callback
 *                       never runs from inside send() (sender.h)
 *   send_settle()       finish now, or later when still inside send()
 *   send_retry_delay()  the jittered backoff from the kind's base and cap
 *   send_retry_or_fail()  RETRY at a time, or FAILED at the limit
 *   send_cred_cancel_all()  cred_close(): cancel every send in flight
 *                       (the kind's `cancel`), each finishing RETRY
 *                       "cancelled", then deliver what waits on the queue
 *
 * What differs between platforms - building the request, classifying the
 * answer, auth - stays in the platform's files; a struct send_kind (one
 * static row per platform) names the rest: its log line, its backoff, how
 * to cancel and free a send.  Multi-part sends (WNS, MPNS) add
 * multipart.h on top.
 *
 * Ownership: the platform allocates its send state and frees it in its
 * kind's `free`, which the skeleton calls once, right after the done
 * callback.  The credential state is the platform's too; the queue's timer
 * is a libuv handle, so it goes from sendq_close()'s callback (sendq.h).
 */
#ifndef PGPUSH_SEND_H
#define PGPUSH_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/sendq.h"

struct oauth_cache_error;
struct http_request;
struct send;

/* What a platform tells the skeleton: one static row per platform. */
struct send_kind {
	const char *done_event;     /* "fcm push done": the debug log line */
	int64_t backoff_base_us;    /* retry delay: full jitter from base */
	int64_t backoff_cap_us;     /* ... doubling up to cap */
	/* Free the platform's send state holding `s` (never NULL). */
	void (*free)(struct send *s);
	/*
	 * Stop `s` for cred_close(): it must leave the in-flight list before
	 * this returns, finished (send_cancel()) or through an HTTP answer
	 * http_cancel() delivers at once (the answer handler sees `closing`).
	 */
	void (*cancel)(struct send *s);
	/*
	 * Optional (NULL: none): last touches on a result before it is
	 * handed back; returns the value of `done_field`, one more field of
	 * the debug "push done" line (APNs: the apns-id it sent).
	 */
	const char *(*finishing)(struct send *s, struct push_result *res);
	const char *done_field;
};

/* The credential side every platform shares; embed it. */
struct send_cred {
	struct sender_env env;
	const struct send_kind *kind;
	struct sendq q;             /* sends in flight, results waiting */
	bool closing;               /* cred_close() under way */
};

/* One send's shared state; embed it in the platform's send state. */
struct send {
	struct send_cred *cred;
	struct push_item *item;     /* the sender's until done */
	int max_attempts;           /* the app's, else the env's default */
	sender_done_fn done;
	void *arg;
	bool in_send;               /* inside send(): results wait */
	struct sendq_item qi;       /* on cred->q */
};

/* The struct `type` whose member `member` is the struct send `s`. */
#define send_entry(s, type, member) \
	((type *)(void *)((char *)(s) - offsetof(type, member)))

/* Copy `env`, set the kind, start the queue on env->loop. */
void send_cred_init(struct send_cred *c, const struct sender_env *env,
		    const struct send_kind *kind);

/*
 * cred_close()'s first half: mark the credential closing, cancel every
 * send in flight through the kind's `cancel` and deliver every result
 * still queued.  False (nothing done) when it was closing already: a
 * cancelled send's done callback closed it again.  The caller then frees
 * its own state and closes the queue: sendq_close(&c->q, ...).
 */
bool send_cred_cancel_all(struct send_cred *c);

/*
 * Fill `s` and put it in flight on `c`.  True to go on; false when `c` is
 * closing: the send is cancelled (RETRY "cancelled", delivered later) and
 * send() returns at once.  `max_attempts` <= 0 takes env.max_attempts.
 */
bool send_begin(struct send *s, struct send_cred *c, struct push_item *item,
		int max_attempts, sender_done_fn done, void *arg);

/*
 * Hand `res` back from the loop: off the queue, the debug log line, the
 * done callback (res->reauth cleared: the pool sees a final result), then
 * the kind's `free`.  `s` is gone afterwards.
 */
void send_finish(struct send *s, struct push_result *res);

/* Hand `res` back on the next loop turn (a result decided in send()). */
void send_finish_later(struct send *s, const struct push_result *res);

/* send_finish(), or send_finish_later() while `s` is inside send(). */
void send_settle(struct send *s, struct push_result *res);

/* Finish `s` with the cancelled result (the kind's `cancel`). */
void send_cancel(struct send *s);

/*
 * If the credential is closing (an answer to a cancelled request),
 * finish `s` as cancelled and return true.
 */
bool send_cancel_if_closing(struct send *s);

/* The retry delay for `s`: the kind's backoff at the item's attempts. */
int64_t send_retry_delay(const struct send *s);

/*
 * Retryable: RETRY at `at`, or FAILED (retry_at 0) once `attempts` has
 * reached `max_attempts` (> 0).  Pure; the classifiers use it too.
 */
void send_retry_or_fail(struct push_result *res, int attempts,
			int max_attempts, int64_t at);

/* send_retry_or_fail() with the item's attempts and the send's limit. */
void send_retry(const struct send *s, struct push_result *res, int64_t at);

/*
 * The result of a request http_submit() refused with `rc`: "transport:
 * cannot start the request: ...", retried after send_retry_delay().
 */
void send_submit_failed(const struct send *s, int rc,
			struct push_result *res);

/*
 * The result when no OAuth token could be had (oauth_cache.h): cancelled
 * when closing, FAILED with auth_failure for a permanent error, else
 * retried no sooner than the cache allows.  `reason_max`: the longest
 * part of the cache's reason kept (0: all that fits).
 */
void send_auth_failed(const struct send *s,
		      const struct oauth_cache_error *err, size_t reason_max,
		      struct push_result *res);

/*
 * A POST of the credential's timeouts to `url`: method, url, ca_path and
 * timeouts set, the rest zero (headers, body, done, arg are the
 * caller's).
 */
void send_post_init(struct http_request *req, const struct send_cred *c,
		    const char *url, const char *ca_path);

struct http_response;

/*
 * A sender's two trace steps for a debug push (send_trace.c), through
 * env->trace (nothing when it is NULL or the push is not a debug one).
 * "request": method, the URL's scheme and host only (a path may hold the
 * device token), the headers except any whose name says it carries a
 * credential (left out, name and all), the body size, and `part` when not
 * NULL (WNS/MPNS).
 * "http_response": status, HTTP version, transport error, the values of
 * the response headers named in `names` (NULL-ended; may be NULL) and
 * the first 512 bytes of the body.
 */
void send_trace_request(const struct sender_env *env,
			const struct push_item *item, const char *part,
			const struct http_request *req);
void send_trace_response(const struct sender_env *env,
			 const struct push_item *item, const char *part,
			 const struct http_response *hr,
			 const char *const *names);

#endif
