/*
 * sendq.c - the in-flight sends of one sender credential.  See sendq.h.
 *
 * Two intrusive doubly linked lists (`sends`, `ready`) and a zero timer.
 * A deferred result moves its item from `sends` to `ready`; the timer (or
 * sendq_flush()) moves each item back to `sends` before calling the
 * sender's finish, so finish always finds it where sendq_remove() looks.
 */
#include "platforms/sendq.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void sendq_list_push(struct sendq_item **head, struct sendq_item *it)
{
	it->prev = NULL;
	it->next = *head;
	if (*head != NULL)
		(*head)->prev = it;
	*head = it;
}

void sendq_list_remove(struct sendq_item **head, struct sendq_item *it)
{
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		*head = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	it->prev = it->next = NULL;
}

void sendq_init(struct sendq *q, uv_loop_t *loop, sendq_finish_fn finish)
{
	memset(q, 0, sizeof *q);
	q->finish = finish;
	uv_timer_init(loop, &q->defer);
	q->defer.data = q;
}

void sendq_add(struct sendq *q, struct sendq_item *it)
{
	sendq_list_push(&q->sends, it);
}

void sendq_remove(struct sendq *q, struct sendq_item *it)
{
	sendq_list_remove(&q->sends, it);
}

void sendq_flush(struct sendq *q)
{
	while (q->ready != NULL) {
		struct sendq_item *it = q->ready;

		sendq_list_remove(&q->ready, it);
		sendq_list_push(&q->sends, it);
		q->finish(it, &it->res);
	}
}

static void on_defer(uv_timer_t *t)
{
	sendq_flush(t->data);
}

void sendq_finish_later(struct sendq *q, struct sendq_item *it,
			const struct push_result *res)
{
	sendq_list_remove(&q->sends, it);
	it->res = *res;
	sendq_list_push(&q->ready, it);
	uv_timer_start(&q->defer, on_defer, 0, 0);
}

static void on_defer_closed(uv_handle_t *h)
{
	struct sendq *q = h->data;

	/* `q` may be freed by the callback. */
	q->closed(q->closed_arg);
}

void sendq_close(struct sendq *q, void (*closed)(void *arg), void *arg)
{
	assert(q->sends == NULL && q->ready == NULL);
	q->closed = closed;
	q->closed_arg = arg;
	uv_close((uv_handle_t *)&q->defer, on_defer_closed);
}

void sendq_set_cancelled(struct push_result *res)
{
	memset(res, 0, sizeof *res);
	res->outcome = PUSH_OUTCOME_RETRY;
	res->retry_at_us = push_now_us();
	snprintf(res->reason, sizeof res->reason, "cancelled");
}
