/*
 * test_sendq.c - unit tests for sendq.c: deferred results wait for the
 * loop and come back through the sender's finish with the item on the
 * in-flight list, sendq_flush() delivers them at once, a sender's own
 * list, the cancelled result, and closing.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "platforms/sendq.h"
#include "tap.h"

struct send {
	int id;
	struct sendq_item qi;
};

static struct sendq q;
static int finished[8];          /* ids in the order finished */
static int nfinished;
static int on_list_at_finish;    /* every one was on `sends` */
static int closed;

static int on_sends(const struct sendq_item *it)
{
	for (const struct sendq_item *x = q.sends; x != NULL; x = x->next)
		if (x == it)
			return 1;
	return 0;
}

static void finish(struct sendq_item *it, struct push_result *res)
{
	struct send *s = sendq_entry(it, struct send, qi);

	on_list_at_finish &= on_sends(it);
	sendq_remove(&q, it);
	finished[nfinished++] = s->id * 1000 + res->http_status;
}

static void on_closed(void *arg)
{
	closed = *(int *)arg;
}

int main(void)
{
	uv_loop_t loop;
	struct send s[4];
	struct sendq_item *mine = NULL;
	struct push_result res;
	int tag = 7;

	uv_loop_init(&loop);
	sendq_init(&q, &loop, finish);
	on_list_at_finish = 1;
	for (int i = 0; i < 4; i++) {
		s[i].id = i + 1;
		sendq_add(&q, &s[i].qi);
	}
	memset(&res, 0, sizeof res);
	res.http_status = 200;
	sendq_finish_later(&q, &s[1].qi, &res);
	res.http_status = 400;
	sendq_finish_later(&q, &s[2].qi, &res);
	is_int(nfinished, 0, "finish_later: not from inside the call");
	ok(!on_sends(&s[1].qi) && q.ready != NULL, "the item waits on ready");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(nfinished, 2, "the loop delivers both");
	ok((finished[0] == 2200 && finished[1] == 3400) ||
	   (finished[0] == 3400 && finished[1] == 2200),
	   "each with its own result (%d, %d)", finished[0], finished[1]);
	ok(on_list_at_finish, "finish finds the item in flight");

	/* A list of the sender's own (APNs' `later`). */
	sendq_remove(&q, &s[0].qi);
	sendq_list_push(&mine, &s[0].qi);
	ok(!on_sends(&s[0].qi) && mine == &s[0].qi, "on the sender's list");
	sendq_list_remove(&mine, &s[0].qi);
	sendq_add(&q, &s[0].qi);
	ok(mine == NULL && on_sends(&s[0].qi), "and back in flight");

	sendq_set_cancelled(&res);
	ok(res.outcome == PUSH_OUTCOME_RETRY && res.retry_at_us > 0,
	   "cancelled: retry now");
	is_str(res.reason, "cancelled", "reason \"cancelled\"");
	sendq_finish_later(&q, &s[0].qi, &res);
	sendq_finish_later(&q, &s[3].qi, &res);
	sendq_flush(&q);
	ok(nfinished == 4 && q.sends == NULL && q.ready == NULL,
	   "flush delivers what waits, now");
	sendq_close(&q, on_closed, &tag);
	is_int(closed, 0, "close: the callback waits for libuv");
	uv_run(&loop, UV_RUN_DEFAULT);
	is_int(closed, 7, "then runs with its argument");
	is_int(uv_loop_close(&loop), 0, "the timer is closed");
	return done_testing();
}
