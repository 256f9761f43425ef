/*
 * test_sender_mpns.c - table tests of the MPNS sender's pure halves: the
 * neutral payload -> toast / tile / raw mapping (exact XML and headers,
 * X-NotificationClass by priority, X-MessageID UUIDs, escaping), and the
 * classification of every documented combination of PROTOCOLS.md 4.3,
 * with the ambiguous answers under both retry_ambiguous settings.  Also
 * sender_for().
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/mpns/sender_mpns.h"
#include "tap.h"

#define S 1000000LL
#define NOW (1800000000LL * S)
#define DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?><wp:Notification " \
	     "xmlns:wp=\"WPNotification\">"

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
		    : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* "name:h1|h2" without the X-MessageID header (random). */
static void summary(const struct sender_mpns_part *p, char *out, size_t n)
{
	snprintf(out, n, "%s:", p->name);
	for (size_t i = 0; p->headers[i] != NULL; i++)
		if (strncmp(p->headers[i], "X-MessageID:", 12) != 0)
			snprintf(out + strlen(out), n - strlen(out), "%s%s",
				 i ? "|" : "", p->headers[i]);
}

struct map_case {
	const char *name;
	const char *payload;
	enum push_priority prio;
	const char *parts[PARTS_MAX];
	const char *bodies[PARTS_MAX];
	const char *fail;
};

static const struct map_case cases[] = {
	{ "text and badge: a toast and a tile (normal: 450 s classes)",
	  "{\"title\":\"T & <U>\",\"body\":\"Grüße \\\"x\\\"\",\"badge\":4}",
	  PUSH_PRIORITY_NORMAL,
	  { "toast:Content-Type: text/xml|X-WindowsPhone-Target: toast"
	    "|X-NotificationClass: 12",
	    "tile:Content-Type: text/xml|X-WindowsPhone-Target: token"
	    "|X-NotificationClass: 11" },
	  { DECL "<wp:Toast><wp:Text1>T &amp; &lt;U&gt;</wp:Text1><wp:Text2>"
	    "Grüße &quot;x&quot;</wp:Text2></wp:Toast></wp:Notification>",
	    DECL "<wp:Tile><wp:Count>4</wp:Count></wp:Tile>"
	    "</wp:Notification>" }, NULL },
	{ "high priority toast with a param: immediate (2)",
	  "{\"body\":\"b\",\"mpns\":{\"param\":\"/Page.xaml?a=1&b=2\"}}",
	  PUSH_PRIORITY_HIGH,
	  { "toast:Content-Type: text/xml|X-WindowsPhone-Target: toast"
	    "|X-NotificationClass: 2" },
	  { DECL "<wp:Toast><wp:Text2>b</wp:Text2><wp:Param>/Page.xaml?a=1"
	    "&amp;b=2</wp:Param></wp:Toast></wp:Notification>" }, NULL },
	{ "tile override, low priority: 900 s (21)",
	  "{\"mpns\":{\"tile\":{\"id\":\"/Main.xaml\",\"title\":\"Ti\","
	  "\"count\":0,\"back_content\":\"bc\",\"background_image\":"
	  "\"bg.png\"}}}", PUSH_PRIORITY_LOW,
	  { "tile:Content-Type: text/xml|X-WindowsPhone-Target: token"
	    "|X-NotificationClass: 21" },
	  { DECL "<wp:Tile Id=\"/Main.xaml\"><wp:BackgroundImage>bg.png"
	    "</wp:BackgroundImage><wp:Count>0</wp:Count><wp:Title>Ti"
	    "</wp:Title><wp:BackContent>bc</wp:BackContent></wp:Tile>"
	    "</wp:Notification>" }, NULL },
	{ "data only: raw, no target header (13)",
	  "{\"data\":{\"k\":[1,2]}}", PUSH_PRIORITY_NORMAL,
	  { "raw:Content-Type: application/octet-stream"
	    "|X-NotificationClass: 13" },
	  { "{\"k\":[1,2]}" }, NULL },
	{ "mpns.toast false, mpns.tile false, data: raw only",
	  "{\"title\":\"t\",\"badge\":1,\"data\":{},\"mpns\":{\"toast\":false,"
	  "\"tile\":false,\"raw\":\"hello\"}}", PUSH_PRIORITY_HIGH,
	  { "raw:Content-Type: application/octet-stream"
	    "|X-NotificationClass: 3" }, { "hello" }, NULL },
	{ "nothing to send", "{\"sound\":\"s\"}", PUSH_PRIORITY_NORMAL,
	  { NULL }, { NULL }, "nothing to send to MPNS" },
	{ "override not an object", "{\"title\":\"t\",\"mpns\":1}",
	  PUSH_PRIORITY_NORMAL, { NULL }, { NULL },
	  "the mpns override is not an object" },
};

