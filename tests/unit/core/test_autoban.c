/*
 * test_autoban.c - the auto-ban "patience cup" (autoban.c) and the retry
 * age limit (backoff_retry_too_old): which results count, the sliding
 * window, ban vs hold for critical apps, disabled apps never banned, the
 * reason text, and policy reloads.
 */
#include <stdio.h>
#include <string.h>

#include "core/autoban.h"
#include "base/backoff.h"
#include "base/push.h"
#include "tap.h"

#define S 1000000LL

static struct autoban_policy pol(int threshold, int64_t window_us)
{
	struct autoban_policy p;

	memset(&p, 0, sizeof p);
	p.enabled = true;
	p.threshold = threshold;
	p.window_us = window_us;
	p.duration_us = 600 * S;
	p.max_retry_age_us = 3600 * S;
	return p;
}

static void test_signals(void)
{
	struct push_result r;

	push_result_set(&r, PUSH_OUTCOME_FAILED, "THIRD_PARTY_AUTH_ERROR");
	r.http_status = 401;
	r.auth_failure = true;
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_AUTH,
	       "auth_failure counts as auth");
	push_result_set(&r, PUSH_OUTCOME_RETRY, "QUOTA_EXCEEDED");
	r.http_status = 429;
	r.throttled = true;
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_THROTTLED,
	       "a 429 counts as throttling");
	push_result_set(&r, PUSH_OUTCOME_RETRY,
			"oauth token endpoint: SSL certificate problem");
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_TRANSPORT,
	       "the token endpoint unreachable counts as transport");
	push_result_set(&r, PUSH_OUTCOME_RETRY,
			"provider token refused; waiting to mint a new one");
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_NONE,
	       "a sender's own wait (no request made) does not count");
	push_result_set(&r, PUSH_OUTCOME_RETRY, "transport: Timeout was reached");
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_TRANSPORT,
	       "a sent request without an answer counts as transport");
	is_int(autoban_signal_of(&r, false, false), AUTOBAN_SIGNAL_NONE,
	       "  but not when nothing was sent");
	push_result_set(&r, PUSH_OUTCOME_FAILED, "credential unusable: x");
	is_int(autoban_signal_of(&r, false, true), AUTOBAN_SIGNAL_AUTH,
	       "a push failed for an unusable credential counts as config");
	push_result_set(&r, PUSH_OUTCOME_RETRY, "UNAVAILABLE");
	r.http_status = 503;
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_NONE,
	       "a 503 answer does not count");
	push_result_set(&r, PUSH_OUTCOME_INVALID_TOKEN, "UNREGISTERED");
	r.http_status = 404;
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_NONE,
	       "a dead token does not count");
	push_result_set(&r, PUSH_OUTCOME_SENT, "");
	r.http_status = 200;
	is_int(autoban_signal_of(&r, true, false), AUTOBAN_SIGNAL_NONE,
	       "success does not count");
	is_int(autoban_signal_of(NULL, true, false), AUTOBAN_SIGNAL_NONE,
	       "no result does not count");
}

static void test_window(void)
{
	struct autoban ab = {0};
	struct autoban_policy p = pol(3, 10 * S);
	char why[256] = "";
	int64_t t = 1000 * S;

	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t, NULL, why,
			    sizeof why), AUTOBAN_NOTHING,
	       "an app without a policy is never banned");
	autoban_set_policy(&ab, 7, &p);
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t, NULL, why,
			    sizeof why), AUTOBAN_NOTHING, "1 of 3: nothing");
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t + 1 * S, NULL, why,
			    sizeof why), AUTOBAN_NOTHING, "2 of 3: nothing");
	is_int(autoban_count(&ab, 7, t + 2 * S), 2, "two in the window");
	/* The first signal leaves the window before the third arrives. */
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_TRANSPORT, t + 10 * S, NULL,
			    why, sizeof why), AUTOBAN_NOTHING,
	       "3 signals but over 10 s apart: nothing (sliding window)");
	is_int(autoban_count(&ab, 7, t + 10 * S), 2,
	       "the oldest slid out of the window");
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_THROTTLED, t + 10 * S,
			    "QUOTA_EXCEEDED", why, sizeof why), AUTOBAN_BAN,
	       "3 within 10 s: ban");
	ok(strstr(why, "3 signals in 10s (threshold 3)") != NULL &&
	   strstr(why, "1 auth/config failures") != NULL &&
	   strstr(why, "1 throttling answers") != NULL &&
	   strstr(why, "1 transport failures") != NULL &&
	   strstr(why, "last: QUOTA_EXCEEDED") != NULL,
	   "the reason counts each kind and names the last: %s", why);
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t + 11 * S, NULL,
			    why, sizeof why), AUTOBAN_NOTHING,
	       "while banned, signals are not counted");
	is_int(autoban_count(&ab, 7, t + 11 * S), 0, "the cup was emptied");
	ok(!autoban_held(&ab, 7, t + 11 * S), "a banned app is not held");
	autoban_lifted(&ab, 7, t + 12 * S);
	autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t + 12 * S, NULL, why,
		     sizeof why);
	is_int(autoban_count(&ab, 7, t + 12 * S), 1,
	       "an admin lifted the ban: counting again at once");
	autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t + 13 * S, NULL, why,
		     sizeof why);
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, t + 14 * S, NULL, why,
			    sizeof why), AUTOBAN_BAN, "  and it can ban again");
	/* After the ban's duration the cup fills again. */
	int64_t after = t + 14 * S + 600 * S;
	autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, after, NULL, why, sizeof why);
	autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, after, NULL, why, sizeof why);
	is_int(autoban_note(&ab, 7, AUTOBAN_SIGNAL_AUTH, after, NULL, why,
			    sizeof why), AUTOBAN_BAN,
	       "after the ban's duration it can ban again");
	autoban_free(&ab);
}

