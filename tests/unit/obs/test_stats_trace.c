/*
 * test_stats_trace.c - unit tests for the pure parts of statistics and
 * tracing: the cumulative counters and their Prometheus rendering
 * (stats.c), switching stats off, the metrics endpoint's request
 * routing, address parsing and text buffer (metrics.c), and the trace
 * buffer: JSON escaping, the bounded buffer, put-back order, "acked"
 * events and the INSERT parameters (trace.c).  No loop, no network, no
 * database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "base/buf.h"
#include "obs/metrics.h"
#include "base/push.h"
#include "obs/stats.h"
#include "tap.h"
#include "obs/trace.h"

static void test_stats_totals(void)
{
	struct stats s;
	struct buf b = {0};
	struct stats_row *rows;
	size_t n;

	memset(&s, 0, sizeof s);
	stats_add(&s, 60000000, 7, PUSH_PLATFORM_FCM, 0, PUSH_OUTCOME_SENT,
		  1, 100, 15);
	stats_add(&s, 60000000, 7, PUSH_PLATFORM_FCM, 0, PUSH_OUTCOME_SENT,
		  2, 50, 400);
	stats_add(&s, 120000000, 7, PUSH_PLATFORM_FCM, 3,
		  PUSH_OUTCOME_INVALID_TOKEN, 1, 10, 5);
	stats_add(&s, 120000000, 8, PUSH_PLATFORM_APNS, 0,
		  PUSH_OUTCOME_DROPPED_BANNED, 0, 0, -1);
	is_int(s.ncum, 3, "three (app, platform, outcome) totals");
	/* A flush takes the minute rows but never the totals. */
	stats_take(&s, &rows, &n);
	is_int(n, 3, "three minute rows taken");
	free(rows);
	stats_render_metrics(&s, &b);
	like_str(b.data, "# TYPE pgpush_pushes_total counter\n",
		 "pushes_total is a counter");
	like_str(b.data, "pgpush_pushes_total{app_id=\"7\",platform=\"fcm\","
		 "outcome=\"sent\"} 2\n", "2 sent for app 7 (after a flush)");
	like_str(b.data, "pgpush_pushes_total{app_id=\"7\",platform=\"fcm\","
		 "outcome=\"invalid_token\"} 1\n", "1 invalid token");
	like_str(b.data, "pgpush_pushes_total{app_id=\"8\",platform=\"apns\","
		 "outcome=\"dropped_banned\"} 1\n", "1 dropped by a ban");
	like_str(b.data, "pgpush_attempts_total{app_id=\"7\",platform=\"fcm\","
		 "outcome=\"sent\"} 3\n", "3 attempts for the sent ones");
	like_str(b.data, "pgpush_bytes_sent_total{app_id=\"7\","
		 "platform=\"fcm\",outcome=\"sent\"} 150\n", "150 bytes");
	/* Latencies 5, 15, 400: cumulative buckets. */
	like_str(b.data, "pgpush_latency_ms_bucket{le=\"5\"} 1\n",
		 "le=5: one");
	like_str(b.data, "pgpush_latency_ms_bucket{le=\"20\"} 2\n",
		 "le=20: two");
	like_str(b.data, "pgpush_latency_ms_bucket{le=\"500\"} 3\n",
		 "le=500: three");
	like_str(b.data, "pgpush_latency_ms_bucket{le=\"+Inf\"} 3\n",
		 "+Inf: all three");
	like_str(b.data, "pgpush_latency_ms_sum 420.000\n", "sum 420 ms");
	like_str(b.data, "pgpush_latency_ms_count 3\n", "count 3");
	buf_free(&b);
	stats_free(&s);

	memset(&s, 0, sizeof s);
	s.off = true;
	stats_add(&s, 60000000, 7, PUSH_PLATFORM_FCM, 0, PUSH_OUTCOME_SENT,
		  1, 100, 15);
	is_int(s.len + s.ncum + s.totals[PUSH_OUTCOME_SENT], 0,
	       "stats off: nothing counted");
	stats_free(&s);
}

