/*
 * test_pipeline.c - the pure parts of the claim -> pool -> ack pipeline:
 * array literals, claim rows, the pool's ring and window, the ack buffer
 * and the stats counters.  No loop, no network, no database.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ack.h"
#include "core/claim.h"
#include "core/pool.h"
#include "base/push.h"
#include "db/sqlarr.h"
#include "obs/stats.h"
#include "tap.h"

/* A sender that only records what it was given. */
#define MAX_SENT 4096
static struct push_item *sent[MAX_SENT];
static sender_done_fn sent_done[MAX_SENT];
static void *sent_arg[MAX_SENT];
static int nsent;

static int fake_send(struct sender_cred *cred, struct push_item *item,
		     int max_attempts, sender_done_fn done, void *arg)
{
	(void)cred;
	(void)max_attempts;
	sent[nsent] = item;
	sent_done[nsent] = done;
	sent_arg[nsent] = arg;
	nsent++;
	return 0;
}

static const struct sender_ops fake_ops = {
	.name = "fake", .platform = PUSH_PLATFORM_FCM, .send = fake_send,
};

static int nfinished;
static int ngiven_back;
static enum push_outcome last_outcome;
static void on_finish(void *arg, struct pool *p, struct push_item *item,
		      const struct push_result *res)
{
	(void)arg;
	(void)p;
	if (res == NULL) {
		ngiven_back++;
	} else {
		nfinished++;
		last_outcome = res->outcome;
	}
	push_item_free(item);
}

static struct push_item *item(int64_t id, int64_t expires_at_us)
{
	struct push_item *it = calloc(1, sizeof *it);

	it->queue_id = id;
	it->expires_at_us = expires_at_us;
	it->enqueued_at_us = 1;
	return it;
}

static void test_sqlarr(void)
{
	struct sqlarr a = {0};

	is_str(sqlarr_text(&a), "{}", "an empty array");
	sqlarr_reset(&a);
	sqlarr_add_int(&a, 1);
	sqlarr_add_null(&a);
	sqlarr_add_int(&a, -42);
	is_str(sqlarr_text(&a), "{1,NULL,-42}", "integers and NULL");
	sqlarr_reset(&a);
	sqlarr_add_int(&a, 0);
	sqlarr_add_int(&a, INT64_MAX);
	sqlarr_add_int(&a, INT64_MIN);
	sqlarr_add_int(&a, 1700000000123456);
	is_str(sqlarr_text(&a),
	       "{0,9223372036854775807,-9223372036854775808,1700000000123456}",
	       "integers: zero and both ends of int64");
	sqlarr_reset(&a);
	sqlarr_add_milli(&a, 0);
	sqlarr_add_milli(&a, 7);
	sqlarr_add_milli(&a, 1234567);
	sqlarr_add_milli(&a, -1050);
	sqlarr_add_milli(&a, INT64_MIN);
	is_str(sqlarr_text(&a),
	       "{0.000,0.007,1234.567,-1.050,-9223372036854775.808}",
	       "thousandths: exact, three decimals, sign");
	sqlarr_reset(&a);
	sqlarr_add_str(&a, "plain");
	sqlarr_add_str(&a, "with \"quotes\" and \\ back");
	sqlarr_add_str(&a, NULL);
	sqlarr_add_str(&a, "");
	is_str(sqlarr_text(&a),
	       "{\"plain\",\"with \\\"quotes\\\" and \\\\ back\",NULL,\"\"}",
	       "strings are quoted and escaped; NULL stays NULL");
	sqlarr_add_str(&a, "more");
	like_str(sqlarr_text(&a), ",\"more\"}", "adding after reading goes on");
	sqlarr_free(&a);
}

