/*
 * auth_wns.c - the WNS access-token cache.  See auth_wns.h.
 *
 * The state machine is auth_fcm's: `token` (NULL or usable until
 * `usable_until_us`, refreshed from `refresh_at_us`), `xfer` (the one
 * fetch in flight), and after a failed fetch `last_err` with
 * `next_fetch_us`.  Waiters are answered by deliver(), from the fetch's
 * callback or from the `kick` timer, never from inside auth_wns_wait().
 */
#include "auth_wns.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "auth_fcm.h"     /* auth_fcm_refresh_after(): the same schedule */
#include "backoff.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "push.h"

#define USEC 1000000LL
#define BACKOFF_BASE_US (1 * USEC)
#define BACKOFF_CAP_US (300 * USEC)

struct auth_wns {
	uv_loop_t *loop;
	struct http *http;
	char *client_id;
	char *form;               /* the request body: holds the secret */
	char *token_url;
	char *ca_path;
	long connect_timeout_ms, request_timeout_ms;

	char *token;
	int64_t refresh_at_us;
	int64_t usable_until_us;

	struct http_xfer *xfer;
	int64_t fetch_started_us;
	int fail_count;
	bool have_err;
	struct auth_wns_error last_err;
	int64_t next_fetch_us;

	struct auth_wns_waiter *waiters, *waiters_tail;
	uv_timer_t kick;
	bool freeing;
	struct auth_wns_stats stats;
};

static void start_fetch(struct auth_wns *a, int64_t now_us);

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Append s percent-encoded (RFC 3986 unreserved kept) to buf at *len. */
static void form_put(char *buf, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			buf[(*len)++] = (char)c;
		} else {
			buf[(*len)++] = '%';
			buf[(*len)++] = hex[c >> 4];
			buf[(*len)++] = hex[c & 15];
		}
	}
	buf[*len] = '\0';
}

char *auth_wns_form(const struct auth_wns_config *cfg)
{
	const char *scope = cfg->flow == AUTH_WNS_ENTRA
			    ? AUTH_WNS_ENTRA_SCOPE : AUTH_WNS_STORE_SCOPE;
	size_t cap = 3 * (strlen(cfg->client_id) +
			  strlen(cfg->client_secret) + strlen(scope)) + 128;
	char *buf = mem_alloc(cap);
	size_t len = 0;

	buf[0] = '\0';
	strcpy(buf, "grant_type=client_credentials&client_id=");
	len = strlen(buf);
	form_put(buf, &len, cfg->client_id);
	strcpy(buf + len, "&client_secret=");
	len += strlen(buf + len);
	form_put(buf, &len, cfg->client_secret);
	strcpy(buf + len, "&scope=");
	len += strlen(buf + len);
	form_put(buf, &len, scope);
	return buf;
}

static void waiter_unlink(struct auth_wns *a, struct auth_wns_waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		a->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		a->waiters_tail = w->prev;
	w->prev = w->next = NULL;
	w->waiting = false;
}

/* Answer the waiters queued on entry (new ones wait for the next round). */
static void deliver(struct auth_wns *a, const char *token,
		    const struct auth_wns_error *err)
{
	struct auth_wns_waiter *last = a->waiters_tail, *w;
	char *copy = token != NULL ? mem_strdup(token) : NULL;
	bool more = true;

	while (more && (w = a->waiters) != NULL) {
		more = w != last;
		waiter_unlink(a, w);
		w->fn(w->arg, copy, copy != NULL ? NULL : err);
	}
	wipe_free(copy);
}

static bool token_usable(const struct auth_wns *a, int64_t now_us)
{
	return a->token != NULL && now_us < a->usable_until_us;
}

static void on_kick(uv_timer_t *t)
{
	struct auth_wns *a = t->data;
	int64_t now = push_now_us();

	if (a->waiters == NULL)
		return;
	if (token_usable(a, now))
		deliver(a, a->token, NULL);
	else if (a->xfer != NULL)
		return;
	else if (a->have_err && now < a->next_fetch_us)
		deliver(a, NULL, &a->last_err);
	else
		start_fetch(a, now);
}

