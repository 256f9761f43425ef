/*
 * test_send.c - unit tests for send.c, the life cycle every sender
 * shares, driven by a fake platform: each send finishes exactly once; a
 * result decided inside send() is never delivered from inside it;
 * cred_close() finishes every send in flight with RETRY "cancelled" (and
 * delivers the results already queued); retry_or_fail at the attempts
 * limit is FAILED; the auth and submit failure results; the kind's
 * `finishing` hook; reauth never reaches the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"
#include "platforms/oauth_cache.h"
#include "platforms/send.h"
#include "tap.h"

#define S 1000000LL

struct fake_cred {
	struct send_cred base;
};

struct fake_send {
	struct send base;
	int id;
};

static uv_loop_t loop;
static int freed;
static int done_calls[16];          /* per item id */
static struct push_result last[16];
static int reauth_seen;
static int finishing_calls;
static bool inside_send;
static int done_inside_send;
static int closed;

static void fake_free(struct send *b)
{
	freed++;
	free(send_entry(b, struct fake_send, base));
}

static void fake_cancel(struct send *b)
{
	send_cancel(b);
}

static const char *fake_finishing(struct send *b, struct push_result *res)
{
	struct fake_send *s = send_entry(b, struct fake_send, base);

	finishing_calls++;
	if (res->message_id[0] == '\0')
		snprintf(res->message_id, sizeof res->message_id, "id-%d",
			 s->id);
	return "x";
}

static const struct send_kind kind = {
	.done_event = "fake push done",
	.backoff_base_us = 1 * S,
	.backoff_cap_us = 60 * S,
	.free = fake_free,
	.cancel = fake_cancel,
	.finishing = fake_finishing,
	.done_field = "fake_id",
};

static void on_done(void *arg, struct push_item *item,
		    const struct push_result *res)
{
	(void)arg;
	if (inside_send)
		done_inside_send++;
	done_calls[item->push_id]++;
	last[item->push_id] = *res;
	if (res->reauth)
		reauth_seen++;
}

/*
 * The fake platform's send(): payload "bad" is refused inside send()
 * (FAILED), "now" is decided inside send() through send_settle(),
 * anything else waits in flight; the struct send is returned.
 */
static struct fake_send *fake_send(struct fake_cred *c,
				   struct push_item *item, int max)
{
	struct fake_send *s = calloc(1, sizeof *s);
	struct push_result res;

	s->id = (int)item->push_id;
	inside_send = true;
	if (!send_begin(&s->base, &c->base, item, max, on_done, NULL)) {
		inside_send = false;
		return NULL;
	}
	if (strcmp(item->payload, "bad") == 0) {
		push_result_set(&res, PUSH_OUTCOME_FAILED, "bad payload");
		send_finish_later(&s->base, &res);
		s = NULL;
	} else if (strcmp(item->payload, "now") == 0) {
		s->base.in_send = true;
		push_result_set(&res, PUSH_OUTCOME_SENT, "");
		res.reauth = true;
		send_settle(&s->base, &res);
		s->base.in_send = false;
		s = NULL;
	}
	inside_send = false;
	return s;
}

static void on_closed(void *arg)
{
	closed++;
	(void)arg;
}

static struct push_item items[16];

static struct push_item *item(int id, const char *payload, int attempts)
{
	memset(&items[id], 0, sizeof items[id]);
	items[id].push_id = id;
	items[id].payload = (char *)payload;
	items[id].attempts = attempts;
	items[id].debug = true;
	return &items[id];
}