static void test_metrics_route(void)
{
	int status = 0, head = 0;
	const char *full = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

	is_int(metrics_route(full, 10, &status, &head), 1,
	       "a partial head needs more bytes");
	is_int(metrics_route(full, strlen(full), &status, &head), 0,
	       "a whole head is routed");
	is_int(status, 200, "GET /metrics: 200");
	is_int(head, 0, "GET is not HEAD");
	metrics_route("HEAD /metrics HTTP/1.0\r\n\r\n", 26, &status, &head);
	ok(status == 200 && head == 1, "HEAD /metrics: 200, head only");
	metrics_route("GET /metrics?x=1 HTTP/1.1\r\n\r\n", 30, &status,
		      &head);
	is_int(status, 200, "a query string is fine");
	metrics_route("GET / HTTP/1.1\r\n\r\n", 18, &status, &head);
	is_int(status, 404, "GET /: 404");
	metrics_route("GET /metricsx HTTP/1.1\r\n\r\n", 26, &status, &head);
	is_int(status, 404, "GET /metricsx: 404");
	metrics_route("POST /metrics HTTP/1.1\r\n\r\n", 27, &status, &head);
	is_int(status, 405, "POST: 405");
	metrics_route("garbage\r\n\r\n", 11, &status, &head);
	is_int(status, 400, "no request line: 400");
	metrics_route("GET /metrics FTP/1.1\r\n\r\n", 24, &status, &head);
	is_int(status, 400, "not HTTP/1.x: 400");
	is_int(metrics_route("GET /metrics HTTP/1.1\n\n", 23, &status, &head),
	       0, "bare LF line ends are accepted");
	is_int(status, 200, "and routed");
}

static void test_metrics_listen(void)
{
	struct sockaddr_storage ss;

	is_int(metrics_parse_listen("127.0.0.1:9464", &ss), 0, "IPv4:port");
	is_int(ss.ss_family, AF_INET, "an IPv4 address");
	is_int(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9464, "port");
	is_int(metrics_parse_listen("[::1]:9464", &ss), 0, "[IPv6]:port");
	is_int(ss.ss_family, AF_INET6, "an IPv6 address");
	is_int(metrics_parse_listen("localhost:9464", &ss), -EINVAL,
	       "a host name is refused (no DNS on the loop)");
	is_int(metrics_parse_listen("127.0.0.1", &ss), -EINVAL, "no port");
	is_int(metrics_parse_listen("127.0.0.1:", &ss), -EINVAL,
	       "empty port");
	is_int(metrics_parse_listen("127.0.0.1:70000", &ss), -EINVAL,
	       "port out of range");
	is_int(metrics_parse_listen(":9464", &ss), -EINVAL, "no host");
	is_int(metrics_parse_listen("", &ss), -EINVAL, "empty");
}

