/*
 * oauth_cache.c - the OAuth 2.0 access-token cache.  See oauth_cache.h.
 *
 * State: `token` (NULL or a usable token with `refresh_at_us` and
 * `usable_until_us`), `xfer` (a fetch in flight, at most one), and after
 * a failed fetch `last_err` with `next_fetch_us` (backoff).  Waiters are
 * answered by deliver(), from the fetch's callback or from the `kick`
 * timer when the answer is already known (so never from inside
 * oauth_cache_wait()).
 */
#include "platforms/oauth_cache.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/push.h"
#include "net/hdrcheck.h"
#include "net/http.h"
#include "platforms/secret.h"

#define USEC 1000000LL
#define BACKOFF_BASE_US (1 * USEC)
#define BACKOFF_CAP_US (300 * USEC)

struct oauth_cache {
	struct http *http;
	struct oauth_cache_config cfg;  /* its strings point to ours: */
	char *client, *token_url, *ca_path;

	char *token;
	int64_t refresh_at_us;
	int64_t usable_until_us;

	struct http_xfer *xfer;
	int64_t fetch_started_us;
	int fail_count;
	bool have_err;
	struct oauth_cache_error last_err;
	int64_t next_fetch_us;

	struct oauth_cache_waiter *waiters, *waiters_tail;
	uv_timer_t kick;
	bool freeing;
	struct oauth_cache_stats stats;
};

static void start_fetch(struct oauth_cache *c, int64_t now_us);

long oauth_cache_refresh_after(long lifetime_s)
{
	long margin = lifetime_s / 5;

	if (margin < 300)
		margin = 300;
	if (margin > lifetime_s / 2)
		margin = lifetime_s / 2;
	return lifetime_s - margin;
}

static void waiter_unlink(struct oauth_cache *c, struct oauth_cache_waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		c->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		c->waiters_tail = w->prev;
	w->prev = w->next = NULL;
	w->waiting = false;
}

/*
 * Answer every waiter with `token` or `err`.  Each is unlinked before
 * its callback, which may queue new waiters: those are left for the
 * next round (the loop stops at the tail seen on entry).
 */
static void deliver(struct oauth_cache *c, const char *token,
		    const struct oauth_cache_error *err)
{
	struct oauth_cache_waiter *last = c->waiters_tail, *w;
	char *copy = token != NULL ? mem_strdup(token) : NULL;
	bool more = true;

	while (more && (w = c->waiters) != NULL) {
		more = w != last;
		waiter_unlink(c, w);
		w->fn(w->arg, copy, copy != NULL ? NULL : err);
	}
	secret_free(copy);
}

static bool token_usable(const struct oauth_cache *c, int64_t now_us)
{
	return c->token != NULL && now_us < c->usable_until_us;
}

static void on_kick(uv_timer_t *t)
{
	struct oauth_cache *c = t->data;
	int64_t now = push_now_us();

	if (c->waiters == NULL)
		return;
	if (token_usable(c, now))
		deliver(c, c->token, NULL);
	else if (c->xfer != NULL)
		return;         /* the fetch will answer */
	else if (c->have_err && now < c->next_fetch_us)
		deliver(c, NULL, &c->last_err);
	else
		start_fetch(c, now);
}

/* A fetch failed: "<what>: <detail>" (or `detail` alone), then backoff. */
static void fail(struct oauth_cache *c, bool permanent, long status,
		 const char *what, const char *detail)
{
	int64_t now = push_now_us();
	int64_t delay = backoff_delay_us(++c->fail_count, BACKOFF_BASE_US,
					 BACKOFF_CAP_US, NULL, NULL);
	char msg[64];

	/* At least a second between fetches, however the dice fall. */
	if (delay < USEC)
		delay = USEC;
	c->stats.failures++;
	c->have_err = true;
	c->last_err.permanent = permanent;
	c->last_err.http_status = status;
	c->next_fetch_us = now + delay;
	c->last_err.retry_at_us = c->next_fetch_us;
	snprintf(c->last_err.reason, sizeof c->last_err.reason, "%s%s%s",
		 what != NULL ? what : "", what != NULL ? ": " : "",
		 detail != NULL ? detail : "");
	snprintf(msg, sizeof msg, "%s access token fetch failed",
		 c->cfg.name);
	/* The key is the provider's ("account", "client_id"). */
	log_warn(msg, "%s=%s status=%ld permanent=%d reason=%s",
		 c->cfg.client_key, c->cfg.client, status, (int)permanent,
		 c->last_err.reason);
	if (token_usable(c, now))
		deliver(c, c->token, NULL);
	else
		deliver(c, NULL, &c->last_err);
}

