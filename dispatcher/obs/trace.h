/*
 * trace.h - selective tracing of pushes inserted with debug = true into
 * push.debug_events.
 *
 * The daemon (and, through sender_env.trace, a sender) calls trace_event()
 * for a debug item only - callers test item->debug first, so a normal push
 * costs one branch.  Events are buffered with their time (ms precision is
 * kept; microseconds are stored) and written in one INSERT ... SELECT FROM
 * unnest() on the stats connection by trace_take() + TRACE_INSERT_SQL,
 * never one write per event.  The buffer holds at most TRACE_MAX_EVENTS;
 * beyond, events are counted as dropped (a debug push storm must not eat
 * the daemon's memory).
 *
 * Details are JSON objects built with the trace_json_* helpers, which
 * escape strings; callers never put secrets in them (no tokens' key
 * material, no Authorization values, no signing keys).
 *
 * "acked" events wait for the ack that records the push's outcome:
 * trace_ack_wait() notes the queue id at finish, trace_ack_done() emits
 * the event for each noted id the written batch held.
 */
#ifndef PGPUSH_TRACE_H
#define PGPUSH_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/push.h"

#define TRACE_MAX_EVENTS 10000
#define TRACE_NPARAMS    6

struct trace_ev {
	int64_t at_us;
	int64_t push_id;
	int64_t queue_id;
	char *step;
	char *detail;       /* JSON text, NULL: none */
};

struct trace_wait {
	int64_t push_id;
	int64_t queue_id;
	enum push_outcome outcome;
};

struct trace {
	struct trace_ev *ev;
	size_t len, cap;
	struct trace_wait *wait;      /* finished, waiting for their ack */
	size_t nwait, capwait;
	uint64_t events, dropped, written, write_failures;
	const char *owner;            /* $4: this dispatcher's id */
	struct trace_ev *busy;        /* being written */
	size_t nbusy;
};

/* Buffer one event (copies step and detail).  now_us 0: push_now_us(). */
void trace_event(struct trace *t, int64_t now_us, const struct push_item *it,
		 const char *step, const char *detail_json);

/* Note a finished debug item: its "acked" event comes with its ack. */
void trace_ack_wait(struct trace *t, const struct push_item *it,
		    enum push_outcome outcome);

/*
 * A batch of acks was written: emit "acked" for each waiting queue id in
 * `queue_ids` (n of them).  Cheap when nothing waits.
 */
void trace_ack_done(struct trace *t, const int64_t *queue_ids, size_t n);

/* Move the buffered events out (caller frees with trace_free_events()). */
void trace_take(struct trace *t, struct trace_ev **ev, size_t *n);

/* Put events back at the front (their write failed); frees `ev`. */
void trace_put_back(struct trace *t, struct trace_ev *ev, size_t n);

void trace_free_events(struct trace_ev *ev, size_t n);

/*
 * The parameters of TRACE_INSERT_SQL for `ev`: $1 at (µs), $2 push_id,
 * $3 queue_id, $4 dispatcher, $5 step, $6 detail.  Heap strings; free with
 * trace_free_params().
 */
void trace_build_params(const struct trace_ev *ev, size_t n,
			const char *dispatcher, char *params[TRACE_NPARAMS]);
void trace_free_params(char *params[TRACE_NPARAMS]);

/*
 * The write of the buffered events as one batch (the batched writer's
 * steps, core/writer.h): take every event into t->busy and fill the
 * parameters (dispatcher t->owner); then either written (counted in
 * `written`) or failed (counted in write_failures) and then put back at
 * the front, or dropped when trace_batch_drop_failed() says the same
 * statement would fail again: an error with an SQLSTATE other than a
 * connection's (08), an operator's intervention (57) or a lack of
 * resources (53).  It returns whether it dropped them.
 */
void trace_batch_take(struct trace *t, char *params[TRACE_NPARAMS]);
void trace_batch_written(struct trace *t);
void trace_batch_failed(struct trace *t);
void trace_batch_put_back(struct trace *t);
bool trace_batch_drop_failed(struct trace *t, const char *sqlstate);

void trace_free(struct trace *t);

extern const char TRACE_INSERT_SQL[];

/*
 * A tiny JSON object builder for details, on a struct buf capped at
 * TRACE_DETAIL_MAX: far above any detail built here (header values are
 * cut at 200 bytes, bodies at 512), so only a bug reaches it.
 */
#define TRACE_DETAIL_MAX (64u << 10)

struct trace_json {
	struct buf b;
	bool first;
};

void trace_json_begin(struct trace_json *j);
void trace_json_str(struct trace_json *j, const char *key, const char *val);
/* The same, cut at `max` bytes (never inside a UTF-8 sequence). */
void trace_json_str_max(struct trace_json *j, const char *key,
			const char *val, size_t max);
void trace_json_int(struct trace_json *j, const char *key, int64_t val);
void trace_json_bool(struct trace_json *j, const char *key, bool val);
/* `raw` is already JSON (an array or object built by the caller). */
void trace_json_raw(struct trace_json *j, const char *key, const char *raw);
/* Finish and return the text (the caller frees it); NULL (logged) when
 * it outgrew TRACE_DETAIL_MAX: the event then has no detail. */
char *trace_json_end(struct trace_json *j);

/*
 * For senders' "request"/"response" steps: `headers` ("Name: value", n of
 * them) as a JSON object under `key`.  The value of any header whose name
 * says it carries a credential (authorization, *token*, *key*, *secret*,
 * cookie, *signature*) is replaced by "[redacted]"; other values are cut
 * at 200 bytes.
 */
void trace_json_headers(struct trace_json *j, const char *key,
			const char *const *headers, size_t n);

/* Whether a header of this name is never traced with its value. */
bool trace_header_secret(const char *name, size_t len);

/* Append `s` JSON-escaped (without quotes), at most `max` bytes of it. */
void trace_json_escape(struct trace_json *j, const char *s, size_t max);

#endif
