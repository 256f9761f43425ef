/*
 * test_oauth_cache.c - unit tests for oauth_cache.c: the refresh
 * schedule, single flight, refresh before expiry, invalidation, backoff,
 * permanent errors, the provider's body and freeing with waiters.
 *
 * The HTTP bridge is replaced at link time: this file defines
 * http_submit() and http_cancel(), the only bridge functions the cache
 * calls, so http.o is never linked and each request waits here until the
 * test answers it.  Times passed to oauth_cache_token() are a fake clock
 * ahead of the real one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "net/http.h"
#include "base/log.h"
#include "platforms/oauth_cache.h"
#include "base/push.h"
#include "tap.h"

#define S 1000000LL

/* ---- the fake bridge ---------------------------------------------- */

struct http_xfer {
	http_done_fn done;
	void *arg;
};

static struct http_xfer *pending;      /* the request not answered yet */
static int submits;
static char last_body[128];

int http_submit(struct http *http, const struct http_request *req,
		struct http_xfer **out)
{
	struct http_xfer *x = calloc(1, sizeof *x);

	x->done = req->done;
	x->arg = req->arg;
	snprintf(last_body, sizeof last_body, "%.*s", (int)req->body_len,
		 req->body);
	pending = x;
	submits++;
	*out = x;
	return 0;
}

static void respond(long status, const char *error, const char *body)
{
	struct http_xfer *x = pending;
	struct http_response r;

	memset(&r, 0, sizeof r);
	r.status = status;
	r.err = status == 0 ? HTTP_ERR_NOT_SENT : HTTP_ERR_NONE;
	r.error = error;
	r.body = body;
	r.body_len = strlen(body);
	r.xfer = x;
	pending = NULL;
	x->done(x->arg, &r);
	free(x);
}

void http_cancel(struct http *http, struct http_xfer *xfer)
{
	respond(0, "cancelled", "");
}

/* ---- a provider and waiters ---------------------------------------- */

struct provider {
	int bodies;
	int fail;              /* make_body refuses */
	int freed;
};

static int make_body(void *ctx, int64_t now_us, char **body, size_t *len,
		     char *err, size_t errlen)
{
	struct provider *p = ctx;

	if (p->fail) {
		snprintf(err, errlen, "cannot sign the test assertion");
		return -1;
	}
	p->bodies++;
	*body = malloc(32);
	*len = (size_t)snprintf(*body, 32, "grant=%d", p->bodies);
	return 0;
}

static void free_ctx(void *ctx)
{
	((struct provider *)ctx)->freed++;
}

struct waiter {
	struct oauth_cache_waiter w;
	int calls;
	char token[32];
	struct oauth_cache_error err;
};

static void on_ready(void *arg, const char *token,
		     const struct oauth_cache_error *err)
{
	struct waiter *wt = arg;

	wt->calls++;
	snprintf(wt->token, sizeof wt->token, "%s", token ? token : "");
	if (err != NULL)
		wt->err = *err;
}

static void wait_for(struct oauth_cache *c, struct waiter *wt)
{
	memset(wt, 0, sizeof *wt);
	oauth_cache_wait(c, &wt->w, on_ready, wt);
}

static uv_loop_t loop;

static struct oauth_cache *new_cache(struct provider *p)
{
	struct oauth_cache_config cfg;
	static const char *const headers[] = { "Accept: x", NULL };

	memset(p, 0, sizeof *p);
	memset(&cfg, 0, sizeof cfg);
	cfg.name = "test";
	cfg.client_key = "account";
	cfg.client = "me@example.com";
	cfg.endpoint_name = "test token endpoint";
	cfg.token_url = "https://127.0.0.1:1/token";
	cfg.headers = headers;
	cfg.default_lifetime_s = 600;
	cfg.description_max = 3;
	cfg.make_body = make_body;
	cfg.ctx_free = free_ctx;
	cfg.ctx = p;
	return oauth_cache_new(&loop, NULL, &cfg);
}

/* ---- tests --------------------------------------------------------- */

static void test_schedule(void)
{
	is_int(oauth_cache_refresh_after(3599), 2880, "1 h token: at 80 %%");
	is_int(oauth_cache_refresh_after(86400), 69120, "1 day token: at "
	       "80 %%");
	is_int(oauth_cache_refresh_after(1200), 900, "20 min token: 5 min "
	       "before the end");
	is_int(oauth_cache_refresh_after(6), 3, "6 s token: at half");
}

