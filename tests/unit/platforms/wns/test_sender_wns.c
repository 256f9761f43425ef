/*
 * test_sender_wns.c - table tests of the WNS sender's pure halves: the
 * neutral payload -> parts mapping (which parts, exact XML and headers,
 * escaping), the classification of every row of PROTOCOLS.md 3.4, and
 * parts_combine() / the parts memo.  Also sender_for().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/parts.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/wns/sender_wns.h"
#include "platforms/xml.h"
#include "tap.h"

#define S 1000000LL
#define NOW (1800000000LL * S)

static struct push_item item(const char *payload, enum push_priority prio,
			     const char *collapse, int64_t expires)
{
	struct push_item it;

	memset(&it, 0, sizeof it);
	it.queue_id = 1;
	it.token = (char *)"https://db5.notify.windows.com/?token=x";
	it.payload = (char *)payload;
	it.priority = prio;
	it.collapse_key = (char *)collapse;
	it.expires_at_us = expires;
	return it;
}

/* "name:h1|h2|...": the part's headers after type and content type. */
static void part_summary(const struct sender_wns_part *p, char *out,
			 size_t n)
{
	snprintf(out, n, "%s:", p->name);
	for (size_t i = 0; p->headers[i] != NULL; i++)
		snprintf(out + strlen(out), n - strlen(out), "%s%s",
			 i ? "|" : "", p->headers[i]);
}

struct map_case {
	const char *name;
	const char *payload;
	enum push_priority prio;
	const char *collapse;
	int64_t expires;
	const char *parts[PARTS_MAX];     /* part_summary of each part */
	const char *bodies[PARTS_MAX];
	const char *fail;                 /* expected reason if refused */
};