static void test_claim_row(void)
{
	const char *row[CLAIM_NCOLS] = {
		"17", "9", "3", "fcm", "0", "tok-123", "high",
		"{\"title\": \"x\"}", NULL, "0", "1700000000000000", "2",
		"t", "0", "f", "1699999000000000"
	};
	struct push_item *it;
	bool gone;

	is_int(claim_parse_row(row, &it, &gone), 0, "a claim row parses");
	is_int(it->queue_id, 17, "queue id");
	is_int(it->push_id, 9, "push id");
	is_int(it->app_id, 3, "app id");
	is_int(it->platform, PUSH_PLATFORM_FCM, "platform");
	is_int(it->priority, PUSH_PRIORITY_HIGH, "priority");
	is_str(it->token, "tok-123", "token");
	is_str(it->payload, "{\"title\": \"x\"}", "payload");
	is_ptr(it->collapse_key, NULL, "no collapse key");
	is_int(it->enqueued_at_us, 1700000000000000LL, "enqueued at");
	is_int(it->attempts, 2, "attempts");
	ok(it->debug, "debug flag");
	ok(!gone, "device not invalidated");
	is_int(it->device_seen_us, 1699999000000000LL,
	       "the device's last_seen_at");
	push_item_free(it);

	row[14] = "t";
	claim_parse_row(row, &it, &gone);
	ok(gone, "an invalidated device is reported");
	push_item_free(it);
	row[3] = "carrier-pigeon";
	is_int(claim_parse_row(row, &it, &gone), -22,
	       "an unknown platform is an error, not a crash");
	is_ptr(it, NULL, "and makes no item");

	struct claim_req c = {0};
	const char *p[CLAIM_NPARAMS];
	claim_req_reset(&c);
	claim_req_add(&c, 1, PUSH_PLATFORM_FCM, 7, 100);
	claim_req_add(&c, 2, PUSH_PLATFORM_APNS, 9, 5);
	claim_req_params(&c, "me", "30", p);
	is_str(p[0], "{1,2}", "claim apps");
	is_str(p[1], "{\"fcm\",\"apns\"}", "claim platforms");
	is_str(p[2], "{100,5}", "claim counts");
	is_int(c.rows, 105, "rows asked for");
	is_int(c.pools, 2, "pools asked");
	ok(c.asks[0].pool_serial == 7 && c.asks[0].rows == 100 &&
	   c.asks[1].pool_serial == 9 && c.asks[1].rows == 5,
	   "what was asked of each pool is kept for the answer");
	claim_req_free(&c);
}