static void fail(struct auth_wns *a, bool permanent, long status,
		 const char *fmt, const char *detail)
{
	int64_t now = push_now_us();
	int64_t delay = backoff_delay_us(++a->fail_count, BACKOFF_BASE_US,
					 BACKOFF_CAP_US, NULL, NULL);

	if (delay < USEC)
		delay = USEC;
	a->stats.failures++;
	a->have_err = true;
	a->last_err.permanent = permanent;
	a->last_err.http_status = status;
	a->next_fetch_us = now + delay;
	a->last_err.retry_at_us = a->next_fetch_us;
	snprintf(a->last_err.reason, sizeof a->last_err.reason, fmt,
		 detail != NULL ? detail : "");
	log_warn("wns access token fetch failed",
		 "client_id=%s status=%ld permanent=%d reason=%s",
		 a->client_id, status, (int)permanent, a->last_err.reason);
	if (token_usable(a, now))
		deliver(a, a->token, NULL);
	else
		deliver(a, NULL, &a->last_err);
}

static void on_token(void *arg, const struct http_response *res)
{
	struct auth_wns *a = arg;
	json_object *root = NULL, *v;
	const char *tok;
	long life = 86400;
	char detail[160];

	a->xfer = NULL;
	if (a->freeing)
		return;
	if (res->status == 0) {
		fail(a, false, 0, "wns token endpoint: %s", res->error);
		return;
	}
	root = json_tokener_parse(res->body);
	if (res->status != 200) {
		const char *e = NULL, *d = NULL;

		if (root != NULL &&
		    json_object_is_type(root, json_type_object)) {
			if (json_object_object_get_ex(root, "error", &v) &&
			    json_object_is_type(v, json_type_string))
				e = json_object_get_string(v);
			if (json_object_object_get_ex(root,
					"error_description", &v) &&
			    json_object_is_type(v, json_type_string))
				d = json_object_get_string(v);
		}
		snprintf(detail, sizeof detail, "HTTP %ld%s%s%s%.80s%s",
			 res->status, e ? " " : "", e ? e : "",
			 d ? " (" : "", d ? d : "", d ? ")" : "");
		fail(a, res->status >= 400 && res->status < 500 &&
		     res->status != 429 && res->status != 408,
		     res->status, "wns token endpoint: %s", detail);
		json_object_put(root);
		return;
	}
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		json_object_put(root);
		fail(a, false, res->status, "wns token endpoint: %s",
		     "no access_token in the answer");
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
	wipe_free(a->token);
	a->token = mem_strdup(tok);
	a->refresh_at_us = a->fetch_started_us +
			   auth_fcm_refresh_after(life) * USEC;
	a->usable_until_us = a->fetch_started_us + life * USEC -
			     (life >= 100 ? 10 * USEC : life * USEC / 10);
	a->fail_count = 0;
	a->have_err = false;
	a->stats.last_lifetime_s = life;
	/* json-c's copy of the token goes with root; wipe it first. */
	explicit_bzero((char *)tok, strlen(tok));
	json_object_put(root);
	log_debug("wns access token fetched", "client_id=%s expires_in=%ld",
		  a->client_id, life);
	deliver(a, a->token, NULL);
}

static void start_fetch(struct auth_wns *a, int64_t now_us)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", "Expect:", NULL
	};
	struct http_request req;
	int rc;

	a->stats.fetches++;
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = a->token_url;
	req.ca_path = a->ca_path;
	req.headers = headers;
	req.body = a->form;
	req.body_len = strlen(a->form);
	req.connect_timeout_ms = a->connect_timeout_ms;
	req.timeout_ms = a->request_timeout_ms;
	req.done = on_token;
	req.arg = a;
	a->fetch_started_us = now_us;
	rc = http_submit(a->http, &req, &a->xfer);
	if (rc < 0) {
		a->xfer = NULL;
		fail(a, false, 0, "cannot send the token request: %s",
		     strerror(-rc));
	}
}

