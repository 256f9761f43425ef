/*
 * writer.h - the batched writer: take a batch, run one prepared
 * statement, put the batch back when it fails.
 *
 * Outcomes (ack.c), rows given back to the queue (release.c), the
 * per-minute statistics (obs/stats.c) and debug pushes' events
 * (obs/trace.c) are all written the same way: rows gather in the owning
 * module's buffer; a flush moves a batch of them into the module's busy
 * batch and sends it as the parameters of one prepared statement; rows
 * that come meanwhile wait for the next flush.  When the answer is an
 * error the busy rows go back ahead of the newer ones (or, for a module
 * that says so, are dropped), so nothing is lost before the next try.
 *
 * The writer owns the in-flight state (at most one statement at a time),
 * the hand-off of the busy batch, the put-back on failure, the error
 * bookkeeping (obs/health.h) and one timer that flushes later: soon
 * after a first row (writer_flush_soon) or, for a writer configured with
 * `retry_ms`, again after a failed statement.  The module owns its
 * statement text, its buffer and its busy batch, and plugs in through
 * struct writer_ops.  The statement goes out through an exec function
 * (db_async_exec_prepared() by default), so tests can run a writer with
 * no database.
 *
 * Ownership: the caller owns struct writer (usually inside the module's
 * own struct); writer_close() closes its timer, after which nothing
 * starts it again.
 */
#ifndef PGPUSH_WRITER_H
#define PGPUSH_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db/db.h"

struct health;
struct writer;

/* What a module does with its rows; `mod` is the module's own struct. */
struct writer_ops {
	/* Rows waiting for the next statement (not counting the busy
	 * batch). */
	size_t (*waiting)(void *mod);
	/*
	 * Move at most `max` waiting rows (0: all of them), oldest first,
	 * into the busy batch and fill the statement's parameters: heap
	 * strings the writer frees with free() once sent.
	 */
	void (*take)(void *mod, size_t max, char **params);
	/* The busy batch was written (`sent_us`: when it was sent): drop
	 * it, and do whatever else a written batch means. */
	void (*written)(void *mod, int64_t sent_us);
	/* The busy batch was not written: put it back ahead of the rows
	 * that came since. */
	void (*put_back)(void *mod);
	/* May be NULL.  The statement failed (not: was never sent); count
	 * it. */
	void (*failed)(void *mod);
	/*
	 * May be NULL (always put back).  Whether the failed busy batch
	 * would fail the same way again (`status`, `sqlstate`): then drop it
	 * here and return true.
	 */
	bool (*drop_failed)(void *mod, enum db_status status,
			    const char *sqlstate);
};

/* How one writer behaves. */
struct writer_cfg {
	const char *stmt;       /* the prepared statement's name */
	int nparams;            /* its parameter count */
	const char *what;       /* the error's name ("ack failed") */
	size_t batch_max;       /* rows per statement; 0: all waiting */
	bool again_on_success;  /* rows waiting after a success: at once */
	uint64_t retry_ms;      /* rows waiting after a failure: flush
				 * then (0: at the next flush) */
};

/*
 * Send `stmt` with `params` on `conn`; when the answer comes, call
 * writer_answered(w, ...).  Returns 0, or a negative code when nothing
 * was queued (writer_answered() is then never called).
 */
typedef int (*writer_exec_fn)(void *conn, const char *stmt, int nparams,
			      const char *const *params, struct writer *w);

struct writer {
	/* Set by writer_init(); private otherwise. */
	struct writer_cfg cfg;
	const struct writer_ops *ops;
	void *mod;
	void *conn;
	writer_exec_fn exec;
	struct health *health;
	void (*on_answer)(void *arg);   /* after each answer: drain check */
	void *answer_arg;
	uv_timer_t timer;
	bool has_timer;
	bool closed;
	bool inflight;
	int64_t sent_us;
};

/*
 * Set up `w` for the module `mod` (ops `ops`) writing on `conn`.  `loop`
 * NULL: no timer (writer_flush_soon() and retry_ms do nothing).
 * `health` (may be NULL) hears each success and error under cfg->what;
 * `on_answer` (may be NULL) is called after every answer has been
 * handled, e.g. to see whether a drain is done.
 */
void writer_init(struct writer *w, const struct writer_cfg *cfg,
		 const struct writer_ops *ops, void *mod, uv_loop_t *loop,
		 void *conn, struct health *health,
		 void (*on_answer)(void *arg), void *answer_arg);

/* Use `exec` instead of db_async_exec_prepared() (tests). */
void writer_set_exec(struct writer *w, writer_exec_fn exec);

/*
 * Send a batch now, unless one is in flight (it is sent after that one
 * answers, for a writer with again_on_success) or nothing waits.
 */
void writer_flush(struct writer *w);

/* Flush in `ms` unless a flush is already due (the timer runs). */
void writer_flush_soon(struct writer *w, uint64_t ms);

/* The answer to the statement in flight (from the exec function). */
void writer_answered(struct writer *w, enum db_status status,
		     const char *error, const char *sqlstate);

/* Whether a statement is in flight. */
bool writer_busy(const struct writer *w);

/* Rows waiting (not in flight). */
size_t writer_waiting(const struct writer *w);

/* Close the timer (a handle on the loop); nothing starts it again. */
void writer_close(struct writer *w);

#endif