/* A string member of `o`, or NULL. */
static const char *json_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void on_token(void *arg, const struct http_response *res)
{
	struct oauth_cache *c = arg;
	json_object *root = NULL, *v;
	const char *tok, *e, *d;
	long life = c->cfg.default_lifetime_s;
	int dmax = c->cfg.description_max > 0 ? c->cfg.description_max
		   : INT_MAX;
	char detail[160], msg[64];

	c->xfer = NULL;
	if (c->freeing)
		return;
	if (res->status == 0) {
		fail(c, false, 0, c->cfg.endpoint_name, res->error);
		return;
	}
	root = json_tokener_parse(res->body);
	if (res->status != 200) {
		e = json_str(root, "error");
		d = json_str(root, "error_description");
		snprintf(detail, sizeof detail, "HTTP %ld%s%s%s%.*s%s",
			 res->status, e ? " " : "", e ? e : "",
			 d ? " (" : "", dmax, d ? d : "", d ? ")" : "");
		/* 4xx: the provider refuses this credential; 5xx, 408 and
		 * 429: later. */
		fail(c, res->status >= 400 && res->status < 500 &&
		     res->status != 429 && res->status != 408,
		     res->status, c->cfg.endpoint_name, detail);
		json_object_put(root);
		return;
	}
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		json_object_put(root);
		fail(c, false, res->status, c->cfg.endpoint_name,
		     "no access_token in the answer");
		return;
	}
	/* It goes into "Authorization: Bearer ...": a CR or LF from a
	 * hostile token endpoint must not become a header of its own. */
	if (!hdrcheck_value_ok(json_object_get_string(v))) {
		json_object_put(root);
		fail(c, false, res->status, c->cfg.endpoint_name,
		     "the access_token is not a valid header value "
		     "(a control character)");
		return;
	}
	tok = json_object_get_string(v);
	if (json_object_object_get_ex(root, "expires_in", &v) &&
	    (json_object_is_type(v, json_type_int) ||
	     json_object_is_type(v, json_type_string))) {
		life = (long)json_object_get_int64(v);
		if (life <= 0)
			life = 1;
	}
	secret_free(c->token);
	c->token = mem_strdup(tok);
	/* Count from when we asked: the token may be older than its answer. */
	c->refresh_at_us = c->fetch_started_us +
			   oauth_cache_refresh_after(life) * USEC;
	c->usable_until_us = c->fetch_started_us + life * USEC -
			     (life >= 100 ? 10 * USEC : life * USEC / 10);
	c->fail_count = 0;
	c->have_err = false;
	c->stats.last_lifetime_s = life;
	/* json-c's copy of the token goes with root; wipe it first. */
	explicit_bzero((char *)tok, strlen(tok));
	json_object_put(root);
	snprintf(msg, sizeof msg, "%s access token fetched", c->cfg.name);
	log_debug(msg, "%s=%s expires_in=%ld", c->cfg.client_key,
		  c->cfg.client, life);
	deliver(c, c->token, NULL);
}

