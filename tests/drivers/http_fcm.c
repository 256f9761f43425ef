/*
 * http_fcm.c - the HTTP bridge, the FCM OAuth cache and the FCM
 * sender together, on a real libuv loop, against the fake FCM server
 * (tests/fakes).  It starts nothing itself: tests/integration/http_fcm.t
 * starts the fake and runs this with
 *
 *   FAKE_FCM_URL      https://127.0.0.1:<fcm port>  (token endpoint is
 *                     FAKE_FCM_URL/token, started with its default --fcm-aud)
 *   FAKE_CONTROL_URL  http://127.0.0.1:<control port>
 *   FAKE_CA           the test CA bundle
 *   FAKE_SA_JSON      the service-account JSON file
 *   FAKE_LOG          the fake's request log (JSON lines)
 *   HTTP_THREADS      optional: run the bridge on that many worker
 *                     threads (http_fcm_threads.t)
 *   H2_DIRECT         optional, 1: FCM sends take the bridge's own
 *                     HTTP/2 client (http_opts.h2_direct, http_fcm_h2.t),
 *                     and its own scenarios run
 *   FAKE_WNS_URL      https://127.0.0.1:<wns port> (ALPN http/1.1 only)
 *
 * Without them it prints "1..0 # SKIP" (so `make valgrind` and a bare
 * prove pass); the .t wrapper always provides them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <uv.h>

#include "net/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/push.h"
#include "platforms/sender.h"
#include "platforms/fcm/sender_fcm.h"
#include "tap.h"

#define S 1000000LL

static uv_loop_t loop;
static const char *fcm_url, *ctl_url, *ca_path, *sa_path, *log_path;
/* HTTP_THREADS: the bridge's worker threads (http_opts.threads). */
static unsigned threads;
/* H2_DIRECT: http_opts.h2_direct. */
static bool h2direct;
static const char *wns_url;

/* ---- loop helpers ------------------------------------------------- */

struct ctl_done {
	bool done;
	long status;
	enum http_err err;
	char body[4096];
};

static void on_ctl(void *arg, const struct http_response *res)
{
	struct ctl_done *c = arg;

	c->done = true;
	c->status = res->status;
	c->err = res->err;
	snprintf(c->body, sizeof c->body, "%s",
		 res->status ? res->body : res->error);
}

/*
 * A tick while waiting: a flag set by a timer that ran before the loop's
 * poll would otherwise leave UV_RUN_ONCE blocked in that poll when
 * nothing else on the loop has a timeout (the bridge's timers are on
 * its worker loops with HTTP_THREADS).
 */
static uv_timer_t tick;

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void run_until(const bool *flag)
{
	uv_timer_start(&tick, on_tick, 10, 10);
	while (!*flag)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&tick);
}

