/*
 * acker.c - see acker.h.
 */
#include "core/acker.h"

#include <string.h>


static size_t acker_waiting(void *mod)
{
	struct acker *a = mod;

	return a->wait.len;
}

/* The oldest `max` rows (0: all) into the busy batch. */
static void acker_take(void *mod, size_t max, char **params)
{
	struct acker *a = mod;
	size_t n = max == 0 || a->wait.len < max ? a->wait.len : max;

	ack_clear(&a->busy);
	if (n == a->wait.len) {
		struct ack_buf t = a->busy;
		a->busy = a->wait;
		a->wait = t;
	} else {
		struct ack_buf head = { a->wait.rows, n, n };
		ack_move(&a->busy, &head);
		memmove(a->wait.rows, a->wait.rows + n,
			(a->wait.len - n) * sizeof *a->wait.rows);
		a->wait.len -= n;
	}
	ack_build_params(&a->busy, a->owner, params);
}

static void acker_written(void *mod, int64_t sent_us)
{
	struct acker *a = mod;

	if (a->hooks.written != NULL)
		a->hooks.written(a->hooks.arg, &a->busy, sent_us);
	ack_clear(&a->busy);
	if (a->hooks.freed != NULL)
		a->hooks.freed(a->hooks.arg);
}

/* The busy rows go back ahead of the newer ones: oldest leases first. */
static void acker_put_back(void *mod)
{
	struct acker *a = mod;

	ack_move(&a->busy, &a->wait);
	struct ack_buf t = a->busy;
	a->busy = a->wait;
	a->wait = t;
}

static const struct writer_ops acker_ops = {
	.waiting = acker_waiting,
	.take = acker_take,
	.written = acker_written,
	.put_back = acker_put_back,
};

void acker_init(struct acker *a, const char *owner, uv_loop_t *loop,
		struct db_async *conn, struct health *health,
		const struct ack_hooks *hooks,
		void (*on_answer)(void *arg), void *answer_arg)
{
	/* Safe to send a failed batch again: the statement is guarded by
	 * the lease owner and does nothing the second time. */
	static const struct writer_cfg cfg = {
		.stmt = "ack", .nparams = ACK_NPARAMS, .what = "ack failed",
		.batch_max = ACK_BATCH_MAX, .again_on_success = true,
		.retry_ms = ACK_RETRY_MS,
	};

	memset(a, 0, sizeof *a);
	a->owner = owner;
	if (hooks != NULL)
		a->hooks = *hooks;
	writer_init(&a->w, &cfg, &acker_ops, a, loop, conn, health,
		    on_answer, answer_arg);
}

size_t acker_backlog(const struct acker *a)
{
	return a->wait.len + a->busy.len;
}

void acker_free(struct acker *a)
{
	ack_free(&a->wait);
	ack_free(&a->busy);
}