static void test_flight_and_refresh(void)
{
	struct provider p;
	struct oauth_cache *c = new_cache(&p);
	struct waiter a, b, late;
	int64_t t0 = push_now_us(), t1;

	is_ptr(oauth_cache_token(c, t0), NULL, "no token at first");
	is_int(submits, 0, "asking for the token fetches nothing");
	wait_for(c, &a);
	wait_for(c, &b);
	is_int(a.calls + b.calls + submits, 0,
	       "wait: no callback, no fetch from inside the call");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(submits, 1, "two waiters: one fetch");
	is_str(last_body, "grant=1", "the provider's body is sent");
	wait_for(c, &late);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(submits, 1, "a waiter during the fetch: still one fetch");
	respond(200, NULL, "{\"access_token\":\"tok1\",\"expires_in\":3600}");
	ok(a.calls == 1 && b.calls == 1 && late.calls == 1,
	   "every waiter answered once");
	is_str(late.token, "tok1", "with the token");
	is_str(oauth_cache_token(c, t0), "tok1", "the token is cached");

	/* 3600 s: refresh from 2880 s, usable until 3590 s after the fetch
	 * started (a little after t0). */
	is_str(oauth_cache_token(c, t0 + 2870 * S), "tok1",
	       "before the refresh time: no fetch");
	is_int(submits, 1, "(no fetch)");
	t1 = t0 + 2890 * S;
	is_str(oauth_cache_token(c, t1), "tok1",
	       "due for refresh: the old token still serves");
	is_int(submits, 2, "and a background fetch starts");
	oauth_cache_token(c, t1);
	is_int(submits, 2, "one refresh at a time");
	respond(200, NULL, "{\"access_token\":\"tok2\",\"expires_in\":3600}");
	is_str(oauth_cache_token(c, t1), "tok2", "refreshed");
	is_ptr(oauth_cache_token(c, t1 + 3591 * S), NULL,
	       "not used in its last 10 s");
	is_int(submits, 2, "an unusable token starts no fetch by itself");

	oauth_cache_invalidate(c, "tok1");
	is_str(oauth_cache_token(c, t1), "tok2", "invalidating an old token: "
	       "nothing happens");
	oauth_cache_invalidate(c, "tok2");
	is_ptr(oauth_cache_token(c, t1), NULL, "invalidated");
	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(submits, 3, "the next wait fetches at once");
	respond(503, NULL, "{\"error\":\"busy\"}");
	is_int(a.calls, 1, "a failed fetch answers the waiter");
	ok(a.token[0] == '\0' && !a.err.permanent &&
	   a.err.http_status == 503, "with a transient error");
	is_str(a.err.reason, "test token endpoint: HTTP 503 busy",
	       "reason names the endpoint");
	ok(a.err.retry_at_us >= push_now_us() + S / 2,
	   "no new fetch for a while");
	wait_for(c, &b);
	uv_run(&loop, UV_RUN_NOWAIT);
	ok(b.calls == 1 && submits == 3,
	   "during the backoff: the last error at once, no fetch");
	is_str(b.err.reason, a.err.reason, "(the same error)");

	wait_for(c, &late);
	oauth_cache_cancel(c, &late.w);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(late.calls, 0, "a cancelled waiter is not called");
	oauth_cache_free(c);
	is_int(p.freed, 1, "free: the provider's context goes too");
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_errors(void)
{
	struct provider p;
	struct oauth_cache *c = new_cache(&p);
	struct oauth_cache_stats st;
	struct waiter a;
	int n;

	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	respond(400, NULL, "{\"error\":\"invalid_grant\","
		"\"error_description\":\"account gone\"}");
	ok(a.calls == 1 && a.err.permanent && a.err.http_status == 400,
	   "400: a permanent error");
	is_str(a.err.reason, "test token endpoint: HTTP 400 invalid_grant "
	       "(acc)", "error_description cut to description_max");
	oauth_cache_free(c);
	uv_run(&loop, UV_RUN_DEFAULT);

	c = new_cache(&p);
	p.fail = 1;
	n = submits;
	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(submits, n, "a body that cannot be made: no request");
	ok(a.calls == 1 && a.err.permanent, "and a permanent error");
	is_str(a.err.reason, "cannot sign the test assertion",
	       "the provider's reason");
	oauth_cache_get_stats(c, &st);
	ok(st.fetches == 1 && st.failures == 1, "counted: fetch %llu "
	   "failure %llu", (unsigned long long)st.fetches,
	   (unsigned long long)st.failures);
	oauth_cache_free(c);
	uv_run(&loop, UV_RUN_DEFAULT);

	/* The token becomes "Authorization: Bearer <token>": one with a
	 * line break would add a header of the token endpoint's choosing. */
	c = new_cache(&p);
	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	respond(200, NULL, "{\"access_token\":\"tok\\r\\nx-injected: 1\"}");
	ok(a.calls == 1 && a.token[0] == '\0' && !a.err.permanent,
	   "a token with CR LF: not used, a transient error");
	is_str(a.err.reason, "test token endpoint: the access_token is not "
	       "a valid header value (a control character)",
	       "the reason says why");
	is_ptr(oauth_cache_token(c, push_now_us()), NULL, "nothing cached");
	oauth_cache_free(c);
	uv_run(&loop, UV_RUN_DEFAULT);

	c = new_cache(&p);
	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	respond(200, NULL, "{\"access_token\":\"short\"}");
	oauth_cache_get_stats(c, &st);
	is_int(st.last_lifetime_s, 600, "no expires_in: the default");
	oauth_cache_invalidate(c, "short");
	wait_for(c, &a);
	uv_run(&loop, UV_RUN_NOWAIT);
	ok(pending != NULL, "a fetch in flight");
	oauth_cache_free(c);
	ok(pending == NULL, "free cancels the fetch");
	ok(a.calls == 1 && !a.err.permanent, "waiters get a transient error");
	is_str(a.err.reason, "cancelled", "\"cancelled\"");
	uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	uv_loop_init(&loop);
	test_schedule();
	test_flight_and_refresh();
	test_errors();
	is_int(uv_loop_close(&loop), 0, "every handle closed");
	return done_testing();
}