static void test_pool(void)
{
	struct pool_limits lim = { .min_window = 2, .max_window = 16,
				   .max_attempts = 5 };
	struct pool *p = pool_new(1, PUSH_PLATFORM_FCM, 1, &fake_ops,
				  (struct sender_cred *)&lim, &lim,
				  on_finish, NULL);
	struct pool_gate gate = { .max = 16 };

	p->gate = &gate;

	is_int(p->cap, 128, "the ring holds eight windows");
	is_int(pool_claim_want(p, 500), 128, "an empty pool wants a full ring");
	is_int(pool_claim_want(p, 10), 10, "capped by the batch size");
	p->claim_pending = 100;
	is_int(pool_claim_want(p, 500), 0,
	       "rows an outstanding claim asked for count as held");
	p->claim_pending = 60;
	is_int(pool_claim_want(p, 500), 68,
	       "a second claim asks for the room left beside the first");
	p->claim_pending = 0;
	for (int i = 0; i < 40; i++)
		pool_add(p, item(i + 1, 0), 1000);
	is_int(pool_claim_want(p, 500), 88, "40 in the ring: wants the rest");
	p->claim_pending = 25;
	is_int(pool_claim_want(p, 500), 0,
	       "40 in the ring and 25 on their way: over half full");
	p->claim_pending = 0;
	lim.paused = true;
	pool_set_limits(p, &lim);
	p->len = 0;             /* pretend empty to isolate the pause */
	is_int(pool_claim_want(p, 500), 0, "a paused app claims nothing");
	p->len = 40;
	lim.paused = false;
	pool_set_limits(p, &lim);

	nsent = 0;
	pool_pump(p, 1000);
	is_int(nsent, 2, "sends start up to the window (min 2)");
	is_int(p->in_flight, 2, "two in flight");
	is_int(p->len, 38, "the rest wait in the ring");

	pool_pump(p, 1000 + 4999);
	is_int(p->window, 2, "pushes waiting under 5 ms: the window stays");
	pool_pump(p, 1000 + 5000);
	is_int(p->window, 3, "a push waiting 5 ms for a slot grows the window");
	is_int(p->in_flight, 3, "and the new slot is used at once");
	pool_pump(p, 1000 + 9000);
	is_int(p->window, 3, "but not again within 5 ms");
	lim.max_window = 3;
	pool_set_limits(p, &lim);
	pool_pump(p, 1000 + 20000);
	is_int(p->window, 3, "nor past the app's maximum");
	lim.max_window = 16;
	pool_set_limits(p, &lim);

	pool_tick(p, 1000000);
	ok(p->window > 2, "a ring over 10%% full grows the window (now %d)",
	   p->window);
	int w = p->window;
	pool_tick(p, 1000001);
	is_int(p->window, w, "but not again within 100 ms");
	for (int t = 2; t < 40; t++)
		pool_tick(p, t * 1000000LL);
	is_int(p->window, 16, "it stops at the app's maximum");

	/* Finish sends in the order they started; each done frees a slot
	 * and pumps the next ones, so the loop runs until the ring drains. */
	struct push_result ok_res = { .outcome = PUSH_OUTCOME_SENT };
	nfinished = 0;
	sent_done[0](sent_arg[0], sent[0], &ok_res);
	ok(nsent > 2, "a finished send starts the next ones");
	is_int(nfinished, 1, "and the result reaches finish");
	for (int k = 1; k < nsent; k++)
		sent_done[k](sent_arg[k], sent[k], &ok_res);
	/* Answers whose outcome is not written are counted in the gate: at
	 * its maximum no send starts, so a crash resends a bounded number. */
	ok(gate.unacked >= gate.max && p->in_flight == 0 && p->len > 0,
	   "at the gate's maximum no send starts (%d answered, %zu wait)",
	   gate.unacked, p->len);
	ok(gate.unacked <= p->window + gate.max,
	   "never more than the window plus the gate's maximum (%d)",
	   gate.unacked);
	int kdone = nsent;
	pool_acked(&gate, gate.unacked);
	pool_pump(p, 3000000);
	is_int(gate.unacked, 0, "acked: the gate opens");
	ok(nsent > kdone, "  and the sends resume");
	while (kdone < nsent) {
		sent_done[kdone](sent_arg[kdone], sent[kdone], &ok_res);
		kdone++;
		if (gate.unacked >= gate.max) {
			pool_acked(&gate, gate.unacked);
			pool_pump(p, 3000000);
		}
	}
	pool_acked(&gate, gate.unacked);
	ok(pool_idle(p), "everything finished: the pool is idle");
	is_int(nfinished, 40, "all 40 pushes were finished exactly once");
	memset(sent, 0, sizeof sent);
	nsent = 0;

	/* Expired and banned pushes never reach the sender. */
	pool_add(p, item(100, 500), 1000);
	pool_pump(p, 1000);
	is_int(nsent, 0, "an expired push is not sent");
	is_int(last_outcome, PUSH_OUTCOME_EXPIRED, "it is finished as expired");
	lim.banned_until_us = 5000;
	pool_set_limits(p, &lim);
	pool_add(p, item(101, 0), 1000);
	pool_pump(p, 1000);
	is_int(nsent, 0, "a banned app's push is not sent");
	is_int(last_outcome, PUSH_OUTCOME_DROPPED_BANNED, "it is dropped");
	lim.banned_until_us = 0;
	pool_set_limits(p, &lim);

	/* A push that waited past its send-by time goes back unsent. */
	struct push_item *late = item(102, 0);
	late->send_by_us = 900;
	pool_add(p, late, 1000);
	pool_pump(p, 1000);
	is_int(nsent, 0, "a push past its send-by time is not sent");
	is_int(ngiven_back, 1, "it is given back (NULL result)");

	/* Unsent items can be taken back (pause, shutdown). */
	lim.min_window = 1;
	lim.max_window = 1;
	pool_set_limits(p, &lim);
	for (int i = 0; i < 5; i++)
		pool_add(p, item(200 + i, 0), 1000);
	pool_pump(p, 1000);
	struct push_item *back[8];
	is_int(pool_take_unsent(p, back), 4, "four unsent are taken back");
	is_int(back[0]->queue_id, 201, "oldest first");
	for (int i = 0; i < 4; i++)
		push_item_free(back[i]);
	struct push_item *last = sent[0];
	sent_done[0](sent_arg[0], last, &ok_res);
	pool_acked(&gate, 1);
	ok(pool_idle(p), "idle again");

	/* Idle pools shrink back toward the minimum. */
	lim.min_window = 2;
	lim.max_window = 16;
	pool_set_limits(p, &lim);
	p->window = 16;
	p->active_at_us = 0;
	pool_tick(p, 100000000);
	ok(p->window < 16, "an idle pool's window shrinks (now %d)", p->window);
	pool_free(p);
}

