/*
 * test_multipart.c - unit tests for multipart.c, the multi-part send of
 * WNS and MPNS, driven by a fake platform whose parts answer when the
 * test says: parts settled inside send() wait for the loop; the push's
 * result is parts_combine()'s once the last part is in; a retry resends
 * only the parts not accepted; a 406 holds the channel (with holds);
 * cred_close() cancels parts waiting for auth and sends with nothing
 * outstanding; a refused channel or request finishes FAILED, later.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"
#include "net/hostlist.h"
#include "platforms/multipart.h"
#include "tap.h"

#define S 1000000LL

struct fake_send {
	struct multipart_send mp;
};

static uv_loop_t loop;
static struct hostlist *hosts;
static int started[PARTS_MAX];
static int unwaited;
static int freed;
static int done_calls;
static bool inside_send;
static int done_inside_send;
static struct push_result last;
/* What a started part does: 0 wait, else settle at once with it. */
static int answer_now[PARTS_MAX];

static void fake_free(struct send *b)
{
	struct multipart_send *s = multipart_of(b);

	multipart_send_release(s);
	freed++;
	free(send_entry(s, struct fake_send, mp));
}

static const struct send_kind kind = {
	.done_event = "fake push done",
	.backoff_base_us = 1 * S,
	.backoff_cap_us = 60 * S,
	.free = fake_free,
	.cancel = multipart_cancel,
};

static void settle(struct multipart_part *p, int status)
{
	struct push_result r;

	memset(&r, 0, sizeof r);
	r.http_status = status;
	if (status == 200)
		r.outcome = PUSH_OUTCOME_SENT;
	else
		send_retry(&p->send->base, &r, push_now_us() + S);
	multipart_part_done(p, &r);
}

static void start(struct multipart_part *p)
{
	started[p->index]++;
	p->active = true;
	if (answer_now[p->index] != 0)
		settle(p, answer_now[p->index]);
}

static void unwait(struct multipart_part *p)
{
	unwaited++;
}

static const struct multipart_ops ops = { .start = start,
					  .unwait = unwait };
static const struct multipart_ops hold_ops = { .start = start,
					       .hold_us = 3600 * S };

static void on_done(void *arg, struct push_item *item,
		    const struct push_result *res)
{
	if (inside_send)
		done_inside_send++;
	done_calls++;
	last = *res;
}

static struct push_item the_item;
static const char *const names[] = { "toast", "badge", "tile" };

/* send() of the fake platform: `n` parts, the channel checked. */
static struct fake_send *fake_send(struct multipart_cred *c, size_t n)
{
	struct fake_send *s = calloc(1, sizeof *s);

	memset(started, 0, sizeof started);
	inside_send = true;
	if (!multipart_begin(&s->mp, c, &the_item, 3, on_done, NULL) ||
	    !multipart_channel(&s->mp, hosts, NULL, "fake channel refused")) {
		inside_send = false;
		return NULL;
	}
	multipart_run(&s->mp, n, names, push_now_us());
	inside_send = false;
	return s;
}

static void item_init(long long queue_id, const char *token)
{
	memset(&the_item, 0, sizeof the_item);
	the_item.queue_id = queue_id;
	the_item.push_id = queue_id;
	the_item.attempts = 1;
	the_item.token = (char *)token;
}

static void on_closed(void *arg)
{
	(void)arg;
}

static void close_cred(struct multipart_cred *c)
{
	send_cred_cancel_all(&c->base);
	multipart_cred_free(c);
	sendq_close(&c->base.q, on_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_parts(void)
{
	struct sender_env env = { .loop = &loop };
	struct multipart_cred c;
	struct fake_send *s;

	memset(&c, 0, sizeof c);
	multipart_cred_init(&c, &env, &kind, &ops);

	/* Every part settled inside send(): the result waits. */
	item_init(1, "https://a.example.com/c1");
	answer_now[0] = answer_now[1] = 200;
	s = fake_send(&c, 2);
	ok(s != NULL, "a channel in the host list is taken");
	is_int(done_calls, 0, "parts settled inside send() wait");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(done_calls, 1, "then the push finishes, once");
	is_int(last.outcome, PUSH_OUTCOME_SENT, "every part accepted: SENT");
	is_int(done_inside_send, 0, "never from inside send()");

	/* Toast accepted, badge retried: a retry sends the badge alone. */
	item_init(2, "https://a.example.com/c2");
	answer_now[0] = 200;
	answer_now[1] = 503;
	fake_send(&c, 2);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(last.outcome, PUSH_OUTCOME_RETRY, "one part retried: RETRY");
	the_item.attempts = 2;
	answer_now[1] = 0;
	s = fake_send(&c, 2);
	ok(started[0] == 0 && started[1] == 1,
	   "the retry starts only the part not accepted");
	is_int(done_calls, 2, "a part in flight keeps the push open");
	settle(&s->mp.ps[1], 200);
	is_int(done_calls, 3, "the last part finishes it, from the loop");
	is_int(last.outcome, PUSH_OUTCOME_SENT, "... SENT");
	like_str(last.reason, "toast=accepted earlier",
		 "the skipped part is named");

	/* cred_close(): a part waiting for auth is unwaited, cancelled. */
	item_init(3, "https://a.example.com/c3");
	answer_now[0] = answer_now[1] = 0;
	fake_send(&c, 2);
	ok(send_cred_cancel_all(&c.base), "close");
	is_int(unwaited, 2, "both waiting parts stop waiting");
	is_int(done_calls, 4, "the push finishes by the close");
	is_int(last.outcome, PUSH_OUTCOME_RETRY, "... RETRY");
	like_str(last.reason, "cancelled", "... cancelled");
	is_int(freed, 4, "every send freed once");
	multipart_cred_free(&c);
	sendq_close(&c.base.q, on_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_holds_and_refusals(void)
{
	struct sender_env env = { .loop = &loop, .max_attempts = 5 };
	struct multipart_cred c;
	int64_t now = push_now_us();

	memset(&c, 0, sizeof c);
	multipart_cred_init(&c, &env, &kind, &hold_ops);

	item_init(10, "https://evil.example.org/c");
	ok(fake_send(&c, 1) == NULL, "a channel not in the host list");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(last.outcome, PUSH_OUTCOME_FAILED, "... FAILED");

	item_init(11, "https://a.example.com/held");
	answer_now[0] = 406;
	fake_send(&c, 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	item_init(12, "https://a.example.com/held");
	ok(fake_send(&c, 1) == NULL, "a 406 holds the channel");
	uv_run(&loop, UV_RUN_NOWAIT);
	ok(last.outcome == PUSH_OUTCOME_RETRY && last.throttled &&
	   last.retry_at_us >= now + 3599 * S,
	   "a held push is a throttled retry at the hold's end");
	is_int(started[0], 0, "... without a request");

	item_init(13, "https://a.example.com/ok");
	fake_send(&c, 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(last.outcome, PUSH_OUTCOME_RETRY,
	       "another channel is not held (406 again: retried)");
	close_cred(&c);
}

int main(void)
{
	char err[100];

	log_set_level(LOG_LEVEL_ERROR);
	uv_loop_init(&loop);
	hosts = hostlist_new();
	hostlist_add(hosts, "*.example.com", err, sizeof err);
	test_parts();
	test_holds_and_refusals();
	hostlist_free(hosts);
	uv_loop_close(&loop);
	return done_testing();
}