struct cls_case {
	const char *name;
	long status;
	const char *n, *sub, *dev, *ct, *body, *error;
	bool retry_ambiguous;
	enum push_outcome outcome;
	const char *reason;
	int64_t min_retry_us, max_retry_us;  /* -1: not checked */
	bool auth_failure, throttled;
	enum http_err err;                   /* status 0: its kind */
};

static const struct cls_case ccases[] = {
	{ "200 Received/Connected", 200, "Received", "Active", "Connected",
	  NULL, "", NULL, false, PUSH_OUTCOME_SENT,
	  "Received/Connected/Active", -1, -1, 0, 0, 0 },
	{ "200 Received/TempDisconnected", 200, "Received", "Active",
	  "TempDisconnected", NULL, "", NULL, false, PUSH_OUTCOME_SENT,
	  "Received/TempDisconnected/Active", -1, -1, 0, 0, 0 },
	{ "200 QueueFull: minutes", 200, "QueueFull", "Active", "Connected",
	  NULL, "", NULL, false, PUSH_OUTCOME_RETRY,
	  "QueueFull/Connected/Active", 60 * S, 62 * S, 0, 1, 0 },
	{ "200 Suppressed: accepted, no retry", 200, "Suppressed", "Active",
	  "Connected", NULL, "", NULL, false, PUSH_OUTCOME_SENT,
	  "Suppressed/Connected/Active", -1, -1, 0, 0, 0 },
	{ "400", 400, NULL, NULL, NULL, NULL, "", NULL, false,
	  PUSH_OUTCOME_FAILED, "HTTP 400", -1, -1, 0, 0, 0 },
	{ "401", 401, NULL, NULL, NULL, NULL, "", NULL, false,
	  PUSH_OUTCOME_FAILED, "HTTP 401", -1, -1, 1, 0, 0 },
	{ "404 Dropped/Expired", 404, "Dropped", "Expired", "Connected",
	  NULL, "", NULL, false, PUSH_OUTCOME_INVALID_TOKEN,
	  "Dropped/Connected/Expired", -1, -1, 0, 0, 0 },
	{ "405", 405, NULL, NULL, NULL, NULL, "", NULL, false,
	  PUSH_OUTCOME_FAILED, "HTTP 405", -1, -1, 0, 0, 0 },
	{ "406 Dropped/Active: an hour", 406, "Dropped", "Active",
	  "Connected", NULL, "", NULL, false, PUSH_OUTCOME_RETRY,
	  "Dropped/Connected/Active", 3600 * S, 3600 * S, 0, 1, 0 },
	{ "412 Dropped/Inactive: an hour", 412, "Dropped", NULL, "Inactive",
	  NULL, "", NULL, false, PUSH_OUTCOME_RETRY, "Dropped/Inactive/-",
	  3600 * S, 3600 * S, 0, 1, 0 },
	{ "503: minutes", 503, NULL, NULL, NULL, NULL, "", NULL, false,
	  PUSH_OUTCOME_RETRY, "HTTP 503", 60 * S, 62 * S, 0, 0, 0 },
	{ "200 HTML page, off: uncertain", 200, "Received", "Active",
	  "Connected", "text/html", "<html>oops</html>", NULL, false,
	  PUSH_OUTCOME_UNCERTAIN, "HTML page, no MPNS status", -1, -1, 0, 0,
	  0 },
	{ "200 HTML body without a content type, on: retry", 200, NULL,
	  NULL, NULL, NULL, "<!DOCTYPE html><p>x", NULL, true,
	  PUSH_OUTCOME_RETRY, "HTML page, no MPNS status", 60 * S, 62 * S,
	  0, 0, 0 },
	{ "200 without status headers, off: uncertain", 200, NULL, NULL,
	  NULL, NULL, "", NULL, false, PUSH_OUTCOME_UNCERTAIN,
	  "no MPNS status", -1, -1, 0, 0, 0 },
	{ "500, off: uncertain", 500, NULL, NULL, NULL, NULL, "", NULL,
	  false, PUSH_OUTCOME_UNCERTAIN, "HTTP 500", -1, -1, 0, 0, 0 },
	{ "504, on: retry", 504, NULL, NULL, NULL, NULL, "", NULL, true,
	  PUSH_OUTCOME_RETRY, "HTTP 504", 60 * S, 62 * S, 0, 0, 0 },
	{ "read timeout, off: uncertain", 0, NULL, NULL, NULL, NULL, NULL,
	  "Operation timed out after 30001 milliseconds with 0 bytes "
	  "received", false, PUSH_OUTCOME_UNCERTAIN,
	  "transport: Operation timed out after 30001 milliseconds with 0 "
	  "bytes re", -1, -1, 0, 0, HTTP_ERR_NO_ANSWER },
	{ "cannot connect, off: retry (nothing was sent)", 0, NULL, NULL,
	  NULL, NULL, NULL, "Couldn't connect to server", false,
	  PUSH_OUTCOME_RETRY, "transport: Couldn't connect to server",
	  2 * S, 2 * S, 0, 0, HTTP_ERR_NOT_SENT },
	/* The kind decides, whatever the text says. */
	{ "request timer: no answer after it was sent, off: uncertain", 0,
	  NULL, NULL, NULL, NULL, NULL,
	  "no answer 1000 ms after the request was sent", false,
	  PUSH_OUTCOME_UNCERTAIN,
	  "transport: no answer 1000 ms after the request was sent", -1, -1,
	  0, 0, HTTP_ERR_NO_ANSWER },
	{ "request timer: no answer, on: retry in minutes", 0, NULL, NULL,
	  NULL, NULL, NULL, "no answer 1000 ms after the request was sent",
	  true, PUSH_OUTCOME_RETRY,
	  "transport: no answer 1000 ms after the request was sent",
	  60 * S, 62 * S, 0, 0, HTTP_ERR_NO_ANSWER },
	{ "stream reset after the request went out, off: uncertain", 0,
	  NULL, NULL, NULL, NULL, NULL, "HTTP/2 stream 1 was not closed "
	  "cleanly: INTERNAL_ERROR (err 2)", false, PUSH_OUTCOME_UNCERTAIN,
	  "transport: HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR "
	  "(err ",
	  -1, -1, 0, 0, HTTP_ERR_NO_ANSWER },
	{ "connection lost while waiting, off: uncertain", 0, NULL, NULL,
	  NULL, NULL, NULL, "Recv failure: connection closed by the server",
	  false, PUSH_OUTCOME_UNCERTAIN,
	  "transport: Recv failure: connection closed by the server", -1, -1,
	  0, 0, HTTP_ERR_NO_ANSWER },
	{ "an answer over the body cap, off: uncertain", 0, NULL, NULL, NULL,
	  NULL, NULL, "response body over 65536 bytes", false,
	  PUSH_OUTCOME_UNCERTAIN, "transport: response body over 65536 bytes",
	  -1, -1, 0, 0, HTTP_ERR_BAD_ANSWER },
	{ "a timeout before the request went out, off: retry", 0, NULL, NULL,
	  NULL, NULL, NULL, "Operation timed out after 5000 milliseconds "
	  "with 0 bytes received", false, PUSH_OUTCOME_RETRY,
	  "transport: Operation timed out after 5000 milliseconds with 0 "
	  "bytes rec", 2 * S, 2 * S, 0, 0, HTTP_ERR_NOT_SENT },
	{ "refused stream, off: retry", 0, NULL, NULL, NULL, NULL, NULL,
	  "HTTP/2 stream 1 was not closed cleanly: REFUSED_STREAM (err 7)",
	  false, PUSH_OUTCOME_RETRY,
	  "transport: HTTP/2 stream 1 was not closed cleanly: REFUSED_STREAM "
	  "(err ",
	  2 * S, 2 * S, 0, 0, HTTP_ERR_NOT_SENT },
	{ "cancelled, off: retry", 0, NULL, NULL, NULL, NULL, NULL,
	  "cancelled", false, PUSH_OUTCOME_RETRY, "transport: cancelled",
	  2 * S, 2 * S, 0, 0, HTTP_ERR_CANCELLED },
	{ "status 0 of no known kind, off: uncertain (the worst case)", 0,
	  NULL, NULL, NULL, NULL, NULL, "Couldn't connect to server", false,
	  PUSH_OUTCOME_UNCERTAIN, "transport: Couldn't connect to server",
	  -1, -1, 0, 0, HTTP_ERR_NONE },
};