static const struct map_case cases[] = {
	{ "title and body: one toast", "{\"title\":\"Hi\",\"body\":\"There\"}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  { "toast:X-WNS-Type: wns/toast|Content-Type: text/xml" },
	  { "<toast><visual><binding template=\"ToastGeneric\"><text>Hi</text>"
	    "<text>There</text></binding></visual></toast>" }, NULL },
	{ "escaping and UTF-8",
	  "{\"title\":\"<b>&\\\"'\",\"body\":\"日本 Grüße\"}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  { "toast:X-WNS-Type: wns/toast|Content-Type: text/xml" },
	  { "<toast><visual><binding template=\"ToastGeneric\"><text>"
	    "&lt;b&gt;&amp;&quot;&apos;</text><text>日本 Grüße</text>"
	    "</binding></visual></toast>" }, NULL },
	{ "toast + badge + tile, high priority, ttl, tag from collapse key",
	  "{\"title\":\"T\",\"badge\":5,\"image\":\"https://i/x.png\","
	  "\"sound\":\"ms-winsoundevent:Notification.IM\","
	  "\"data\":{\"a\":1},\"wns\":{\"tile\":true,"
	  "\"cache_policy\":\"cache\",\"request_for_status\":true}}",
	  PUSH_PRIORITY_HIGH, "abc123", NOW + 90 * S,
	  { "toast:X-WNS-Type: wns/toast|Content-Type: text/xml|X-WNS-TTL: 90"
	    "|X-WNS-PRIORITY: 1|X-WNS-RequestForStatus: true",
	    "badge:X-WNS-Type: wns/badge|Content-Type: text/xml|X-WNS-TTL: 90"
	    "|X-WNS-PRIORITY: 1|X-WNS-RequestForStatus: true"
	    "|X-WNS-Cache-Policy: cache",
	    "tile:X-WNS-Type: wns/tile|Content-Type: text/xml|X-WNS-TTL: 90"
	    "|X-WNS-PRIORITY: 1|X-WNS-RequestForStatus: true"
	    "|X-WNS-Cache-Policy: cache|X-WNS-Tag: abc123" },
	  { "<toast launch=\"{&quot;a&quot;:1}\"><visual><binding template="
	    "\"ToastGeneric\"><text>T</text><image src=\"https://i/x.png\"/>"
	    "</binding></visual><audio src=\"ms-winsoundevent:Notification."
	    "IM\"/></toast>",
	    "<badge value=\"5\"/>",
	    "<tile><visual><binding template=\"TileMedium\"><text>T</text>"
	    "</binding><binding template=\"TileWide\"><text>T</text></binding>"
	    "</visual></tile>" }, NULL },
	{ "data only: raw, low priority",
	  "{\"data\":{\"k\":\"v/w\"}}", PUSH_PRIORITY_LOW, "has space", 0,
	  { "raw:X-WNS-Type: wns/raw|Content-Type: application/octet-stream"
	    "|X-WNS-PRIORITY: 3" },
	  { "{\"k\":\"v/w\"}" }, NULL },
	{ "overrides: toast XML as is, badge glyph, raw string, no default "
	  "toast", "{\"title\":\"ignored\",\"wns\":{\"toast\":\"<toast>"
	  "<visual/></toast>\",\"badge\":\"alert\",\"raw\":\"r\","
	  "\"launch\":\"x\"}}", PUSH_PRIORITY_NORMAL, NULL, 0,
	  { "toast:X-WNS-Type: wns/toast|Content-Type: text/xml",
	    "badge:X-WNS-Type: wns/badge|Content-Type: text/xml",
	    "raw:X-WNS-Type: wns/raw|Content-Type: application/octet-stream" },
	  { "<toast><visual/></toast>", "<badge value=\"alert\"/>", "r" },
	  NULL },
	{ "wns.toast false with a badge: only the badge",
	  "{\"title\":\"t\",\"badge\":0,\"wns\":{\"toast\":false}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0,
	  { "badge:X-WNS-Type: wns/badge|Content-Type: text/xml" },
	  { "<badge value=\"0\"/>" }, NULL },
	{ "nothing to send", "{\"sound\":\"x\"}", PUSH_PRIORITY_NORMAL, NULL,
	  0, { NULL }, { NULL }, "nothing to send to WNS" },
	{ "bad tag", "{\"title\":\"t\",\"wns\":{\"tag\":\"no spaces!\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, { NULL }, { NULL },
	  "wns.tag must be 1 to 16 letters or digits" },
	{ "bad cache policy",
	  "{\"title\":\"t\",\"wns\":{\"cache_policy\":\"yes\"}}",
	  PUSH_PRIORITY_NORMAL, NULL, 0, { NULL }, { NULL },
	  "wns.cache_policy" },
	{ "not an object", "[1]", PUSH_PRIORITY_NORMAL, NULL, 0, { NULL },
	  { NULL }, "payload is not a JSON object" },
};

struct cls_case {
	const char *name;
	long status;
	const char *wns_status, *desc, *retry_after, *error;
	bool retry_ambiguous;
	enum push_outcome outcome;
	const char *reason;
	int64_t retry_in_us;      /* -1: not checked */
	bool reauth, auth_failure, throttled;
	enum http_err err;        /* status 0: its kind */
};