const char *auth_wns_token(struct auth_wns *a, int64_t now_us)
{
	if (!token_usable(a, now_us))
		return NULL;
	if (now_us >= a->refresh_at_us && a->xfer == NULL &&
	    (!a->have_err || now_us >= a->next_fetch_us))
		start_fetch(a, now_us);
	return a->token;
}

void auth_wns_wait(struct auth_wns *a, struct auth_wns_waiter *w,
		   auth_wns_ready_fn fn, void *arg)
{
	w->fn = fn;
	w->arg = arg;
	w->waiting = true;
	w->next = NULL;
	w->prev = a->waiters_tail;
	if (a->waiters_tail != NULL)
		a->waiters_tail->next = w;
	else
		a->waiters = w;
	a->waiters_tail = w;
	if (a->xfer == NULL)
		uv_timer_start(&a->kick, on_kick, 0, 0);
}

void auth_wns_cancel(struct auth_wns *a, struct auth_wns_waiter *w)
{
	if (w->waiting)
		waiter_unlink(a, w);
}

void auth_wns_invalidate(struct auth_wns *a, const char *token)
{
	if (a->token != NULL && token != NULL && strcmp(a->token, token) == 0) {
		wipe_free(a->token);
		a->token = NULL;
		a->have_err = false;
	}
}

void auth_wns_get_stats(const struct auth_wns *a, struct auth_wns_stats *out)
{
	*out = a->stats;
}

int auth_wns_new(struct auth_wns **out, uv_loop_t *loop, struct http *http,
		 const struct auth_wns_config *cfg, char *err, size_t errlen)
{
	struct auth_wns *a;
	char url[512];

	if (cfg->client_id == NULL || cfg->client_id[0] == '\0') {
		snprintf(err, errlen, "no client_id");
		return -EINVAL;
	}
	if (cfg->client_secret == NULL || cfg->client_secret[0] == '\0') {
		snprintf(err, errlen, "no client_secret");
		return -EINVAL;
	}
	if (cfg->token_url != NULL && cfg->token_url[0] != '\0') {
		snprintf(url, sizeof url, "%s", cfg->token_url);
	} else if (cfg->flow == AUTH_WNS_ENTRA) {
		const char *t = cfg->tenant_id;

		if (t == NULL || t[0] == '\0') {
			snprintf(err, errlen, "entra flow needs a tenant_id");
			return -EINVAL;
		}
		for (const char *c = t; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '.') {
				snprintf(err, errlen, "bad tenant_id");
				return -EINVAL;
			}
		snprintf(url, sizeof url, AUTH_WNS_ENTRA_URL_FMT, t);
	} else {
		snprintf(url, sizeof url, "%s", AUTH_WNS_STORE_URL);
	}
	a = mem_alloc_zero(1, sizeof *a);
	a->loop = loop;
	a->http = http;
	a->client_id = mem_strdup(cfg->client_id);
	a->form = auth_wns_form(cfg);
	a->token_url = mem_strdup(url);
	a->ca_path = cfg->ca_path != NULL && cfg->ca_path[0]
		     ? mem_strdup(cfg->ca_path) : NULL;
	a->connect_timeout_ms = cfg->connect_timeout_ms;
	a->request_timeout_ms = cfg->request_timeout_ms;
	uv_timer_init(loop, &a->kick);
	a->kick.data = a;
	*out = a;
	return 0;
}

static void on_kick_closed(uv_handle_t *h)
{
	free(h->data);
}

void auth_wns_free(struct auth_wns *a)
{
	struct auth_wns_error e;

	if (a == NULL)
		return;
	memset(&e, 0, sizeof e);
	e.retry_at_us = push_now_us();
	snprintf(e.reason, sizeof e.reason, "cancelled");
	a->freeing = true;
	if (a->xfer != NULL)
		http_cancel(a->http, a->xfer);
	deliver(a, NULL, &e);
	wipe_free(a->token);
	wipe_free(a->form);
	free(a->client_id);
	free(a->token_url);
	free(a->ca_path);
	uv_close((uv_handle_t *)&a->kick, on_kick_closed);
}