int main(void)
{
	struct push_result res;
	struct push_item it;
	size_t i, j;
	char buf[512];

	plan(138);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct map_case *c = &cases[i];
		struct sender_mpns_request r;
		size_t want = 0;
		int rc;

		memset(&it, 0, sizeof it);
		it.payload = (char *)c->payload;
		it.priority = c->prio;
		rc = sender_mpns_build(&it, NOW, &r, &res);
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
			char h[64];

			summary(&r.parts[j], buf, sizeof buf);
			is_str(buf, c->parts[j], "  part %zu headers", j);
			is_str(r.parts[j].body, c->bodies[j], "  part %zu body",
			       j);
			ok(is_uuid(r.parts[j].message_id),
			   "  X-MessageID is a UUID (%s)",
			   r.parts[j].message_id);
			snprintf(h, sizeof h, "X-MessageID: %s",
				 r.parts[j].message_id);
			{
				bool sent = false;

				for (size_t k = 0; r.parts[j].headers[k]; k++)
					sent |= strcmp(r.parts[j].headers[k],
						       h) == 0;
				ok(sent, "  and is sent as a header");
			}
		}
		if (r.n == 2)
			ok(strcmp(r.parts[0].message_id,
				  r.parts[1].message_id) != 0,
			   "  each request has its own id");
		sender_mpns_request_free(&r);
	}
	memset(&it, 0, sizeof it);
	it.payload = (char *)"{\"title\":\"t\"}";
	it.expires_at_us = NOW;
	{
		struct sender_mpns_request r;

		is_int(sender_mpns_build(&it, NOW, &r, &res), -22,
		       "expired: not built");
		is_int(res.outcome, PUSH_OUTCOME_EXPIRED, "  expired");
	}

	for (i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
		const struct cls_case *c = &ccases[i];
		struct sender_mpns_answer a;

		memset(&a, 0, sizeof a);
		a.status = c->status;
		a.notification = c->n;
		a.subscription = c->sub;
		a.device = c->dev;
		a.content_type = c->ct;
		a.body = c->body;
		a.body_len = c->body ? strlen(c->body) : 0;
		a.error = c->error;
		a.err = c->err;
		sender_mpns_classify(&a, 1, 8, c->retry_ambiguous, NOW, 2 * S,
				     &res);
		is_int(res.outcome, c->outcome, "%s: %s", c->name,
		       push_outcome_name(c->outcome));
		is_str(res.reason, c->reason, "  reason");
		if (c->min_retry_us >= 0)
			ok(res.retry_at_us - NOW >= c->min_retry_us &&
			   res.retry_at_us - NOW <= c->max_retry_us,
			   "  retry in %lld s",
			   (long long)((res.retry_at_us - NOW) / S));
		ok(res.auth_failure == c->auth_failure &&
		   res.throttled == c->throttled,
		   "  flags auth_failure=%d throttled=%d", res.auth_failure,
		   res.throttled);
	}
	{
		struct sender_mpns_answer a;

		memset(&a, 0, sizeof a);
		a.status = 503;
		sender_mpns_classify(&a, 3, 3, false, NOW, S, &res);
		is_int(res.outcome, PUSH_OUTCOME_FAILED,
		       "503 on the last attempt: failed");
	}
	is_ptr(sender_for(PUSH_PLATFORM_MPNS), &sender_mpns_ops,
	       "sender_for(mpns)");
	is_str(sender_mpns_ops.name, "mpns", "its name");
	return done_testing();
}
