/*
 * sendq.h - the in-flight sends of one sender credential, under the
 * shared send life cycle (send.h embeds a struct sendq in struct
 * send_cred and a struct sendq_item in struct send).
 *
 * A sender embeds a struct sendq in its credential state and a struct
 * sendq_item in each send's state (sendq_entry() gets the send back).
 * A send is on exactly one list from send() until its done callback:
 *
 *   sends   in flight: waiting for auth or for an HTTP answer.  The
 *           sender's cred_close() walks it to cancel each one.
 *   ready   decided inside send() (a bad payload, a refused channel, a
 *           request that could not start): the result waits in the item
 *           for the `defer` zero timer, because the done callback must
 *           never run from inside send() (sender.h).
 *
 * A sender may keep more lists of its own made of the same items (APNs'
 * `later`, sends waiting to be resent) with sendq_list_push() and
 * sendq_list_remove().
 *
 * The finish function (sendq_init()'s `finish`; send.c's) takes the item
 * off `sends` with sendq_remove(), calls the done callback and frees the
 * send; the queue calls it for every result on `ready`, from the timer or
 * from sendq_flush().
 *
 * Ownership: the sender owns the struct sendq (inside its credential) and
 * the items (inside its sends).  The queue's timer is a libuv handle: the
 * memory holding the struct sendq may go only from sendq_close()'s
 * callback.
 */
#ifndef PGPUSH_SENDQ_H
#define PGPUSH_SENDQ_H

#include <stddef.h>
#include <uv.h>

#include "base/push.h"

/* One send's links; embed it in the sender's send state. */
struct sendq_item {
	struct sendq_item *prev, *next;
	struct push_result res;         /* when on `ready` */
};

/*
 * Deliver `res` for the send holding `it`: the sender's own finish
 * (sendq_remove(), done callback, free).
 */
typedef void (*sendq_finish_fn)(struct sendq_item *it,
				struct push_result *res);

struct sendq {
	struct sendq_item *sends;       /* in flight */
	struct sendq_item *ready;       /* decided, waiting for `defer` */
	uv_timer_t defer;
	sendq_finish_fn finish;
	void (*closed)(void *arg);      /* sendq_close()'s callback */
	void *closed_arg;
};

/* The struct `type` whose member `member` is the item `it`. */
#define sendq_entry(it, type, member) \
	((type *)(void *)((char *)(it) - offsetof(type, member)))

/* Empty lists and the timer on `loop`; `finish` delivers deferred results. */
void sendq_init(struct sendq *q, uv_loop_t *loop, sendq_finish_fn finish);

/* Put `it` at the head of the list `*head` / take it off that list. */
void sendq_list_push(struct sendq_item **head, struct sendq_item *it);
void sendq_list_remove(struct sendq_item **head, struct sendq_item *it);

/* Put `it` on the in-flight list (send(), or back from a list of the
 * sender's own). */
void sendq_add(struct sendq *q, struct sendq_item *it);

/* Take `it` off the in-flight list: the sender's finish, before the done
 * callback. */
void sendq_remove(struct sendq *q, struct sendq_item *it);

/*
 * Hand `res` back later: `it` (in flight) moves to `ready` with a copy of
 * `res`, and the timer delivers it through `finish` on the next loop turn.
 * For results decided inside send(), which must not call back from there.
 */
void sendq_finish_later(struct sendq *q, struct sendq_item *it,
			const struct push_result *res);

/*
 * Deliver every result on `ready` now (cred_close(): nothing is left for
 * a timer that is about to close).  Results queued by the callbacks are
 * delivered too.
 */
void sendq_flush(struct sendq *q);

/*
 * Close the timer; `closed(arg)` runs from the loop once libuv is done
 * with it, and may free the memory holding `q`.  Both lists must be empty
 * (cancel every send and sendq_flush() first).
 */
void sendq_close(struct sendq *q, void (*closed)(void *arg), void *arg);

/* The result of a send cancelled by cred_close(): RETRY now, "cancelled". */
void sendq_set_cancelled(struct push_result *res);

#endif