/* Make the request and POST it; failures are reported to waiters. */
static void start_fetch(struct oauth_cache *c, int64_t now_us)
{
	struct http_request req;
	char err[256], *body = NULL;
	size_t blen = 0;
	int rc;

	c->stats.fetches++;
	if (c->cfg.make_body(c->cfg.ctx, now_us, &body, &blen, err,
			     sizeof err) < 0) {
		fail(c, true, 0, NULL, err);
		return;
	}
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = c->cfg.token_url;
	req.ca_path = c->cfg.ca_path;
	req.headers = c->cfg.headers;
	req.body = body;
	req.body_len = blen;
	req.connect_timeout_ms = c->cfg.connect_timeout_ms;
	req.timeout_ms = c->cfg.request_timeout_ms;
	req.done = on_token;
	req.arg = c;
	c->fetch_started_us = now_us;
	rc = http_submit(c->http, &req, &c->xfer);
	explicit_bzero(body, blen);
	free(body);
	if (rc < 0) {
		c->xfer = NULL;
		fail(c, false, 0, "cannot send the token request",
		     strerror(-rc));
	}
}

const char *oauth_cache_token(struct oauth_cache *c, int64_t now_us)
{
	if (!token_usable(c, now_us))
		return NULL;
	if (now_us >= c->refresh_at_us && c->xfer == NULL &&
	    (!c->have_err || now_us >= c->next_fetch_us)) {
		char msg[64];

		snprintf(msg, sizeof msg, "%s access token due for refresh",
			 c->cfg.name);
		log_debug(msg, "%s=%s", c->cfg.client_key, c->cfg.client);
		start_fetch(c, now_us);
	}
	return c->token;
}

void oauth_cache_wait(struct oauth_cache *c, struct oauth_cache_waiter *w,
		      oauth_cache_ready_fn fn, void *arg)
{
	w->fn = fn;
	w->arg = arg;
	w->waiting = true;
	w->next = NULL;
	w->prev = c->waiters_tail;
	if (c->waiters_tail != NULL)
		c->waiters_tail->next = w;
	else
		c->waiters = w;
	c->waiters_tail = w;
	/* Decide on the next loop turn: never call back from in here. */
	if (c->xfer == NULL)
		uv_timer_start(&c->kick, on_kick, 0, 0);
}

void oauth_cache_cancel(struct oauth_cache *c, struct oauth_cache_waiter *w)
{
	if (w->waiting)
		waiter_unlink(c, w);
}

void oauth_cache_invalidate(struct oauth_cache *c, const char *token)
{
	if (c->token != NULL && token != NULL && strcmp(c->token, token) == 0) {
		secret_free(c->token);
		c->token = NULL;
		/* A rejected token is not a failed fetch: no backoff. */
		c->have_err = false;
	}
}

void oauth_cache_get_stats(const struct oauth_cache *c,
			   struct oauth_cache_stats *out)
{
	*out = c->stats;
}

struct oauth_cache *oauth_cache_new(uv_loop_t *loop, struct http *http,
				    const struct oauth_cache_config *cfg)
{
	struct oauth_cache *c = mem_alloc_zero(1, sizeof *c);

	c->http = http;
	c->client = mem_strdup(cfg->client);
	c->token_url = mem_strdup(cfg->token_url);
	c->ca_path = cfg->ca_path != NULL && cfg->ca_path[0]
		     ? mem_strdup(cfg->ca_path) : NULL;
	c->cfg = *cfg;
	c->cfg.client = c->client;
	c->cfg.token_url = c->token_url;
	c->cfg.ca_path = c->ca_path;
	uv_timer_init(loop, &c->kick);
	c->kick.data = c;
	return c;
}

static void on_kick_closed(uv_handle_t *h)
{
	free(h->data);
}

void oauth_cache_free(struct oauth_cache *c)
{
	struct oauth_cache_error e;

	if (c == NULL)
		return;
	memset(&e, 0, sizeof e);
	e.retry_at_us = push_now_us();
	snprintf(e.reason, sizeof e.reason, "cancelled");
	c->freeing = true;
	if (c->xfer != NULL)
		http_cancel(c->http, c->xfer);
	deliver(c, NULL, &e);
	c->cfg.ctx_free(c->cfg.ctx);
	secret_free(c->token);
	free(c->client);
	free(c->token_url);
	free(c->ca_path);
	uv_close((uv_handle_t *)&c->kick, on_kick_closed);
}