static const struct cls_case ccases[] = {
	{ "200 received", 200, "received", NULL, NULL, NULL, true,
	  PUSH_OUTCOME_SENT, "received", -1, 0, 0, 0, 0 },
	{ "200 older header name absent", 200, NULL, NULL, NULL, NULL, true,
	  PUSH_OUTCOME_SENT, "received", -1, 0, 0, 0, 0 },
	{ "200 dropped: accepted, not retried", 200, "dropped", NULL, NULL,
	  NULL, true, PUSH_OUTCOME_SENT, "dropped", -1, 0, 0, 0, 0 },
	{ "200 channelthrottled", 200, "channelthrottled", NULL, NULL, NULL,
	  true, PUSH_OUTCOME_RETRY, "channelthrottled", 60 * S, 0, 0, 1, 0 },
	{ "400", 400, NULL, "bad", NULL, NULL, true, PUSH_OUTCOME_FAILED,
	  "bad request", -1, 0, 0, 0, 0 },
	{ "401: reauth", 401, NULL, NULL, NULL, NULL, true,
	  PUSH_OUTCOME_FAILED, "unauthorized", -1, 1, 1, 0, 0 },
	{ "403", 403, NULL, NULL, NULL, NULL, true, PUSH_OUTCOME_FAILED,
	  "forbidden (credential not for this channel)", -1, 0, 1, 0, 0 },
	{ "404", 404, NULL, NULL, NULL, NULL, true,
	  PUSH_OUTCOME_INVALID_TOKEN, "channel not found", -1, 0, 0, 0, 0 },
	{ "405", 405, NULL, NULL, NULL, NULL, true, PUSH_OUTCOME_FAILED,
	  "method not allowed", -1, 0, 0, 0, 0 },
	{ "406 + Retry-After 120", 406, NULL, NULL, "120", NULL, true,
	  PUSH_OUTCOME_RETRY, "throttled", 120 * S, 0, 0, 1, 0 },
	{ "406 without Retry-After: a minute", 406, NULL, NULL, NULL, NULL,
	  true, PUSH_OUTCOME_RETRY, "throttled", 60 * S, 0, 0, 1, 0 },
	{ "410", 410, NULL, "The channel expired.", NULL, NULL, true,
	  PUSH_OUTCOME_INVALID_TOKEN, "channel expired", -1, 0, 0, 0, 0 },
	{ "410 Domain Blocked", 410, NULL, "Domain Blocked", NULL, NULL,
	  true, PUSH_OUTCOME_FAILED, "domain blocked", -1, 0, 1, 0, 0 },
	{ "413", 413, NULL, NULL, NULL, NULL, true, PUSH_OUTCOME_FAILED,
	  "payload too large", -1, 0, 0, 0, 0 },
	{ "500: backoff", 500, NULL, NULL, NULL, NULL, false,
	  PUSH_OUTCOME_RETRY, "internal error", 2 * S, 0, 0, 0, 0 },
	{ "503 + Retry-After 30", 503, NULL, NULL, "30", NULL, false,
	  PUSH_OUTCOME_RETRY, "unavailable", 30 * S, 0, 0, 0, 0 },
	{ "502 ambiguous, retry_ambiguous off", 502, NULL, NULL, NULL, NULL,
	  false, PUSH_OUTCOME_UNCERTAIN, "HTTP 502", -1, 0, 0, 0, 0 },
	{ "502 ambiguous, retry_ambiguous on", 502, NULL, NULL, NULL, NULL,
	  true, PUSH_OUTCOME_RETRY, "HTTP 502", 2 * S, 0, 0, 0, 0 },
	{ "timeout after sending, off", 0, NULL, NULL, NULL,
	  "Operation timed out after 30000 milliseconds", false,
	  PUSH_OUTCOME_UNCERTAIN, "transport: Operation timed out after "
	  "30000 milliseconds", -1, 0, 0, 0, HTTP_ERR_NO_ANSWER },
	{ "connect failure: safe to retry", 0, NULL, NULL, NULL,
	  "Couldn't connect to server", false, PUSH_OUTCOME_RETRY,
	  "transport: Couldn't connect to server", 2 * S, 0, 0, 0,
	  HTTP_ERR_NOT_SENT },
	/* The kind decides, whatever the text says. */
	{ "request timer: no answer after it was sent, off: uncertain", 0,
	  NULL, NULL, NULL, "no answer 1000 ms after the request was sent",
	  false, PUSH_OUTCOME_UNCERTAIN,
	  "transport: no answer 1000 ms after the request was sent", -1, 0,
	  0, 0, HTTP_ERR_NO_ANSWER },
	{ "request timer: no answer, on: retried", 0, NULL, NULL, NULL,
	  "no answer 1000 ms after the request was sent", true,
	  PUSH_OUTCOME_RETRY,
	  "transport: no answer 1000 ms after the request was sent", 2 * S,
	  0, 0, 0, HTTP_ERR_NO_ANSWER },
	{ "connection reset while waiting, off: uncertain", 0, NULL, NULL,
	  NULL, "Failure when receiving data from the peer", false,
	  PUSH_OUTCOME_UNCERTAIN,
	  "transport: Failure when receiving data from the peer", -1, 0, 0, 0,
	  HTTP_ERR_NO_ANSWER },
	{ "an answer over the body cap, off: uncertain", 0, NULL, NULL, NULL,
	  "response body over 65536 bytes", false, PUSH_OUTCOME_UNCERTAIN,
	  "transport: response body over 65536 bytes", -1, 0, 0, 0,
	  HTTP_ERR_BAD_ANSWER },
	{ "a timeout before the request went out, off: retry", 0, NULL, NULL,
	  NULL, "Operation timed out after 5000 milliseconds", false,
	  PUSH_OUTCOME_RETRY, "transport: Operation timed out after 5000 "
	  "milliseconds", 2 * S, 0, 0, 0, HTTP_ERR_NOT_SENT },
	{ "cancelled, off: retry", 0, NULL, NULL, NULL, "cancelled", false,
	  PUSH_OUTCOME_RETRY, "transport: cancelled", 2 * S, 0, 0, 0,
	  HTTP_ERR_CANCELLED },
	{ "status 0 of no known kind, off: uncertain (the worst case)", 0,
	  NULL, NULL, NULL, "Couldn't connect to server", false,
	  PUSH_OUTCOME_UNCERTAIN, "transport: Couldn't connect to server", -1,
	  0, 0, 0, HTTP_ERR_NONE },
};

