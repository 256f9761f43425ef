/*
 * acker.h - the outcome buffer (ack.h) written on the ack connection
 * through the batched writer (writer.h): at most ACK_BATCH_MAX rows per
 * statement, a failed batch back ahead of the newer rows and tried again
 * after ACK_RETRY_MS.  The owner hears of each written batch (ack_hooks).
 */
#ifndef PGPUSH_ACKER_H
#define PGPUSH_ACKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/ack.h"
#include "core/writer.h"

#define ACK_RETRY_MS  500     /* a failed ack batch is sent again then */

/* What the owner of an acker hears of a written batch. */
struct ack_hooks {
	void *arg;
	/* The batch `b` (sent at `sent_us`) is written; it is dropped
	 * after this returns.  Pump no pool here: a pump may finish pushes
	 * into the acker while `b` is read. */
	void (*written)(void *arg, const struct ack_buf *b, int64_t sent_us);
	/* ... and dropped: places in the windows came free. */
	void (*freed)(void *arg);
};

/* The outcomes waiting, the batch being written, and its writer. */
struct acker {
	struct ack_buf wait;        /* waiting to be written */
	struct ack_buf busy;        /* being written */
	const char *owner;          /* $1: this dispatcher's id */
	struct ack_hooks hooks;
	struct writer w;
};

/*
 * Set up `a` to write with the prepared statement "ack" (ACK_SQL) on
 * `conn`; `owner` must outlive it.  See writer_init() for the rest.
 */
void acker_init(struct acker *a, const char *owner, uv_loop_t *loop,
		struct db_async *conn, struct health *health,
		const struct ack_hooks *hooks,
		void (*on_answer)(void *arg), void *answer_arg);

/* Outcomes not written yet (waiting and in flight). */
size_t acker_backlog(const struct acker *a);

/* Free both buffers (the writer's timer is closed by writer_close()). */
void acker_free(struct acker *a);

#endif
