/*
 * auth_fcm.c - the FCM OAuth2 access-token cache.  See auth_fcm.h.
 *
 * State: `token` (NULL or a usable token with `refresh_at_us` and
 * `usable_until_us`), `xfer` (a fetch in flight, at most one), and after
 * a failed fetch `last_err` with `next_fetch_us` (backoff).  Waiters are
 * answered by deliver(), from the fetch's callback or from the `kick`
 * timer when the answer is already known (so never from inside
 * auth_fcm_wait()).
 */
#include "auth_fcm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backoff.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "mem.h"
#include "push.h"

#define USEC 1000000LL
#define BACKOFF_BASE_US (1 * USEC)
#define BACKOFF_CAP_US (300 * USEC)
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct auth_fcm {
	uv_loop_t *loop;
	struct http *http;
	struct jwt_key *key;
	char *client_email;
	char *key_id;
	char *token_url;
	char *audience;
	char *ca_path;
	long connect_timeout_ms, request_timeout_ms;

	char *token;
	int64_t refresh_at_us;
	int64_t usable_until_us;

	struct http_xfer *xfer;
	int64_t fetch_started_us;
	int fail_count;
	bool have_err;
	struct auth_fcm_error last_err;
	int64_t next_fetch_us;

	struct auth_fcm_waiter *waiters, *waiters_tail;
	uv_timer_t kick;
	bool freeing;
	struct auth_fcm_stats stats;
};

static void start_fetch(struct auth_fcm *a, int64_t now_us);

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

long auth_fcm_refresh_after(long lifetime_s)
{
	long margin = lifetime_s / 5;

	if (margin < 300)
		margin = 300;
	if (margin > lifetime_s / 2)
		margin = lifetime_s / 2;
	return lifetime_s - margin;
}

static void waiter_unlink(struct auth_fcm *a, struct auth_fcm_waiter *w)
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

/*
 * Answer every waiter with `token` or `err`.  Each is unlinked before
 * its callback, which may queue new waiters: those are left for the
 * next round (the loop stops at the tail seen on entry).
 */
static void deliver(struct auth_fcm *a, const char *token,
		    const struct auth_fcm_error *err)
{
	struct auth_fcm_waiter *last = a->waiters_tail, *w;
	char *copy = token != NULL ? mem_strdup(token) : NULL;
	bool more = true;

	while (more && (w = a->waiters) != NULL) {
		more = w != last;
		waiter_unlink(a, w);
		w->fn(w->arg, copy, copy != NULL ? NULL : err);
	}
	wipe_free(copy);
}

static bool token_usable(const struct auth_fcm *a, int64_t now_us)
{
	return a->token != NULL && now_us < a->usable_until_us;
}

static void on_kick(uv_timer_t *t)
{
	struct auth_fcm *a = t->data;
	int64_t now = push_now_us();

	if (a->waiters == NULL)
		return;
	if (token_usable(a, now))
		deliver(a, a->token, NULL);
	else if (a->xfer != NULL)
		return;         /* the fetch will answer */
	else if (a->have_err && now < a->next_fetch_us)
		deliver(a, NULL, &a->last_err);
	else
		start_fetch(a, now);
}

static void fail(struct auth_fcm *a, bool permanent, long status,
		 const char *fmt, const char *detail)
{
	int64_t now = push_now_us();
	int64_t delay = backoff_delay_us(++a->fail_count, BACKOFF_BASE_US,
					 BACKOFF_CAP_US, NULL, NULL);

	/* At least a second between fetches, however the dice fall. */
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
	log_warn("fcm access token fetch failed",
		 "account=%s status=%ld permanent=%d reason=%s",
		 a->client_email, status, (int)permanent, a->last_err.reason);
	if (token_usable(a, now))
		deliver(a, a->token, NULL);
	else
		deliver(a, NULL, &a->last_err);
}