static void test_ack(void)
{
	struct ack_buf b = {0};
	struct push_item it = { .queue_id = 5, .campaign_id = 0,
				.enqueued_at_us = 1000000,
				.sent_at_us = 1500000 };
	struct push_result r = { .outcome = PUSH_OUTCOME_SENT,
				 .http_status = 200 };
	char *p[ACK_NPARAMS];

	strcpy(r.message_id, "projects/x/messages/1");
	ack_add(&b, &it, &r, 2000000);
	it.queue_id = 6;
	it.sent_at_us = 0;
	memset(&r, 0, sizeof r);
	r.outcome = PUSH_OUTCOME_RETRY;
	strcpy(r.reason, "UNAVAILABLE \"busy\"");
	ack_add(&b, &it, &r, 3000000);
	ack_build_params(&b, "host:1:2", p);
	is_str(p[0], "host:1:2", "$1 is the owner");
	is_str(p[1], "{5,6}", "queue ids");
	is_str(p[2], "{\"sent\",\"retry\"}", "outcomes");
	is_str(p[3], "{200,NULL}", "statuses");
	is_str(p[4], "{NULL,\"UNAVAILABLE \\\"busy\\\"\"}", "reasons escaped");
	is_str(p[5], "{\"projects/x/messages/1\",NULL}", "message ids");
	is_str(p[6], "{NULL,3000000}",
	       "a retry without a time is due at once");
	is_str(p[9], "{1000.000,NULL}", "latency from enqueue, ms; none unsent");
	ack_free_params(p);

	struct ack_buf more = {0};
	ack_add(&more, &it, &r, 4000000);
	ack_move(&b, &more);
	is_int(b.len, 3, "a failed flush's rows move back");
	is_int(more.len, 0, "and leave the other buffer");
	ack_free(&b);
	ack_free(&more);
}

static void test_stats(void)
{
	struct stats s = {0};
	struct stats_row *rows;
	size_t n;
	char *p[12];

	is_int(stats_bucket(0.5), 0, "0.5 ms: first bucket");
	is_int(stats_bucket(1), 0, "1 ms: first bucket (bounds inclusive)");
	is_int(stats_bucket(7), 3, "7 ms: the <= 10 ms bucket");
	is_int(stats_bucket(99999), STATS_BUCKETS - 1, "slower: last bucket");

	stats_add(&s, 60000000 * 5 + 10, 1, PUSH_PLATFORM_FCM, 0,
		  PUSH_OUTCOME_SENT, 1, 100, 4);
	stats_add(&s, 60000000 * 5 + 20, 1, PUSH_PLATFORM_FCM, 0,
		  PUSH_OUTCOME_SENT, 2, 50, 30);
	stats_add(&s, 60000000 * 5 + 30, 1, PUSH_PLATFORM_FCM, 7,
		  PUSH_OUTCOME_SENT, 1, 10, 1);
	stats_add(&s, 60000000 * 6, 1, PUSH_PLATFORM_FCM, 0,
		  PUSH_OUTCOME_FAILED, 1, 0, -1);
	is_int(s.len, 3, "rows by minute, app, platform, campaign, outcome");
	is_int(s.rows[0].count, 2, "same key: counted together");
	is_int(s.rows[0].attempts, 3, "attempts add up");
	ok(s.rows[0].latency_min_ms == 4 && s.rows[0].latency_max_ms == 30,
	   "min and max latency");
	is_int(s.totals[PUSH_OUTCOME_SENT], 3, "totals since start");

	stats_take(&s, &rows, &n);
	is_int(n, 3, "take moves the rows out");
	is_int(s.len, 0, "and leaves the counters empty");
	stats_build_params(rows, n, p);
	is_str(p[0], "{300000000,300000000,360000000}", "minute starts (us)");
	is_str(p[3], "{NULL,7,NULL}", "campaign or NULL");
	is_str(p[4], "{\"sent\",\"sent\",\"failed\"}", "outcomes");
	is_str(p[9], "{4,1,NULL}", "no latency is NULL");
	like_str(p[11], "\"{0,0,1,0,0,1,0,0,0,0,0,0,0,0,0,0}\"",
		 "the histogram as a nested array literal");
	stats_free_params(p);

	stats_merge_back(&s, rows, n);
	stats_add(&s, 60000000 * 5 + 40, 1, PUSH_PLATFORM_FCM, 0,
		  PUSH_OUTCOME_SENT, 1, 1, 2);
	is_int(s.rows[0].count, 3, "rows put back after a failed write merge "
	       "with new counts");
	stats_free(&s);
}

int main(void)
{
	test_sqlarr();
	test_claim_row();
	test_pool();
	test_ack();
	test_stats();
	return done_testing();
}