static void test_metrics_buf(void)
{
	struct buf b = {0};
	char big[10000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	metrics_printf(&b, "a%d", 1);
	metrics_printf(&b, "%s", big);
	is_int(b.len, 2 + sizeof big - 1, "the buffer grows as needed");
	ok(b.data[b.len] == '\0', "and stays NUL-terminated");
	buf_free(&b);
	metrics_label_value(&b, "a\"b\\c\nd");
	is_str(b.data, "a\\\"b\\\\c\\nd", "label values are escaped");
	buf_free(&b);
}

static void test_trace(void)
{
	struct trace t;
	struct trace_json j;
	struct push_item it;
	struct trace_ev *ev;
	size_t n;
	char *params[TRACE_NPARAMS];

	memset(&t, 0, sizeof t);
	memset(&it, 0, sizeof it);
	it.push_id = 42;
	it.queue_id = 1001;

	trace_json_begin(&j);
	trace_json_str(&j, "s", "q\"uo\\te\n\x01");
	trace_json_int(&j, "n", -5);
	trace_json_bool(&j, "b", true);
	trace_json_str(&j, "null", NULL);
	trace_json_raw(&j, "r", "[1,2]");
	char *js = trace_json_end(&j);
	is_str(js, "{\"s\":\"q\\\"uo\\\\te\\u000a\\u0001\",\"n\":-5,\"b\":true,"
	       "\"null\":null,\"r\":[1,2]}", "JSON details are escaped");
	free(js);
	trace_json_begin(&j);
	trace_json_escape(&j, "ab\xc3\xa9", 3);    /* cut inside é */
	js = trace_json_end(&j);
	is_str(js, "{ab}", "an excerpt never ends in a cut UTF-8 sequence");
	free(js);

	{
		const char *h[] = {
			"Authorization: Bearer ya29.secret-access-token",
			"apns-topic: com.example.app",
			"Content-Type: application/json",
			"X-WNS-Type: wns/toast",
			"X-Api-Key: k3y",
			"no colon here",
			"apns-push-type:alert",
		};
		trace_json_begin(&j);
		trace_json_headers(&j, "headers", h, sizeof h / sizeof *h);
		js = trace_json_end(&j);
		is_str(js, "{\"headers\":{\"authorization\":\"[redacted]\","
		       "\"apns-topic\":\"com.example.app\","
		       "\"content-type\":\"application/json\","
		       "\"x-wns-type\":\"wns/toast\","
		       "\"x-api-key\":\"[redacted]\","
		       "\"apns-push-type\":\"alert\"}}",
		       "headers traced without credentials");
		ok(strstr(js, "ya29") == NULL && strstr(js, "k3y") == NULL,
		   "no secret value in the JSON");
		free(js);
		ok(trace_header_secret("x-goog-api-key", 14) &&
		   trace_header_secret("Cookie", 6) &&
		   !trace_header_secret("apns-id", 7),
		   "secret header names recognised by name");
	}

	trace_event(&t, 1000, &it, "claimed", "{\"by\":\"me\"}");
	trace_event(&t, 2000, &it, "pool", NULL);
	trace_take(&t, &ev, &n);
	is_int(n, 2, "two events taken");
	trace_event(&t, 3000, &it, "classified", "{}");
	trace_put_back(&t, ev, n);
	is_int(t.len, 3, "put back after a failed write: three");
	ok(strcmp(t.ev[0].step, "claimed") == 0 &&
	   strcmp(t.ev[1].step, "pool") == 0 &&
	   strcmp(t.ev[2].step, "classified") == 0,
	   "in their original order");
	trace_build_params(t.ev, t.len, "host:1:2", params);
	is_str(params[0], "{1000,2000,3000}", "$1: times (µs)");
	is_str(params[1], "{42,42,42}", "$2: push ids");
	is_str(params[2], "{1001,1001,1001}", "$3: queue ids");
	is_str(params[3], "host:1:2", "$4: the dispatcher");
	is_str(params[4], "{\"claimed\",\"pool\",\"classified\"}",
	       "$5: steps");
	like_str(params[5], "NULL", "$6: a detail-less event is NULL");
	like_str(params[5], "\\\"by\\\"", "$6: details are array-quoted");
	trace_free_params(params);

	/* acked: only for the ids the written batch held. */
	trace_ack_wait(&t, &it, PUSH_OUTCOME_SENT);
	int64_t other[] = { 5, 6 };
	trace_ack_done(&t, other, 2);
	is_int(t.len, 3, "no acked event for another batch");
	is_int(t.nwait, 1, "still waiting");
	int64_t mine[] = { 5, 1001 };
	trace_ack_done(&t, mine, 2);
	is_int(t.nwait, 0, "no longer waiting");
	is_str(t.ev[3].step, "acked", "acked event recorded");
	is_str(t.ev[3].detail, "{\"outcome\":\"sent\"}", "with the outcome");

	/* Bounded: beyond TRACE_MAX_EVENTS events are dropped, counted. */
	for (int i = 0; i < TRACE_MAX_EVENTS + 10; i++)
		trace_event(&t, 1, &it, "x", NULL);
	is_int(t.len, TRACE_MAX_EVENTS, "the buffer is bounded");
	is_int(t.dropped, 14, "the rest are counted as dropped");
	trace_free(&t);
	is_int(t.len, 0, "freed");
}

int main(void)
{
	test_stats_totals();
	test_metrics_route();
	test_metrics_listen();
	test_metrics_buf();
	test_trace();
	return done_testing();
}