static void on_token(void *arg, const struct http_response *res)
{
	struct auth_fcm *a = arg;
	json_object *root = NULL, *v;
	const char *tok;
	long life = 3600;
	char detail[160];

	a->xfer = NULL;
	if (a->freeing)
		return;
	if (res->status == 0) {
		fail(a, false, 0, "oauth token endpoint: %s", res->error);
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
		snprintf(detail, sizeof detail, "HTTP %ld%s%s%s%s%s",
			 res->status, e ? " " : "", e ? e : "",
			 d ? " (" : "", d ? d : "", d ? ")" : "");
		/* 4xx: Google refuses this credential; 5xx and 429: later. */
		fail(a, res->status >= 400 && res->status < 500 &&
		     res->status != 429 && res->status != 408,
		     res->status, "oauth token endpoint: %s", detail);
		json_object_put(root);
		return;
	}
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0) {
		json_object_put(root);
		fail(a, false, res->status, "oauth token endpoint: %s",
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
	/* Count from when we asked: the token may be older than its answer. */
	a->refresh_at_us = a->fetch_started_us +
			   auth_fcm_refresh_after(life) * USEC;
	a->usable_until_us = a->fetch_started_us + life * USEC -
			     (life >= 100 ? 10 * USEC : life * USEC / 10);
	a->fail_count = 0;
	a->have_err = false;
	a->stats.last_lifetime_s = life;
	json_object_put(root);
	log_debug("fcm access token fetched", "account=%s expires_in=%ld",
		  a->client_email, life);
	deliver(a, a->token, NULL);
}

/* Sign an assertion and POST it; failures are reported to waiters. */
static void start_fetch(struct auth_fcm *a, int64_t now_us)
{
	json_object *hdr = json_object_new_object();
	json_object *cl = json_object_new_object();
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", NULL
	};
	static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth"
				    "%3Agrant-type%3Ajwt-bearer&assertion=";
	struct http_request req;
	char err[256], *jwt = NULL, *body;
	int64_t iat = now_us / USEC;
	size_t blen;
	int rc;

	json_object_object_add(hdr, "alg", json_object_new_string("RS256"));
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
	if (a->key_id != NULL)
		json_object_object_add(hdr, "kid",
				       json_object_new_string(a->key_id));
	json_object_object_add(cl, "iss",
			       json_object_new_string(a->client_email));
	json_object_object_add(cl, "scope",
			       json_object_new_string(AUTH_FCM_SCOPE));
	json_object_object_add(cl, "aud",
			       json_object_new_string(a->audience));
	json_object_object_add(cl, "iat", json_object_new_int64(iat));
	json_object_object_add(cl, "exp", json_object_new_int64(iat + 3600));
	rc = jwt_sign(a->key, JWT_ALG_RS256,
		      json_object_to_json_string_ext(hdr, JSON_FLAGS),
		      json_object_to_json_string_ext(cl, JSON_FLAGS),
		      &jwt, err, sizeof err);
	json_object_put(hdr);
	json_object_put(cl);
	a->stats.fetches++;
	if (rc < 0) {
		fail(a, true, 0, "cannot sign the oauth assertion: %s", err);
		return;
	}
	/* A JWT is base64url and dots: nothing to percent-encode. */
	blen = sizeof grant - 1 + strlen(jwt);
	body = mem_alloc(blen + 1);
	memcpy(body, grant, sizeof grant - 1);
	memcpy(body + sizeof grant - 1, jwt, strlen(jwt) + 1);
	free(jwt);

	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = a->token_url;
	req.ca_path = a->ca_path;
	req.headers = headers;
	req.body = body;
	req.body_len = blen;
	req.connect_timeout_ms = a->connect_timeout_ms;
	req.timeout_ms = a->request_timeout_ms;
	req.done = on_token;
	req.arg = a;
	a->fetch_started_us = now_us;
	rc = http_submit(a->http, &req, &a->xfer);
	explicit_bzero(body, blen);
	free(body);
	if (rc < 0) {
		a->xfer = NULL;
		fail(a, false, 0, "cannot send the token request: %s",
		     strerror(-rc));
	}
}

const char *auth_fcm_token(struct auth_fcm *a, int64_t now_us)
{
	if (!token_usable(a, now_us))
		return NULL;
	if (now_us >= a->refresh_at_us && a->xfer == NULL &&
	    (!a->have_err || now_us >= a->next_fetch_us)) {
		log_debug("fcm access token due for refresh", "account=%s",
			  a->client_email);
		start_fetch(a, now_us);
	}
	return a->token;
}

void auth_fcm_wait(struct auth_fcm *a, struct auth_fcm_waiter *w,
		   auth_fcm_ready_fn fn, void *arg)
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
	/* Decide on the next loop turn: never call back from in here. */
	if (a->xfer == NULL)
		uv_timer_start(&a->kick, on_kick, 0, 0);
}

void auth_fcm_cancel(struct auth_fcm *a, struct auth_fcm_waiter *w)
{
	if (w->waiting)
		waiter_unlink(a, w);
}

void auth_fcm_invalidate(struct auth_fcm *a, const char *token)
{
	if (a->token != NULL && token != NULL && strcmp(a->token, token) == 0) {
		wipe_free(a->token);
		a->token = NULL;
		/* A rejected token is not a failed fetch: no backoff. */
		a->have_err = false;
	}
}

void auth_fcm_get_stats(const struct auth_fcm *a, struct auth_fcm_stats *out)
{
	*out = a->stats;
}

int auth_fcm_new(struct auth_fcm **out, uv_loop_t *loop, struct http *http,
		 const struct auth_fcm_config *cfg, char *err, size_t errlen)
{
	struct auth_fcm *a;
	int rc;

	if (cfg->client_email == NULL || cfg->client_email[0] == '\0') {
		snprintf(err, errlen, "service account has no client_email");
		return -EINVAL;
	}
	if (cfg->private_key_pem == NULL || cfg->private_key_pem[0] == '\0') {
		snprintf(err, errlen, "service account has no private_key");
		return -EINVAL;
	}
	if (cfg->token_url == NULL || cfg->token_url[0] == '\0') {
		snprintf(err, errlen, "no token endpoint");
		return -EINVAL;
	}
	a = mem_alloc_zero(1, sizeof *a);
	rc = jwt_key_from_pem(&a->key, cfg->private_key_pem,
			      strlen(cfg->private_key_pem), err, errlen);
	if (rc < 0) {
		free(a);
		return rc;
	}
	a->loop = loop;
	a->http = http;
	a->client_email = mem_strdup(cfg->client_email);
	a->key_id = cfg->private_key_id != NULL && cfg->private_key_id[0]
		    ? mem_strdup(cfg->private_key_id) : NULL;
	a->token_url = mem_strdup(cfg->token_url);
	a->audience = mem_strdup(cfg->audience != NULL && cfg->audience[0]
				 ? cfg->audience : cfg->token_url);
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
	struct auth_fcm *a = h->data;

	free(a);
}

void auth_fcm_free(struct auth_fcm *a)
{
	struct auth_fcm_error e;

	if (a == NULL)
		return;
	memset(&e, 0, sizeof e);
	e.retry_at_us = push_now_us();
	snprintf(e.reason, sizeof e.reason, "cancelled");
	a->freeing = true;
	if (a->xfer != NULL)
		http_cancel(a->http, a->xfer);
	deliver(a, NULL, &e);
	jwt_key_free(a->key);
	wipe_free(a->token);
	free(a->client_email);
	free(a->key_id);
	free(a->token_url);
	free(a->audience);
	free(a->ca_path);
	uv_close((uv_handle_t *)&a->kick, on_kick_closed);
}