static void test_lifecycle(void)
{
	struct sender_env env = { .loop = &loop, .max_attempts = 5 };
	struct fake_cred c;
	struct fake_send *a, *b, *w1, *w2;
	struct push_result res;

	memset(&c, 0, sizeof c);
	send_cred_init(&c.base, &env, &kind);

	/* Refused inside send(): not before the loop turns. */
	fake_send(&c, item(1, "bad", 1), 0);
	is_int(done_calls[1], 0, "a refused payload is not delivered from "
	       "inside send()");
	fake_send(&c, item(2, "now", 1), 0);
	is_int(done_calls[2], 0, "send_settle() inside send() waits too");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(done_calls[1], 1, "the refusal comes on the next loop turn");
	is_int(last[1].outcome, PUSH_OUTCOME_FAILED, "... as FAILED");
	is_int(done_calls[2], 1, "the settled result too");
	is_int(reauth_seen, 0, "reauth never reaches the pool");
	is_str(last[2].message_id, "id-2", "the finishing hook ran");
	is_int(done_inside_send, 0, "no done callback from inside send()");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(done_calls[1] + done_calls[2], 2, "each finished once");
	is_int(freed, 2, "and freed once");

	/* In flight: finished from the loop, once. */
	a = fake_send(&c, item(3, "wait", 2), 0);
	ok(a != NULL, "a waiting send stays in flight");
	is_int(a->base.max_attempts, 5, "max_attempts 0 takes the env's");
	push_result_set(&res, PUSH_OUTCOME_SENT, "");
	send_settle(&a->base, &res);
	is_int(done_calls[3], 1, "send_settle() outside send() finishes now");
	is_int(finishing_calls, 3, "finishing ran once per send");

	/* cred_close(): every send in flight, and the queued results. */
	w1 = fake_send(&c, item(4, "wait", 1), 3);
	w2 = fake_send(&c, item(5, "wait", 1), 3);
	b = fake_send(&c, item(6, "bad", 1), 3);
	ok(w1 != NULL && w2 != NULL && b == NULL, "two in flight, one queued");
	ok(send_cred_cancel_all(&c.base), "cancel all");
	is_int(done_calls[4] + done_calls[5] + done_calls[6], 3,
	       "every send finished by the close");
	is_int(last[4].outcome, PUSH_OUTCOME_RETRY, "in flight: RETRY");
	is_str(last[4].reason, "cancelled", "... \"cancelled\"");
	is_str(last[5].reason, "cancelled", "the other one too");
	is_int(last[6].outcome, PUSH_OUTCOME_FAILED,
	       "a queued result is delivered as it was");
	ok(!send_cred_cancel_all(&c.base), "a second close does nothing");

	/* A send on a closing credential: cancelled, later. */
	ok(fake_send(&c, item(7, "wait", 1), 3) == NULL,
	   "send() on a closing credential stops at send_begin()");
	is_int(done_calls[7], 0, "... not from inside send()");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(done_calls[7], 1, "... delivered on the next turn");
	is_str(last[7].reason, "cancelled", "... cancelled");
	is_int(freed, 7, "every send freed once");

	sendq_close(&c.base.q, on_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	is_int(closed, 1, "the queue closes");
}

static void test_retry_or_fail(void)
{
	struct push_result res;

	memset(&res, 0, sizeof res);
	send_retry_or_fail(&res, 2, 3, 1234);
	ok(res.outcome == PUSH_OUTCOME_RETRY && res.retry_at_us == 1234,
	   "below the limit: RETRY at the time given");
	send_retry_or_fail(&res, 3, 3, 1234);
	ok(res.outcome == PUSH_OUTCOME_FAILED && res.retry_at_us == 0,
	   "at the limit: FAILED, no retry time");
	send_retry_or_fail(&res, 9, 3, 1234);
	is_int(res.outcome, PUSH_OUTCOME_FAILED, "past the limit: FAILED");
	send_retry_or_fail(&res, 99, 0, 77);
	ok(res.outcome == PUSH_OUTCOME_RETRY && res.retry_at_us == 77,
	   "no limit (0): always RETRY");
}

static void test_results(void)
{
	struct sender_env env = { .loop = &loop, .max_attempts = 3 };
	struct fake_cred c;
	struct fake_send s;
	struct oauth_cache_error err;
	struct push_result res;
	int64_t now = push_now_us(), d;

	memset(&c, 0, sizeof c);
	memset(&s, 0, sizeof s);
	send_cred_init(&c.base, &env, &kind);
	s.base.cred = &c.base;
	s.base.item = item(8, "x", 1);
	s.base.max_attempts = 3;

	for (int i = 0; i < 20; i++) {
		d = send_retry_delay(&s.base);
		if (d < 0 || d > 60 * S)
			break;
	}
	ok(d >= 0 && d <= 60 * S, "the retry delay stays within the cap");

	send_submit_failed(&s.base, -ENOMEM, &res);
	like_str(res.reason, "transport: cannot start the request: ",
		 "a refused submit says so");
	ok(res.outcome == PUSH_OUTCOME_RETRY && res.retry_at_us >= now,
	   "... and is retried");

	memset(&err, 0, sizeof err);
	memset(err.reason, 'r', 250);
	err.retry_at_us = now + 3600 * S;
	send_auth_failed(&s.base, &err, 0, &res);
	ok(res.outcome == PUSH_OUTCOME_RETRY &&
	   res.retry_at_us == err.retry_at_us,
	   "a token error: retried no sooner than the cache allows");
	is_int((long long)strlen(res.reason), 250, "the whole reason");
	send_auth_failed(&s.base, &err, 200, &res);
	is_int((long long)strlen(res.reason), 200, "or the first 200 bytes");
	err.permanent = true;
	send_auth_failed(&s.base, &err, 0, &res);
	ok(res.outcome == PUSH_OUTCOME_FAILED && res.auth_failure,
	   "a permanent token error: FAILED, auth_failure");
	s.base.item->attempts = 3;
	err.permanent = false;
	send_auth_failed(&s.base, &err, 0, &res);
	is_int(res.outcome, PUSH_OUTCOME_FAILED,
	       "a token error at the attempts limit: FAILED");
	c.base.closing = true;
	send_auth_failed(&s.base, &err, 0, &res);
	is_str(res.reason, "cancelled", "closing: cancelled");

	sendq_close(&c.base.q, on_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
	/* The debug "push done" lines are the senders' to test. */
	log_set_level(LOG_LEVEL_WARN);
	uv_loop_init(&loop);
	test_lifecycle();
	test_retry_or_fail();
	test_results();
	uv_loop_close(&loop);
	return done_testing();
}