static void test_critical_and_disabled(void)
{
	struct autoban ab = {0};
	struct autoban_policy crit = pol(2, 60 * S);
	struct autoban_policy off = pol(2, 60 * S);
	char why[256];
	int64_t t = 5000 * S;

	crit.critical = true;
	off.enabled = false;
	autoban_set_policy(&ab, 1, &crit);
	autoban_set_policy(&ab, 2, &off);
	autoban_note(&ab, 1, AUTOBAN_SIGNAL_AUTH, t, NULL, why, sizeof why);
	is_int(autoban_note(&ab, 1, AUTOBAN_SIGNAL_AUTH, t, NULL, why,
			    sizeof why), AUTOBAN_HOLD,
	       "critical tier: held, never banned");
	ok(autoban_held(&ab, 1, t + 59 * S), "held for the window");
	autoban_lifted(&ab, 1, t + 1 * S);
	ok(autoban_held(&ab, 1, t + 59 * S),
	   "  a policy reload does not end it");
	ok(!autoban_held(&ab, 1, t + 60 * S), "then tried again");
	for (int i = 0; i < 100; i++)
		if (autoban_note(&ab, 2, AUTOBAN_SIGNAL_AUTH, t + i, NULL, why,
				 sizeof why) != AUTOBAN_NOTHING) {
			ok(0, "autoban_enabled false banned the app");
			break;
		}
	is_int(autoban_count(&ab, 2, t + 200), 0,
	       "autoban_enabled false: nothing counted, never banned");
	ok(autoban_policy_of(&ab, 2) != NULL &&
	   !autoban_policy_of(&ab, 2)->enabled, "the policy is kept");
	ok(autoban_policy_of(&ab, 3) == NULL, "unknown app: no policy");
	autoban_free(&ab);
	autoban_free(NULL);
}

static void test_reload(void)
{
	struct autoban ab = {0};
	struct autoban_policy p = pol(3, 60 * S);
	char why[256];
	int64_t t = 100 * S;

	autoban_set_policy(&ab, 9, &p);
	autoban_note(&ab, 9, AUTOBAN_SIGNAL_AUTH, t, NULL, why, sizeof why);
	autoban_note(&ab, 9, AUTOBAN_SIGNAL_AUTH, t, NULL, why, sizeof why);
	autoban_set_policy(&ab, 9, &p);
	is_int(autoban_count(&ab, 9, t), 2,
	       "a reload with the same threshold keeps the window");
	p.threshold = 50000;
	autoban_set_policy(&ab, 9, &p);
	is_int(autoban_count(&ab, 9, t), 0,
	       "a new threshold starts a new window");
	is_int((long long)ab.apps[0].cap, AUTOBAN_THRESHOLD_MAX,
	       "a huge threshold is clamped");
	autoban_free(&ab);
}

static void test_retry_age(void)
{
	ok(!backoff_retry_too_old(100 * S, 60 * S, 150 * S),
	   "50 s old, max 60 s: retry");
	ok(backoff_retry_too_old(100 * S, 60 * S, 161 * S),
	   "61 s old, max 60 s: too old");
	ok(!backoff_retry_too_old(100 * S, 0, 10000 * S), "max 0: no limit");
	ok(!backoff_retry_too_old(0, 60 * S, 10000 * S),
	   "unknown enqueue time: never too old");
}

int main(void)
{
	test_signals();
	test_window();
	test_critical_and_disabled();
	test_reload();
	test_retry_age();
	return done_testing();
}
