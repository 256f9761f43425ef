/*
 * release.c - see release.h.  Two id arrays, as for acks: one gathering,
 * one in flight.
 */
#include "core/release.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "db/sqlarr.h"

const char RELEASE_SQL[] =
	"UPDATE push.queue"
	" SET lease_owner = NULL, lease_expires_at = NULL,"
	"  attempts = greatest(attempts - 1, 0)"
	" WHERE id = ANY ($2::bigint[]) AND lease_owner = $1";

static void id_append(int64_t **ids, size_t *n, size_t *cap, int64_t id)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*ids = mem_realloc(*ids, *cap * sizeof **ids);
	}
	(*ids)[(*n)++] = id;
}

void release_add(struct release *r, struct push_item *item)
{
	id_append(&r->ids, &r->n, &r->cap, item->queue_id);
	push_item_free(item);
}

static size_t release_waiting(void *mod)
{
	struct release *r = mod;

	return r->n;
}

/* Every gathered id (a release has no batch cap) into the busy array. */
static void release_take(void *mod, size_t max, char **params)
{
	struct release *r = mod;
	struct sqlarr a = {0};
	int64_t *ids = r->busy;
	size_t cap = r->capbusy;

	(void)max;
	r->busy = r->ids;
	r->nbusy = r->n;
	r->capbusy = r->cap;
	r->ids = ids;
	r->cap = cap;
	r->n = 0;
	sqlarr_reset(&a);
	for (size_t i = 0; i < r->nbusy; i++)
		sqlarr_add_int(&a, r->busy[i]);
	params[0] = mem_strdup(r->owner);
	params[1] = mem_strdup(sqlarr_text(&a));
	sqlarr_free(&a);
}

static void release_written(void *mod, int64_t sent_us)
{
	struct release *r = mod;

	(void)sent_us;
	r->nbusy = 0;
}

/* The busy ids go back ahead of those gathered since. */
static void release_put_back(void *mod)
{
	struct release *r = mod;

	for (size_t i = 0; i < r->n; i++)
		id_append(&r->busy, &r->nbusy, &r->capbusy, r->ids[i]);
	int64_t *ids = r->ids;
	size_t cap = r->cap;
	r->ids = r->busy;
	r->n = r->nbusy;
	r->cap = r->capbusy;
	r->busy = ids;
	r->capbusy = cap;
	r->nbusy = 0;
}

static const struct writer_ops release_ops = {
	.waiting = release_waiting,
	.take = release_take,
	.written = release_written,
	.put_back = release_put_back,
};

void release_init(struct release *r, const char *owner,
		  struct db_async *conn, struct health *health,
		  void (*on_answer)(void *arg), void *answer_arg)
{
	static const struct writer_cfg cfg = {
		.stmt = "release", .nparams = RELEASE_NPARAMS,
		.what = "release failed", .again_on_success = true,
	};

	memset(r, 0, sizeof *r);
	r->owner = owner;
	writer_init(&r->w, &cfg, &release_ops, r, NULL, conn, health,
		    on_answer, answer_arg);
}

void release_flush(struct release *r)
{
	writer_flush(&r->w);
}

size_t release_backlog(const struct release *r)
{
	return r->n + r->nbusy;
}

void release_free(struct release *r)
{
	free(r->ids);
	free(r->busy);
	r->ids = r->busy = NULL;
	r->n = r->nbusy = r->cap = r->capbusy = 0;
}
