/*
 * test_faults.c - the decisions of faults.c that need no database: what a
 * held app claims, the overflow 'drop' policy, the verdict on a claimed
 * row (lease lost too often, retry too old, no room), a RETRY past
 * max_retry_age turned into FAILED, and a critical app held through the
 * hook instead of banned.
 */
#include <string.h>

#include "core/faults.h"
#include "base/push.h"
#include "tap.h"

#define S 1000000LL

static int held_app = -1;

static void on_hold(void *arg, int32_t app_id)
{
	(void)arg;
	held_app = app_id;
}

static struct autoban_policy pol(void)
{
	struct autoban_policy p;

	memset(&p, 0, sizeof p);
	p.enabled = true;
	p.threshold = 2;
	p.window_us = 60 * S;
	p.duration_us = 600 * S;
	p.max_retry_age_us = 3600 * S;
	return p;
}

int main(void)
{
	struct faults f;
	struct faults_hooks h = { NULL, NULL, on_hold };
	struct autoban_policy p = pol(), drop = pol(), crit = pol();
	struct push_item it;
	struct push_result r;
	enum push_outcome o;
	char why[256];
	int64_t now = 100000 * S;

	faults_init(&f, NULL, "me", 120, 2000, &h);
	is_int(f.stale_us, 120 * S, "stale after one lease (120 s)");
	faults_init(&f, NULL, "me", 5, 2000, &h);
	is_int(f.stale_us, 10 * S, "  or 5 heartbeats when longer");
	is_int(f.sweep_every_us, 2500000, "sweep every quarter of it");

	drop.overflow_drop = true;
	crit.critical = true;
	autoban_set_policy(&f.ab, 1, &p);
	autoban_set_policy(&f.ab, 2, &drop);
	autoban_set_policy(&f.ab, 3, &crit);

	is_int(faults_claim_want(&f, 1, 0, true, 500, now), 0,
	       "hold policy, full pool: claim nothing");
	is_int(faults_claim_want(&f, 2, 0, true, 500, now), 500,
	       "drop policy, full pool: claim a batch (to drop)");
	is_int(faults_claim_want(&f, 2, 40, false, 500, now), 40,
	       "drop policy, room: what the pool wants");

	memset(&it, 0, sizeof it);
	it.app_id = 1;
	it.attempts = 9;
	it.enqueued_at_us = now - S;
	is_int(faults_on_claim(&f, &it, 8, false, now, &o, why, sizeof why),
	       FAULTS_FINISH, "claimed 9 times with max_attempts 8: finish");
	ok(o == PUSH_OUTCOME_FAILED && strstr(why, "claimed 9 times"),
	   "  failed: %s", why);
	it.attempts = 2;
	it.enqueued_at_us = now - 3601 * S;
	is_int(faults_on_claim(&f, &it, 8, false, now, &o, why, sizeof why),
	       FAULTS_FINISH, "a retry older than max_retry_age: finish");
	ok(o == PUSH_OUTCOME_FAILED && strstr(why, "max_retry_age"),
	   "  failed: %s", why);
	it.attempts = 1;
	is_int(faults_on_claim(&f, &it, 8, false, now, &o, why, sizeof why),
	       FAULTS_SEND, "a first attempt, however old: send");
	is_int(faults_on_claim(&f, &it, 8, true, now, &o, why, sizeof why),
	       FAULTS_SEND, "no room, hold policy: send (the ring grows)");
	it.app_id = 2;
	is_int(faults_on_claim(&f, &it, 8, true, now, &o, why, sizeof why),
	       FAULTS_FINISH, "no room, drop policy: finish");
	is_int(o, PUSH_OUTCOME_DROPPED_OVERLOAD, "  as dropped_overload");

	it.app_id = 1;
	it.enqueued_at_us = now - 3601 * S;
	push_result_set(&r, PUSH_OUTCOME_RETRY, "UNAVAILABLE");
	r.http_status = 503;
	r.retry_at_us = now + S;
	faults_on_finish(&f, &it, &r, true, false, false, now);
	is_int(r.outcome, PUSH_OUTCOME_FAILED,
	       "a RETRY past max_retry_age fails");
	is_str(r.reason, "gave up retrying: queued longer than max_retry_age "
	       "(last: UNAVAILABLE)", "  with the last reason");
	is_int(r.retry_at_us, 0, "  and no retry time");

	it.app_id = 3;
	it.enqueued_at_us = now;
	push_result_set(&r, PUSH_OUTCOME_RETRY, "transport: timeout");
	faults_on_finish(&f, &it, &r, true, false, true, now);
	is_int(held_app, -1, "one transport failure: nothing yet");
	faults_on_finish(&f, &it, &r, true, false, true, now);
	is_int(held_app, 3, "the second: the critical app is held (hook)");
	is_int(faults_claim_want(&f, 3, 100, false, 500, now), 0,
	       "  and claims nothing while held");
	is_int(faults_claim_want(&f, 3, 100, false, 500, now + 61 * S), 100,
	       "  until the window has passed");
	is_int(f.holds, 1, "counted as a hold");
	faults_free(&f);
	return done_testing();
}