static void on_sleep(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run the loop for `ms` milliseconds. */
static void sleep_loop(uint64_t ms)
{
	uv_timer_t t;
	bool done = false;

	uv_timer_init(&loop, &t);
	t.data = &done;
	uv_timer_start(&t, on_sleep, ms, 0);
	run_until(&done);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* Talk to the fake's control port through the bridge; the status. */
static long ctl(struct http *http, const char *method, const char *path,
		const char *json)
{
	static const char *const hdrs[] = {
		"Content-Type: application/json", NULL
	};
	struct http_request req;
	struct ctl_done c;
	char url[512];

	memset(&c, 0, sizeof c);
	snprintf(url, sizeof url, "%s%s", ctl_url, path);
	memset(&req, 0, sizeof req);
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = json;
	req.body_len = json ? strlen(json) : 0;
	req.done = on_ctl;
	req.arg = &c;
	if (http_submit(http, &req, NULL) < 0)
		return -1;
	run_until(&c.done);
	if (c.status != 200)
		diag("control %s %s: %ld %s", method, path, c.status, c.body);
	return c.status;
}

/* ---- sends -------------------------------------------------------- */

struct sent {
	bool done;
	struct push_item *item;
	struct push_result res;
};

static void on_sent(void *arg, struct push_item *item,
		    const struct push_result *res)
{
	struct sent *s = arg;

	s->done = true;
	s->item = item;
	s->res = *res;
}

static struct push_item *new_item(const char *token, const char *payload)
{
	struct push_item *it = mem_alloc_zero(1, sizeof *it);

	it->push_id = 1;
	it->platform = PUSH_PLATFORM_FCM;
	it->priority = PUSH_PRIORITY_HIGH;
	it->token = mem_strdup(token);
	it->payload = mem_strdup(payload);
	it->attempts = 1;
	return it;
}

/* Send one push and wait for its result (in *out). */
static void send_one(struct sender_cred *cred, const char *token,
		     const char *payload, struct sent *out)
{
	memset(out, 0, sizeof *out);
	sender_fcm_ops.send(cred, new_item(token, payload), 5, on_sent, out);
	ok(!out->done, "%s: not done inside send()", token);
	run_until(&out->done);
	push_item_free(out->item);
	out->item = NULL;
}

/* ---- the fake's request log -------------------------------------- */

/* The request-log entries for `token` (a json array; put it). */
static json_object *log_for(const char *token)
{
	json_object *arr = json_object_new_array();
	FILE *f = fopen(log_path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL)
		return arr;
	while (getline(&line, &cap, f) > 0) {
		json_object *o = json_tokener_parse(line), *t;

		if (o != NULL && json_object_object_get_ex(o, "token", &t) &&
		    json_object_is_type(t, json_type_string) &&
		    strcmp(json_object_get_string(t), token) == 0)
			json_object_array_add(arr, o);
		else
			json_object_put(o);
	}
	free(line);
	fclose(f);
	return arr;
}

static const char *jpath(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b != NULL && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_get_string(v);
}

/*
 * Requests in the log whose path ends in `suffix` (and, when status >= 0,
 * answered with that status).
 */
static int log_count(const char *suffix, long status)
{
	FILE *f = fopen(log_path, "r");
	char *line = NULL;
	size_t cap = 0, sl = strlen(suffix);
	int n = 0;

	if (f == NULL)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		json_object *o = json_tokener_parse(line), *p, *r, *st;
		const char *path;

		if (o != NULL && json_object_object_get_ex(o, "path", &p) &&
		    (path = json_object_get_string(p)) != NULL &&
		    strlen(path) >= sl &&
		    strcmp(path + strlen(path) - sl, suffix) == 0 &&
		    (status < 0 ||
		     (json_object_object_get_ex(o, "response", &r) &&
		      json_object_object_get_ex(r, "status", &st) &&
		      json_object_get_int64(st) == status)))
			n++;
		json_object_put(o);
	}
	free(line);
	fclose(f);
	return n;
}

static long log_status(json_object *o)
{
	json_object *r, *s;

	if (json_object_object_get_ex(o, "response", &r) &&
	    json_object_object_get_ex(r, "status", &s))
		return (long)json_object_get_int64(s);
	return -1;
}

/* ---- credentials -------------------------------------------------- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = mem_alloc((size_t)n + 1);
	buf[fread(buf, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return buf;
}

/*
 * The credential row as the daemon gets it.  `other_key`: replace the
 * service account's key with a fresh one Google never saw.  `endpoint`:
 * NULL for the fake.
 */
static char *cred_row(bool other_key, const char *endpoint)
{
	char *sa_text = read_file(sa_path), *out, url[512];
	json_object *row = json_object_new_object();
	json_object *sa = json_tokener_parse(sa_text);

	if (other_key) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
						(size_t)2048);
		BIO *b = BIO_new(BIO_s_mem());
		char *d;
		long n;

		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
		n = BIO_get_mem_data(b, &d);
		json_object_object_add(sa, "private_key",
				       json_object_new_string_len(d, (int)n));
		BIO_free(b);
		EVP_PKEY_free(k);
	}
	if (endpoint == NULL)
		endpoint = fcm_url;
	snprintf(url, sizeof url, "%s/token", endpoint);
	json_object_object_add(row, "id", json_object_new_int(7));
	json_object_object_add(row, "project_id",
			       json_object_new_string("pgpush-test"));
	json_object_object_add(row, "service_account", sa);
	json_object_object_add(row, "endpoint",
			       json_object_new_string(endpoint));
	json_object_object_add(row, "token_endpoint",
			       json_object_new_string(url));
	json_object_object_add(row, "ca_bundle_path",
			       json_object_new_string(ca_path));
	out = mem_strdup(json_object_to_json_string(row));
	json_object_put(row);
	free(sa_text);
	return out;
}

static struct sender_cred *open_cred(const struct sender_env *env,
				     bool other_key, const char *endpoint)
{
	struct sender_cred *cred = NULL;
	char *row = cred_row(other_key, endpoint), err[256];

	if (!is_int(sender_fcm_ops.cred_open(&cred, env, row, err,
					     sizeof err), 0,
		    "credential opened"))
		diag("cred_open: %s", err);
	free(row);
	return cred;
}

/* ---- scenarios ---------------------------------------------------- */

