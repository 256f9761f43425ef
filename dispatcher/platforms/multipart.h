/*
 * multipart.h - a push sent as several provider requests (WNS, MPNS),
 * on top of the send life cycle (send.h) and parts.h.
 *
 * A platform's send embeds a struct multipart_send, its credential a
 * struct multipart_cred.  After the platform has built its parts:
 *
 *   multipart_run()        looks the push up in the memo (parts.h: the
 *                          parts an earlier attempt of the same queue
 *                          row had accepted or left uncertain are
 *                          skipped), then starts every other part at
 *                          once through the platform's `start`
 *   multipart_part_done()  records one part's result; when the last part
 *                          is in, parts_combine() makes the push's result,
 *                          the memo remembers the settled parts for a
 *                          retry (or forgets them once the push is done),
 *                          a 406/412 part holds the channel (when the
 *                          platform asked for holds) and the send
 *                          finishes: later if still inside send()
 *   multipart_cancel()     the send_kind `cancel` for cred_close(): the
 *                          first part still waiting is cancelled (its
 *                          request, or its wait through `unwait`); the
 *                          others follow as the skeleton calls again
 *
 * The platform supplies only `start` (post the part, or wait for its
 * token first), its classifier and its request building; a part it
 * starts ends in exactly one multipart_part_done().
 *
 * Ownership: the platform allocates its send and frees it in its kind's
 * `free`, after multipart_send_release() (the tokens and the URL here).
 * multipart_cred_free() frees the memos once the sends are cancelled.
 */
#ifndef PGPUSH_MULTIPART_H
#define PGPUSH_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platforms/oauth_cache.h"
#include "platforms/parts.h"
#include "platforms/send.h"

struct hostlist;
struct http_xfer;
struct multipart_send;

/* Parts accepted before a retry are remembered this long (beyond the
 * default max_retry_age of a day) and for this many pushes. */
#define MULTIPART_MEMO_AGE_US (48 * 3600 * 1000000LL)
#define MULTIPART_MEMO_CAP 65536
/* Channels held after a 406/412, at most. */
#define MULTIPART_HOLD_CAP 65536

/* One request of a push. */
struct multipart_part {
	struct multipart_send *send;
	size_t index;                   /* in the platform's request */
	struct http_xfer *xfer;         /* in flight, or NULL */
	struct oauth_cache_waiter waiter;  /* waiting for a token */
	char *token;                    /* the bearer token sent, or NULL */
	bool reauthed;                  /* resent once with a new token */
	bool active;                    /* waiting for auth or HTTP */
	struct part_result pr;
};

/* What a multi-part platform adds to its send_kind. */
struct multipart_ops {
	/* Start `p`: post it, or wait for what it needs first. */
	void (*start)(struct multipart_part *p);
	/*
	 * Stop the wait of an active part that has no request in flight,
	 * for cred_close() (its result is then "cancelled").  NULL: a part
	 * only ever waits on HTTP.
	 */
	void (*unwait)(struct multipart_part *p);
	/*
	 * After a part answered 406 or 412, later pushes to the same channel
	 * are not sent for this long (0: no holds).
	 */
	int64_t hold_us;
};

struct multipart_cred {
	struct send_cred base;
	const struct multipart_ops *ops;
	struct parts_memo *memo;        /* queue id -> parts settled */
	struct parts_memo *holds;       /* channel -> held until; or NULL */
};

struct multipart_send {
	struct send base;
	char key[24];                   /* memo key: the queue id */
	char *url;                      /* the channel URL, rebased */
	size_t n, pending;
	struct multipart_part ps[PARTS_MAX];
};

/* send_cred_init() and the memos (holds only with ops->hold_us). */
void multipart_cred_init(struct multipart_cred *c,
			 const struct sender_env *env,
			 const struct send_kind *kind,
			 const struct multipart_ops *ops);

/* Free the memos (after send_cred_cancel_all()). */
void multipart_cred_free(struct multipart_cred *c);

/* send_begin(), and the memo key. */
bool multipart_begin(struct multipart_send *s, struct multipart_cred *c,
		     struct push_item *item, int max_attempts,
		     sender_done_fn done, void *arg);

/*
 * Check the item's channel URL (a valid URL whose host is in `hosts`),
 * then the hold on it (with holds), and take it, rebased on `endpoint`
 * when not NULL, as s->url.  False when the push is not to be sent:
 * finished later, FAILED for a refused channel (logged at warn as
 * `refused_event`), a throttled retry at the hold's end for a held one.
 */
bool multipart_channel(struct multipart_send *s, const struct hostlist *hosts,
		       const char *endpoint, const char *refused_event);

/* The request could not be built: forget the memo, finish (later). */
void multipart_refuse(struct multipart_send *s,
		      const struct push_result *res);

/*
 * Send the `n` parts named `names` (literals, in the platform's order):
 * skip the ones the memo says were settled, start the rest.  Called
 * from send(); every result waits for the loop.
 */
void multipart_run(struct multipart_send *s, size_t n,
		   const char *const *names, int64_t now_us);

/* Part `p` is over with `r`; the last one finishes the send. */
void multipart_part_done(struct multipart_part *p,
			 const struct push_result *r);

/*
 * If the credential is closing (an answer to a cancelled request),
 * settle `p` as cancelled and return true.
 */
bool multipart_part_cancel_if_closing(struct multipart_part *p);

/* The send_kind `cancel` of a multi-part platform. */
void multipart_cancel(struct send *b);

/* Free what multipart_* allocated in `s` (not `s`); wipes tokens. */
void multipart_send_release(struct multipart_send *s);

/* The multipart_send / multipart_cred holding a send's shared parts. */
struct multipart_send *multipart_of(struct send *b);
struct multipart_cred *multipart_cred_of(const struct multipart_send *s);

#endif