int main(void)
{
	struct push_result res;
	size_t i, j;
	char buf[512];

	plan(156);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct map_case *c = &cases[i];
		struct push_item it = item(c->payload, c->prio, c->collapse,
					   c->expires);
		struct sender_wns_request r;
		size_t want = 0;
		int rc = sender_wns_build(&it, NOW, &r, &res);

		while (want < PARTS_MAX && c->parts[want] != NULL)
			want++;
		if (c->fail != NULL) {
			is_int(rc, -22, "%s: refused", c->name);
			is_int(res.outcome, PUSH_OUTCOME_FAILED, "  failed");
			like_str(res.reason, c->fail, "  reason");
			continue;
		}
		is_int(rc, 0, "%s: built", c->name);
		is_int((long long)r.n, (long long)want, "  %zu part(s)", want);
		for (j = 0; j < r.n && j < want; j++) {
			part_summary(&r.parts[j], buf, sizeof buf);
			is_str(buf, c->parts[j], "  part %zu headers", j);
			is_str(r.parts[j].body, c->bodies[j], "  part %zu body",
			       j);
		}
		sender_wns_request_free(&r);
	}
	{
		struct push_item it = item("{\"title\":\"t\"}",
					   PUSH_PRIORITY_NORMAL, NULL,
					   NOW - S);
		struct sender_wns_request r;

		is_int(sender_wns_build(&it, NOW, &r, &res), -22,
		       "expired push: not built");
		is_int(res.outcome, PUSH_OUTCOME_EXPIRED, "  expired");
	}
	{
		char big[6000], pl[6100];
		struct push_item it;
		struct sender_wns_request r;

		memset(big, 'x', 5100);
		big[5100] = '\0';
		snprintf(pl, sizeof pl, "{\"wns\":{\"raw\":\"%s\"}}", big);
		it = item(pl, PUSH_PRIORITY_NORMAL, NULL, 0);
		is_int(sender_wns_build(&it, NOW, &r, &res), -22,
		       "a 5100-byte part: refused before sending");
		like_str(res.reason, "over 5000 bytes", "  says why");
	}

	for (i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
		const struct cls_case *c = &ccases[i];
		struct sender_wns_answer a = { c->status, c->wns_status,
					       c->desc, c->retry_after,
					       "abc", c->error, c->err };

		sender_wns_classify(&a, 1, 8, c->retry_ambiguous, NOW, 2 * S,
				    &res);
		is_int(res.outcome, c->outcome, "%s: %s", c->name,
		       push_outcome_name(c->outcome));
		is_str(res.reason, c->reason, "  reason");
		if (c->retry_in_us >= 0)
			is_int(res.retry_at_us - NOW, c->retry_in_us,
			       "  retry_at");
		ok(res.reauth == c->reauth && res.auth_failure ==
		   c->auth_failure && res.throttled == c->throttled,
		   "  flags reauth=%d auth_failure=%d throttled=%d",
		   res.reauth, res.auth_failure, res.throttled);
	}
	{
		struct sender_wns_answer a = { 500, NULL, NULL, NULL, NULL,
					       NULL, HTTP_ERR_NONE };

		sender_wns_classify(&a, 8, 8, true, NOW, S, &res);
		is_int(res.outcome, PUSH_OUTCOME_FAILED,
		       "500 on the last attempt: failed");
	}

	/* parts_combine */
	{
		struct part_result p[3];

		memset(p, 0, sizeof p);
		p[0].name = "toast";
		push_result_set(&p[0].res, PUSH_OUTCOME_SENT, "received");
		p[0].res.http_status = 200;
		snprintf(p[0].res.message_id, sizeof p[0].res.message_id, "m1");
		p[1].name = "badge";
		push_result_set(&p[1].res, PUSH_OUTCOME_RETRY, "unavailable");
		p[1].res.http_status = 503;
		p[1].res.retry_at_us = NOW + 5 * S;
		p[2].name = "tile";
		p[2].skipped = true;
		parts_combine(p, 3, &res);
		is_int(res.outcome, PUSH_OUTCOME_RETRY,
		       "combine: one part to retry -> retry");
		is_int(res.http_status, 503, "  status of that part");
		is_str(res.reason, "toast=200 received; badge=503 unavailable; "
		       "tile=accepted earlier", "  every part in the reason");
		is_str(res.message_id, "toast=m1", "  message ids");
		is_int(res.retry_at_us, NOW + 5 * S, "  retry_at");
		push_result_set(&p[1].res, PUSH_OUTCOME_INVALID_TOKEN,
				"channel expired");
		p[1].res.http_status = 410;
		p[2].skipped = false;
		push_result_set(&p[2].res, PUSH_OUTCOME_FAILED, "bad request");
		p[2].res.http_status = 400;
		parts_combine(p, 3, &res);
		is_int(res.outcome, PUSH_OUTCOME_INVALID_TOKEN,
		       "combine: a dead channel wins over a failure");
		is_int(res.retry_at_us, 0, "  no retry_at");
		p[1] = p[0];
		p[2].skipped = true;
		p[2].was_uncertain = true;
		parts_combine(p, 3, &res);
		is_int(res.outcome, PUSH_OUTCOME_UNCERTAIN,
		       "combine: sent + uncertain earlier -> uncertain");
	}
	/* the memo */
	{
		struct parts_memo *m = parts_memo_new(2);
		unsigned a = 0, b = 0;

		parts_memo_put(m, "1", 3, 0, NOW + S);
		parts_memo_put(m, "2", 1, 2, NOW + S);
		ok(parts_memo_get(m, "1", NOW, &a, &b, NULL) && a == 3 &&
		   b == 0, "memo: get what was put");
		parts_memo_put(m, "3", 0, 0, NOW + S);
		ok(!parts_memo_get(m, "1", NOW, NULL, NULL, NULL),
		   "memo: full, the oldest went");
		ok(!parts_memo_get(m, "2", NOW + 2 * S, NULL, NULL, NULL),
		   "memo: expired entries are gone");
		is_int((long long)parts_memo_count(m), 1, "  and removed");
		parts_memo_free(m);
	}
	{
		/* A toast past the XML writer's cap: FAILED as too large. */
		size_t n = XML_MAX_LEN;
		char *pl = malloc(n + 32);
		struct sender_wns_request r;
		struct push_item it;

		strcpy(pl, "{\"title\":\"");
		memset(pl + 10, 'x', n);
		strcpy(pl + 10 + n, "\"}");
		it = item(pl, PUSH_PRIORITY_NORMAL, NULL, 0);
		ok(sender_wns_build(&it, NOW, &r, &res) < 0,
		   "a toast past the XML cap is refused");
		is_str(res.reason, "wns toast payload over 5000 bytes",
		       "  as over the limit");
		free(pl);
	}
	is_ptr(sender_for(PUSH_PLATFORM_WNS), &sender_wns_ops,
	       "sender_for(wns)");
	is_str(sender_wns_ops.name, "wns", "its name");
	return done_testing();
}
