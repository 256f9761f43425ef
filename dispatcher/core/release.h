/*
 * release.h - claimed but unsent rows given back to the queue.
 *
 * A paused app's waiting pushes, a retired pool's, a push that waited too
 * long for its window, and at shutdown every waiting push go back to
 * push.queue unsent: RELEASE_SQL clears their lease and undoes the
 * claim's attempt count, guarded by the lease owner (so repeating it
 * after a lost connection is safe).  The queue ids gather here and go out
 * in one statement through the batched writer (writer.h) on the ack
 * connection; ids given back while it runs wait for the next one.
 */
#ifndef PGPUSH_RELEASE_H
#define PGPUSH_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "core/writer.h"

#define RELEASE_NPARAMS 2

extern const char RELEASE_SQL[];

struct release {
	int64_t *ids;               /* queue ids to give back */
	size_t n, cap;
	int64_t *busy;              /* ... being given back */
	size_t nbusy, capbusy;
	const char *owner;          /* $1: this dispatcher's id */
	struct writer w;
};

/*
 * Set up `r` to write with the prepared statement "release" on `conn`;
 * `owner` must outlive it.  No timer: it is flushed by its callers.
 */
void release_init(struct release *r, const char *owner,
		  struct db_async *conn, struct health *health,
		  void (*on_answer)(void *arg), void *answer_arg);

/* Give `item` back (its queue id is kept; the item is freed). */
void release_add(struct release *r, struct push_item *item);

/* Send what was gathered (writer_flush()). */
void release_flush(struct release *r);

/* Ids not given back yet (waiting and in flight). */
size_t release_backlog(const struct release *r);

void release_free(struct release *r);

#endif