static void test_send_ok(struct sender_cred *cred)
{
	static const char payload[] = "{\"title\":\"Hello\",\"body\":\"World\","
				      "\"data\":{\"n\":1}}";
	struct push_item *it = new_item("dev-ok-1", payload);
	struct push_result r;
	struct sent s;
	json_object *log;
	const char *authz;
	char *want = NULL;
	int ntok = log_count("/token", -1);

	send_one(cred, "dev-ok-1", payload, &s);
	is_int(log_count("/token", -1) - ntok, 1, "one token fetched");
	is_str(push_outcome_name(s.res.outcome), "sent", "a send succeeds");
	is_int(s.res.http_status, 200, "with status 200");
	like_str(s.res.message_id, "projects/pgpush-test/messages/",
		 "message_id is the name");

	sender_fcm_build_body(it, push_now_us(), &want, &r);
	log = log_for("dev-ok-1");
	if (is_int(json_object_array_length(log), 1, "the fake saw it once")) {
		json_object *e = json_object_array_get_idx(log, 0);

		is_str(jpath(e, "body", NULL), want, "with the right body");
		authz = jpath(e, "headers", "authorization");
		like_str(authz ? authz : "", "Bearer ya29.",
			 "and a Bearer access token");
		is_str(jpath(e, "headers", "content-type"), "application/json",
		       "content-type JSON");
		is_str(jpath(e, "http", NULL), "2", "over HTTP/2");
		is_str(jpath(e, "auth", NULL), "oauth2", "fake: oauth2 auth");
	}
	json_object_put(log);
	free(want);
	push_item_free(it);
}

static void test_errors(struct http *http, struct sender_cred *cred)
{
	struct sent s;
	json_object *log;
	int64_t before;

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-gone\",\"reason\":\"UNREGISTERED\"}");
	send_one(cred, "dev-gone", "{\"title\":\"x\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "invalid_token",
	       "404 UNREGISTERED: invalid token");
	is_str(s.res.reason, "UNREGISTERED", "reason UNREGISTERED");
	is_int(s.res.http_status, 404, "status 404");

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-busy\",\"reason\":\"UNAVAILABLE\",\"retry_after\":120}");
	before = push_now_us();
	send_one(cred, "dev-busy", "{\"title\":\"x\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "retry", "503: retry");
	is_str(s.res.reason, "UNAVAILABLE", "reason UNAVAILABLE");
	ok(s.res.retry_at_us >= before + 119 * S &&
	   s.res.retry_at_us <= push_now_us() + 121 * S,
	   "at the Retry-After time (in %lld ms)",
	   (long long)(s.res.retry_at_us - before) / 1000);

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-bad\",\"status\":400,\"reason\":\"INVALID_ARGUMENT\"}");
	send_one(cred, "dev-bad", "{\"title\":\"x\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "invalid_token",
	       "400 on message.token: invalid token");

	send_one(cred, "dev-resv", "{\"data\":{\"from\":\"me\"}}", &s);
	is_str(push_outcome_name(s.res.outcome), "failed",
	       "reserved data key: failed before sending");
	log = log_for("dev-resv");
	is_int(json_object_array_length(log), 0, "and nothing was sent");
	json_object_put(log);
}

static void test_concurrent(struct http *http, struct sender_cred *cred)
{
	enum { N = 100 };
	static struct sent s[N];
	struct http_stats st0, st1;
	uint64_t t0;
	int i, sent = 0, max_stream = 0;
	char tok[32];

	ctl(http, "POST", "/latency", "{\"provider\":\"fcm\",\"distribution\":"
	    "\"uniform\",\"min_ms\":300,\"max_ms\":300}");
	http_get_stats(http, &st0);
	t0 = uv_hrtime();
	for (i = 0; i < N; i++) {
		snprintf(tok, sizeof tok, "dev-m-%d", i);
		sender_fcm_ops.send(cred, new_item(tok, "{\"body\":\"m\"}"), 5,
				    on_sent, &s[i]);
	}
	for (i = 0; i < N; i++) {
		run_until(&s[i].done);
		sent += s[i].res.outcome == PUSH_OUTCOME_SENT;
		push_item_free(s[i].item);
	}
	http_get_stats(http, &st1);
	is_int(sent, N, "100 concurrent sends all sent");
	ok(uv_hrtime() - t0 < 3000000000ULL, "in parallel: %llu ms for 100 "
	   "answers of 300 ms each",
	   (unsigned long long)(uv_hrtime() - t0) / 1000000);
	is_int(st1.connects - st0.connects, 0,
	       "over the connection already open (no new connection)");
	for (i = 0; i < N; i++) {
		json_object *log, *e, *v;

		snprintf(tok, sizeof tok, "dev-m-%d", i);
		log = log_for(tok);
		e = json_object_array_get_idx(log, 0);
		if (e != NULL && json_object_object_get_ex(e, "stream", &v) &&
		    json_object_get_int(v) > max_stream)
			max_stream = json_object_get_int(v);
		json_object_put(log);
	}
	/* With worker threads the requests take the workers in turn, each
	 * on its own connection; the h2_direct client is on this loop. */
	ok(max_stream >= 2 * (N / (threads > 1 && !h2direct
				   ? (int)threads : 1)) - 1,
	   "h2 streams of one connection per worker (highest stream id %d)",
	   max_stream);
	ctl(http, "POST", "/latency", "{\"max_ms\":0}");
}

