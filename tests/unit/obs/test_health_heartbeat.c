/*
 * test_health_heartbeat.c - the pure parts of obs/health.c (last error
 * per operation, Postgres down and back), obs/heartbeat.c's pool_detail
 * JSON and obs/trace.c's capped detail builder.  No loop, no database.
 */
#include <stdlib.h>
#include <string.h>

#include "obs/health.h"
#include "obs/heartbeat.h"
#include "obs/snapshot.h"
#include "obs/trace.h"
#include "tap.h"

static void test_health(void)
{
	struct health h;

	memset(&h, 0, sizeof h);
	health_error(&h, "ack failed", "boom");
	is_str(h.last_error, "ack failed: boom", "an error is noted by name");
	health_ok(&h, "claim failed");
	is_str(h.last_error, "ack failed: boom",
	       "another operation working does not clear it");
	is_str(health_last_error(&h, "heartbeat failed"), "ack failed: boom",
	       "the heartbeat writes it");
	health_ok(&h, "ack failed");
	is_str(h.last_error, "", "the same operation working clears it");
	health_db_error(&h, "ack failed", DB_ERR_NOT_SENT, "not sent");
	is_str(h.last_error, "", "a statement never sent is no error");
	health_error(&h, "heartbeat failed", "x");
	is_str(health_last_error(&h, "heartbeat failed"), "",
	       "the heartbeat's own error is over once one is written");

	health_pg_down(&h, "cannot connect: refused", 100, false);
	ok(h.pg_down, "postgres down is noted");
	like_str(h.last_error, "postgres connection down: cannot connect",
		 "and is the last error");
	health_pg_up(&h);
	ok(!h.pg_down && h.last_error[0] == '\0',
	   "back: no longer down, error cleared");
	health_pg_down(&h, "cannot connect: refused", 100, true);
	ok(!h.pg_down, "closing: only the error is remembered");
}

static void test_pool_detail(void)
{
	struct obs_pool p[2] = {
		{ 7, PUSH_PLATFORM_FCM, 3, 10, 4, 2, false },
		{ 8, PUSH_PLATFORM_APNS, 0, 0, 1, 0, true },
	};
	struct obs_snapshot s;

	memset(&s, 0, sizeof s);
	char *j = heartbeat_pool_detail(&s);
	is_str(j, "[]", "no pools: an empty array");
	free(j);
	s.pools = p;
	s.npools = 2;
	j = heartbeat_pool_detail(&s);
	is_str(j, "[{\"app_id\":7,\"platform\":\"fcm\",\"ring\":3,"
	       "\"fill_percent\":10,\"window\":4,\"in_flight\":2,"
	       "\"paused\":false},{\"app_id\":8,\"platform\":\"apns\","
	       "\"ring\":0,\"fill_percent\":0,\"window\":1,\"in_flight\":0,"
	       "\"paused\":true}]", "two pools as JSON");
	free(j);
}

static void test_trace_detail_cap(void)
{
	struct trace_json j;
	size_t n = TRACE_DETAIL_MAX + 10;
	char *big = malloc(n + 1);

	memset(big, 'x', n);
	big[n] = '\0';
	trace_json_begin(&j);
	trace_json_str(&j, "body", big);
	char *js = trace_json_end(&j);
	ok(js == NULL, "a detail over TRACE_DETAIL_MAX is left out");
	free(big);
	trace_json_begin(&j);
	trace_json_str(&j, "a", "b");
	js = trace_json_end(&j);
	is_str(js, "{\"a\":\"b\"}", "a small one is whole");
	free(js);
}

int main(void)
{
	test_health();
	test_pool_detail();
	test_trace_detail_cap();
	return done_testing();
}