static void test_token_refresh(struct http *http, struct sender_cred *cred)
{
	struct sent s;
	json_object *log;
	int n401, ntok;

	/* Short-lived tokens from now on, and the current one dead. */
	ctl(http, "POST", "/config", "{\"fcm_token_ttl\":6,"
	    "\"expire_tokens\":true}");
	n401 = log_count("/messages:send", 401);
	ntok = log_count("/token", 200);
	send_one(cred, "dev-r-1", "{\"body\":\"r\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "an expired access token: refreshed and resent");
	is_int(log_count("/messages:send", 401) - n401, 1,
	       "after one 401 (logged without a token)");
	is_int(log_count("/token", 200) - ntok, 1, "and one token fetch");
	log = log_for("dev-r-1");
	if (is_int(json_object_array_length(log), 1, "then one request"))
		is_int(log_status(json_object_array_get_idx(log, 0)), 200,
		       "accepted");
	json_object_put(log);

	/* 6 s tokens are refreshed after 3 s, before they expire. */
	n401 = log_count("/messages:send", 401);
	ntok = log_count("/token", 200);
	sleep_loop(3500);
	send_one(cred, "dev-r-2", "{\"body\":\"r\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "a token due for refresh is still used");
	sleep_loop(3000);
	is_int(log_count("/token", 200) - ntok, 1,
	       "and refreshed in the background");
	send_one(cred, "dev-r-3", "{\"body\":\"r\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "after the first token's lifetime: sent");
	log = log_for("dev-r-3");
	if (is_int(json_object_array_length(log), 1,
		   "with no 401 (refreshed before expiry)"))
		is_int(log_status(json_object_array_get_idx(log, 0)), 200,
		       "answered 200");
	json_object_put(log);
	is_int(log_count("/messages:send", 401) - n401, 0,
	       "no 401 at all since the refresh");
	ctl(http, "POST", "/config", "{\"fcm_token_ttl\":3599}");

	/* A scripted 401: refresh and resend once. */
	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-401\",\"reason\":\"UNAUTHENTICATED\",\"times\":1}");
	send_one(cred, "dev-401", "{\"body\":\"r\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "scripted 401: refreshed and resent once");
	ok(!s.res.reauth && !s.res.auth_failure, "no auth failure reported");
	log = log_for("dev-401");
	is_int(json_object_array_length(log), 2, "two requests");
	json_object_put(log);

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-401x2\",\"reason\":\"UNAUTHENTICATED\",\"times\":2}");
	send_one(cred, "dev-401x2", "{\"body\":\"r\"}", &s);
	is_str(push_outcome_name(s.res.outcome), "failed",
	       "two 401s: failed");
	ok(s.res.auth_failure, "as an auth failure");
	is_str(s.res.reason, "UNAUTHENTICATED", "reason UNAUTHENTICATED");
	log = log_for("dev-401x2");
	is_int(json_object_array_length(log), 2, "resent only once");
	json_object_put(log);

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-3p\",\"reason\":\"THIRD_PARTY_AUTH_ERROR\"}");
	send_one(cred, "dev-3p", "{\"body\":\"r\"}", &s);
	ok(s.res.outcome == PUSH_OUTCOME_FAILED && s.res.auth_failure,
	   "THIRD_PARTY_AUTH_ERROR: failed, auth failure");
	log = log_for("dev-3p");
	is_int(json_object_array_length(log), 1, "not resent");
	json_object_put(log);
}

static void test_bad_credentials(const struct sender_env *env)
{
	struct sender_cred *cred = open_cred(env, true, NULL);
	struct sent s1, s2;
	int n400 = log_count("/token", 400);

	if (cred == NULL)
		return;
	memset(&s1, 0, sizeof s1);
	memset(&s2, 0, sizeof s2);
	/* Two sends wait for the one token fetch. */
	sender_fcm_ops.send(cred, new_item("dev-k1", "{}"), 5, on_sent, &s1);
	sender_fcm_ops.send(cred, new_item("dev-k2", "{}"), 5, on_sent, &s2);
	run_until(&s1.done);
	run_until(&s2.done);
	ok(s1.res.outcome == PUSH_OUTCOME_FAILED && s1.res.auth_failure &&
	   s2.res.outcome == PUSH_OUTCOME_FAILED && s2.res.auth_failure,
	   "a key Google does not know: both waiting sends failed, auth");
	is_int(log_count("/token", 400) - n400, 1,
	       "one token request for both (single flight)");
	like_str(s1.res.reason, "invalid_grant", "reason from the token "
		 "endpoint: %s", s1.res.reason);
	ok(strstr(s1.res.reason, "PRIVATE") == NULL, "no key in the reason");
	push_item_free(s1.item);
	push_item_free(s2.item);
	sender_fcm_ops.cred_close(cred);
}

static void test_unreachable(const struct sender_env *env)
{
	struct sender_cred *cred = open_cred(env, false,
					     "https://127.0.0.1:1");
	struct sent s;

	if (cred == NULL)
		return;
	send_one(cred, "dev-u", "{}", &s);
	is_str(push_outcome_name(s.res.outcome), "retry",
	       "unreachable endpoint: retry");
	like_str(s.res.reason, "oauth token endpoint", "reason: %s",
		 s.res.reason);
	ok(s.res.retry_at_us > push_now_us(), "later");
	sender_fcm_ops.cred_close(cred);
}

static void test_cancel(struct http *http, struct sender_cred *cred)
{
	struct sent s[3];
	int i, n = 0;

	ctl(http, "POST", "/latency", "{\"provider\":\"fcm\",\"distribution\":"
	    "\"uniform\",\"min_ms\":2000,\"max_ms\":2000}");
	memset(s, 0, sizeof s);
	for (i = 0; i < 3; i++)
		sender_fcm_ops.send(cred, new_item("dev-c", "{}"), 5, on_sent,
				    &s[i]);
	sleep_loop(200);
	sender_fcm_ops.cred_close(cred);
	for (i = 0; i < 3; i++) {
		n += s[i].done && s[i].res.outcome == PUSH_OUTCOME_RETRY &&
		     strcmp(s[i].res.reason, "cancelled") == 0;
		push_item_free(s[i].item);
	}
	is_int(n, 3, "cred_close: in-flight sends finished as cancelled");
	ctl(http, "POST", "/latency", "{\"max_ms\":0}");
}

static void on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

static void test_body_cap(const struct sender_env *env0, struct http *ctlh)
{
	struct http_opts o;
	struct http *small = NULL;
	struct sender_env env = *env0;
	struct sender_cred *cred;
	struct sent s;
	char rule[2200];
	bool closed = false;

	memset(&o, 0, sizeof o);
	o.max_body = 1024;
	o.threads = threads;
	o.h2_direct = h2direct;
	http_new(&small, &loop, &o);
	env.http = small;
	snprintf(rule, sizeof rule, "{\"provider\":\"fcm\",\"token\":"
		 "\"dev-big\",\"status\":500,\"body\":\"%01500d\"}", 0);
	ctl(ctlh, "POST", "/rules", rule);
	cred = open_cred(&env, false, NULL);
	send_one(cred, "dev-big", "{}", &s);
	is_str(push_outcome_name(s.res.outcome), "retry",
	       "an answer over the body cap fails the request");
	like_str(s.res.reason, "response body over 1024 bytes", "clearly");
	sender_fcm_ops.cred_close(cred);
	http_close(small, on_http_closed, &closed);
	run_until(&closed);
}

/*
 * Requests waiting inside libcurl for a free stream are not connecting:
 * with one connection of two streams and answers that take 700 ms, eight
 * requests wait up to 2.8 s for a stream, far past the 500 ms connect
 * timeout, and all of them must still be sent, each once.
 */
static void test_wait_for_stream(const struct sender_env *env0,
				 struct http *ctlh)
{
	enum { N = 8 };
	static struct sent s[N];
	struct http_opts o;
	struct http *narrow = NULL;
	struct sender_env env = *env0;
	struct sender_cred *cred;
	bool closed = false;
	int i, sent = 0, logged = 0;
	char tok[32];

	memset(&o, 0, sizeof o);
	o.max_host_connections = 1;
	o.max_streams = 2;
	o.threads = threads;
	o.h2_direct = h2direct;
	http_new(&narrow, &loop, &o);
	env.http = narrow;
	env.connect_timeout_ms = 500;
	cred = open_cred(&env, false, NULL);
	if (cred == NULL)
		return;
	send_one(cred, "dev-w-warm", "{}", &s[0]);   /* token, connection */
	ctl(ctlh, "POST", "/latency", "{\"provider\":\"fcm\",\"distribution\":"
	    "\"uniform\",\"min_ms\":700,\"max_ms\":700}");
	memset(s, 0, sizeof s);
	for (i = 0; i < N; i++) {
		snprintf(tok, sizeof tok, "dev-w-%d", i);
		sender_fcm_ops.send(cred, new_item(tok, "{}"), 5, on_sent,
				    &s[i]);
	}
	for (i = 0; i < N; i++) {
		run_until(&s[i].done);
		if (s[i].res.outcome == PUSH_OUTCOME_SENT)
			sent++;
		else
			diag("dev-w-%d: %s: %s", i,
			     push_outcome_name(s[i].res.outcome),
			     s[i].res.reason);
		push_item_free(s[i].item);
	}
	ctl(ctlh, "POST", "/latency", "{\"max_ms\":0}");
	is_int(sent, N, "requests waiting for a stream past the connect "
	       "timeout are all sent");
	for (i = 0; i < N; i++) {
		json_object *log;

		snprintf(tok, sizeof tok, "dev-w-%d", i);
		log = log_for(tok);
		logged += json_object_array_length(log) == 1;
		json_object_put(log);
	}
	is_int(logged, N, "each reached the provider once");
	sender_fcm_ops.cred_close(cred);
	http_close(narrow, on_http_closed, &closed);
	run_until(&closed);
}

/* ---- the h2_direct client (H2_DIRECT=1) -------------------------- */

static uint64_t connects(struct http *http)
{
	struct http_stats st;

	http_get_stats(http, &st);
	return st.connects;
}

/* One send of `token` under a one-shot fake rule; its result in *s. */
static void send_ruled(struct http *http, struct sender_cred *cred,
		       const char *token, const char *rule_tail,
		       struct sent *s)
{
	char rule[512];

	snprintf(rule, sizeof rule, "{\"provider\":\"fcm\",\"token\":"
		 "\"%s\",\"times\":1,%s}", token, rule_tail);
	ctl(http, "POST", "/rules", rule);
	send_one(cred, token, "{}", s);
}

/*
 * What a server does to streams and connections: a stream refused (by
 * RST_STREAM or by a GOAWAY below it) never reached the provider and is
 * sent again, on another connection after a GOAWAY; a stream reset with
 * another code, or a connection reset, fails the request (a retry for
 * the sender), and the next request gets a fresh connection.
 */
static void test_h2_streams(const struct sender_env *env, struct http *http)
{
	struct sender_cred *cred = open_cred(env, false, NULL);
	struct sent s;
	uint64_t c0;
	json_object *log;

	if (cred == NULL)
		return;
	send_one(cred, "dev-h2-first", "{}", &s);    /* token, connection */
	push_item_free(s.item);
	c0 = connects(http);

	send_ruled(http, cred, "dev-h2-refused",
		   "\"action\":\"reset_stream\",\"error_code\":7", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "h2: a REFUSED_STREAM is sent again, and delivered");
	is_int((long)(connects(http) - c0), 0, "on the same connection");
	push_item_free(s.item);

	send_ruled(http, cred, "dev-h2-goaway", "\"action\":\"goaway\"",
		   &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "h2: a stream past a GOAWAY is sent again, and delivered");
	is_int((long)(connects(http) - c0), 1,
	       "on a new connection (the old one takes no new streams)");
	log = log_for("dev-h2-goaway");
	is_int(json_object_array_length(log), 2,
	       "the fake saw it twice: refused, then answered");
	json_object_put(log);
	push_item_free(s.item);

	send_ruled(http, cred, "dev-h2-reset",
		   "\"action\":\"reset_stream\",\"error_code\":2", &s);
	is_str(push_outcome_name(s.res.outcome), "retry",
	       "h2: a stream reset with INTERNAL_ERROR is a retry");
	like_str(s.res.reason, "INTERNAL_ERROR", "reason: %s", s.res.reason);
	push_item_free(s.item);

	send_ruled(http, cred, "dev-h2-rstconn",
		   "\"action\":\"reset_conn\"", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "h2: a request whose connection died with no answer is sent "
	       "again once, and delivered");
	log = log_for("dev-h2-rstconn");
	is_int(json_object_array_length(log), 2, "the fake saw it twice");
	json_object_put(log);
	push_item_free(s.item);

	ctl(http, "POST", "/rules", "{\"provider\":\"fcm\",\"token\":"
	    "\"dev-h2-rst2\",\"times\":2,\"action\":\"reset_conn\"}");
	send_one(cred, "dev-h2-rst2", "{}", &s);
	is_str(push_outcome_name(s.res.outcome), "retry",
	       "h2: lost with its connection twice: a retry");
	like_str(s.res.reason, "Recv failure", "reason: %s", s.res.reason);
	push_item_free(s.item);

	send_one(cred, "dev-h2-after", "{}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "the next request is sent");
	is_int((long)(connects(http) - c0), 4, "over a fresh connection "
	       "(one per reset)");
	push_item_free(s.item);
	sender_fcm_ops.cred_close(cred);
}

/*
 * A request past its timeout fails as "Operation timed out" (a retry);
 * the connection under it answers a PING and stays, so the next request
 * needs no new connection.
 */
static void test_h2_timeout(const struct sender_env *env0,
			    struct http *http)
{
	struct sender_env env = *env0;
	struct sender_cred *cred;
	struct sent s;
	uint64_t c0;

	env.request_timeout_ms = 300;
	cred = open_cred(&env, false, NULL);
	if (cred == NULL)
		return;
	send_one(cred, "dev-h2-warm", "{}", &s);     /* token, connection */
	push_item_free(s.item);
	c0 = connects(http);
	send_ruled(http, cred, "dev-h2-slow", "\"delay_ms\":1500", &s);
	is_str(push_outcome_name(s.res.outcome), "retry",
	       "h2: no answer within the request timeout: a retry");
	like_str(s.res.reason, "Operation timed out", "reason: %s",
		 s.res.reason);
	push_item_free(s.item);
	send_one(cred, "dev-h2-alive", "{}", &s);
	is_str(push_outcome_name(s.res.outcome), "sent",
	       "the next request is sent");
	is_int((long)(connects(http) - c0), 0,
	       "on the same connection (it answered the PING)");
	push_item_free(s.item);
	sender_fcm_ops.cred_close(cred);
}

/* One h2_direct POST of "{}" to `url` trusting `ca`; the answer in *c. */
static void h2_post(struct http *http, const char *url, const char *ca,
		    struct ctl_done *c)
{
	struct http_request req;

	memset(c, 0, sizeof *c);
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = url;
	req.ca_path = ca;
	req.body = "{}";
	req.body_len = 2;
	req.h2_direct = true;
	req.done = on_ctl;
	req.arg = c;
	if (http_submit(http, &req, NULL) < 0)
		c->done = true;
	else
		run_until(&c->done);
}

/*
 * A host that does not choose h2 in ALPN (the fake WNS speaks only
 * HTTP/1.1): the request goes through libcurl after all, and the next
 * one to that host straight away.
 */
static void test_h2_fallback(struct http *http)
{
	struct ctl_done c;
	char url[512];
	int i;

	if (!ok(wns_url != NULL, "FAKE_WNS_URL set (by http_fcm.t)"))
		return;
	snprintf(url, sizeof url, "%s/no-such-path", wns_url);
	for (i = 0; i < 2; i++) {
		h2_post(http, url, ca_path, &c);
		ok(c.status >= 400 && c.status < 500,
		   "h2_direct to an HTTP/1.1-only host: answered over "
		   "HTTP/1.1 by libcurl (%ld)", c.status);
	}
}

/*
 * TLS on the h2_direct client: verification is never off.  A CA bundle
 * that cannot be read and a server certificate from another CA each fail
 * the request (no answer), saying which.
 */
static void test_h2_tls(struct http *http)
{
	struct ctl_done c;
	char rogue[600], url[512];
	const char *slash = strrchr(ca_path, '/');

	snprintf(url, sizeof url, "%s/v1/projects/pgpush-test/messages:send",
		 fcm_url);
	h2_post(http, url, "/nonexistent/ca.pem", &c);
	ok(c.status == 0 && strstr(c.body, "error setting certificate file"),
	   "h2: an unreadable CA bundle fails the request: %s", c.body);
	snprintf(rogue, sizeof rogue, "%.*s/rogue-ca.pem",
		 slash ? (int)(slash - ca_path) : 1, slash ? ca_path : ".");
	h2_post(http, url, rogue, &c);
	ok(c.status == 0 && strstr(c.body, "SSL peer certificate was not OK"),
	   "h2: a server certificate the CA bundle does not vouch for fails "
	   "the request: %s", c.body);
}

/* Start an FCM message POST of "{}" (no auth: a mode answers first). */
static struct http_xfer *fcm_post(struct http *http, const char *base,
				  long timeout_ms, struct ctl_done *c)
{
	struct http_request req;
	struct http_xfer *x = NULL;
	char url[512];

	memset(c, 0, sizeof *c);
	snprintf(url, sizeof url, "%s/v1/projects/pgpush-test/messages:send",
		 base);
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = url;
	req.ca_path = ca_path;
	req.body = "{}";
	req.body_len = 2;
	req.connect_timeout_ms = 2000;
	req.timeout_ms = timeout_ms;
	req.h2_direct = true;          /* ignored without the h2 client */
	req.done = on_ctl;
	req.arg = c;
	if (http_submit(http, &req, &x) < 0) {
		c->done = true;
		return NULL;
	}
	return x;
}

/* fcm_post() and wait for its answer. */
static void fcm_post_wait(struct http *http, const char *base,
			  long timeout_ms, struct ctl_done *c)
{
	if (fcm_post(http, base, timeout_ms, c) != NULL)
		run_until(&c->done);
}

/* A fake mode for every FCM request, for 30 s (the test ends it). */
static void fcm_mode(struct http *http, const char *rule)
{
	char body[256];

	snprintf(body, sizeof body, "{\"provider\":\"fcm\",\"seconds\":30,"
		 "%s}", rule);
	ctl(http, "POST", "/mode", body);
}

/*
 * The kind of each transport failure (http_err), which the senders act
 * on: whether the provider can have processed the request.  The same
 * kinds from libcurl and from the h2_direct client, whatever their
 * texts: nothing listening or every stream refused - not sent; no answer
 * within the request timeout, or a stream reset once the request was
 * out - no answer (ambiguous); http_cancel() - cancelled.
 */
static void test_http_err(struct http *http)
{
	const char *via = h2direct ? "h2" : "libcurl";
	struct ctl_done c;
	struct http_xfer *x;

	fcm_post_wait(http, "https://127.0.0.1:1", 0, &c);
	ok(c.status == 0 && c.err == HTTP_ERR_NOT_SENT,
	   "%s: nothing listening: not sent (%s: %s)", via,
	   http_err_name(c.err), c.body);

	fcm_mode(http, "\"status\":200,\"delay_ms\":1500");
	fcm_post_wait(http, fcm_url, 300, &c);
	ok(c.status == 0 && c.err == HTTP_ERR_NO_ANSWER,
	   "%s: no answer within the request timeout: no answer (%s: %s)",
	   via, http_err_name(c.err), c.body);
	ok(http_err_ambiguous(c.err), "  which is ambiguous");

	fcm_mode(http, "\"action\":\"reset_stream\",\"error_code\":2");
	fcm_post_wait(http, fcm_url, 3000, &c);
	ok(c.status == 0 && c.err == HTTP_ERR_NO_ANSWER,
	   "%s: stream reset after the request went out: no answer (%s: %s)",
	   via, http_err_name(c.err), c.body);

	fcm_mode(http, "\"action\":\"reset_stream\",\"error_code\":7");
	fcm_post_wait(http, fcm_url, 3000, &c);
	ok(c.status == 0 && c.err == HTTP_ERR_NOT_SENT,
	   "%s: every try refused (REFUSED_STREAM): not sent (%s: %s)", via,
	   http_err_name(c.err), c.body);
	ok(!http_err_ambiguous(c.err), "  which is safe to send again");

	fcm_mode(http, "\"status\":200,\"delay_ms\":1500");
	x = fcm_post(http, fcm_url, 3000, &c);
	sleep_loop(200);
	if (x != NULL && !c.done)
		http_cancel(http, x);
	ok(c.done && c.status == 0 && c.err == HTTP_ERR_CANCELLED,
	   "%s: http_cancel(): cancelled (%s: %s)", via,
	   http_err_name(c.err), c.body);
	ctl(http, "POST", "/reset", "{}");
}

int main(void)
{
	struct http_opts ho;
	struct sender_env env;
	struct sender_cred *cred;
	struct http *http = NULL;
	bool closed = false;

	fcm_url = getenv("FAKE_FCM_URL");
	ctl_url = getenv("FAKE_CONTROL_URL");
	ca_path = getenv("FAKE_CA");
	sa_path = getenv("FAKE_SA_JSON");
	log_path = getenv("FAKE_LOG");
	if (!fcm_url || !ctl_url || !ca_path || !sa_path || !log_path) {
		printf("1..0 # SKIP FAKE_* not set (tests/integration/"
		       "http_fcm.t sets them)\n");
		return 0;
	}
	log_set_level(getenv("TEST_LOG_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	uv_loop_init(&loop);
	uv_timer_init(&loop, &tick);
	if (getenv("HTTP_THREADS") != NULL)
		threads = (unsigned)atoi(getenv("HTTP_THREADS"));
	h2direct = getenv("H2_DIRECT") != NULL &&
		   strcmp(getenv("H2_DIRECT"), "1") == 0;
	wns_url = getenv("FAKE_WNS_URL");
	memset(&ho, 0, sizeof ho);
	ho.threads = threads;
	ho.h2_direct = h2direct;
	is_int(http_new(&http, &loop, &ho), 0, "http bridge made");
	is_int(ctl(http, "POST", "/reset", "{}"), 200,
	       "plain HTTP/1.1 to the control port");

	memset(&env, 0, sizeof env);
	env.loop = &loop;
	env.http = http;
	env.connect_timeout_ms = 5000;
	env.request_timeout_ms = 10000;
	env.max_attempts = 5;
	cred = open_cred(&env, false, NULL);
	if (cred == NULL)
		return done_testing();
	test_send_ok(cred);
	test_errors(http, cred);
	test_concurrent(http, cred);
	test_token_refresh(http, cred);
	test_cancel(http, cred);
	test_bad_credentials(&env);
	test_unreachable(&env);
	test_body_cap(&env, http);
	test_wait_for_stream(&env, http);
	if (h2direct) {
		test_h2_streams(&env, http);
		test_h2_timeout(&env, http);
		test_h2_fallback(http);
		test_h2_tls(http);
	}
	test_http_err(http);

	http_close(http, on_http_closed, &closed);
	run_until(&closed);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	is_int(uv_loop_close(&loop), 0, "every handle closed");
	return done_testing();
}
