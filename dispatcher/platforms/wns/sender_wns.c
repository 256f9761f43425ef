/*
 * sender_wns.c - Windows Push Notification Services (PROTOCOLS.md 3).
 *
 * A push becomes up to four requests to its channel URL, one per part
 * (sender_wns_build):
 *
 *   toast  when the payload has a title or body (or wns.toast is an XML
 *          string, which is sent as it is; wns.toast false: no toast):
 *          <toast launch="..."><visual><binding template="ToastGeneric">
 *          <text>title</text><text>body</text><image src="image"/>
 *          </binding></visual><audio src="sound"/></toast>
 *          launch is wns.launch, else the JSON text of data; audio only
 *          for an ms-winsoundevent: or ms-appx: sound.
 *   badge  when the payload has a badge (or wns.badge: a number, or a
 *          glyph name such as "alert"; false: no badge):
 *          <badge value="3"/>
 *   tile   only when asked: wns.tile true builds TileMedium and TileWide
 *          bindings from title and body; an XML string is sent as it is.
 *   raw    wns.raw (a string) as it is, or, for a data-only push (no
 *          other part), the JSON text of data; application/octet-stream.
 *
 * Headers of every part: Authorization, X-WNS-Type, Content-Type
 * (text/xml; raw application/octet-stream), X-WNS-TTL (seconds left
 * until expires_at), X-WNS-PRIORITY (1 for a high push, 3 for a low one,
 * else the type's default), X-WNS-RequestForStatus (wns.request_for_status),
 * X-WNS-Cache-Policy (wns.cache_policy, on badge, tile and raw), X-WNS-Tag
 * (tiles only: wns.tag, else the push's collapse key when it is 1-16
 * letters or digits), and an empty Expect: (no 100-continue).  XML is
 * escaped (xml.c); each body is at most 5000 bytes.
 *
 * Sending: the channel URL's host must match the credential's
 * channel_hosts (hostlist.c) or the push fails without a request.  The
 * parts go out at once, each with the cached OAuth token (auth_wns.h
 * makes the oauth_cache); a 401 drops the token and resends that part
 * once with a new one (not an attempt); a second 401 fails it with
 * auth_failure.  The multi-part send (multipart.h: parts_combine() makes
 * the push's result; parts accepted before a retry are not sent again)
 * and the life cycle of a send (send.h) are shared with MPNS.
 */
#include "platforms/wns/sender_wns.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/hdrcheck.h"
#include "net/hostlist.h"
#include "net/http.h"
#include "platforms/jsonget.h"
#include "platforms/multipart.h"
#include "platforms/secret.h"
#include "platforms/wns/auth_wns.h"
#include "platforms/xml.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define DEFAULT_HOSTS "*.notify.windows.com"

/* ---- building (pure) --------------------------------------------- */

static bool is_false(json_object *v)
{
	return v != NULL && json_object_is_type(v, json_type_boolean) &&
	       !json_object_get_boolean(v);
}

static bool is_true(json_object *v)
{
	return v != NULL && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static bool alnum_1_16(const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s; s++, n++)
		if (!isalnum((unsigned char)*s))
			return false;
	return n >= 1 && n <= 16;
}

static void hdr(struct sender_wns_part *p, const char *fmt, const char *v)
{
	size_t i = 0, n = strlen(fmt) + strlen(v) + 1;

	while (p->headers[i] != NULL)
		i++;
	if (i >= SENDER_WNS_MAX_HEADERS)
		return;
	p->headers[i] = mem_alloc(n);
	snprintf(p->headers[i], n, fmt, v);
}

static char *toast_xml(json_object *pl, json_object *wns)
{
	const char *title = jsonget_str(pl, "title");
	const char *body = jsonget_str(pl, "body");
	const char *image = jsonget_str(pl, "image");
	const char *sound = jsonget_str(pl, "sound");
	const char *launch = jsonget_str(wns, "launch");
	json_object *data = jsonget(pl, "data");
	struct xml x;

	xml_init(&x);
	xml_open(&x, "toast");
	if (launch != NULL)
		xml_attr(&x, "launch", launch);
	else if (data != NULL && json_object_is_type(data, json_type_object))
		xml_attr(&x, "launch",
			 json_object_to_json_string_ext(data, JSON_FLAGS));
	xml_open(&x, "visual");
	xml_open(&x, "binding");
	xml_attr(&x, "template", "ToastGeneric");
	xml_elem_text(&x, "text", title);
	xml_elem_text(&x, "text", body);
	if (image != NULL) {
		xml_open(&x, "image");
		xml_attr(&x, "src", image);
		xml_close(&x);
	}
	xml_close(&x);
	xml_close(&x);
	if (sound != NULL && (strncmp(sound, "ms-winsoundevent:", 17) == 0 ||
			      strncmp(sound, "ms-appx:", 8) == 0)) {
		xml_open(&x, "audio");
		xml_attr(&x, "src", sound);
		xml_close(&x);
	}
	return xml_finish(&x, NULL);
}

static char *tile_xml(json_object *pl)
{
	static const char *const sizes[] = { "TileMedium", "TileWide" };
	struct xml x;

	xml_init(&x);
	xml_open(&x, "tile");
	xml_open(&x, "visual");
	for (size_t i = 0; i < 2; i++) {
		xml_open(&x, "binding");
		xml_attr(&x, "template", sizes[i]);
		xml_elem_text(&x, "text", jsonget_str(pl, "title"));
		if (jsonget_str(pl, "body") != NULL) {
			xml_open(&x, "text");
			xml_attr(&x, "hint-wrap", "true");
			xml_text(&x, jsonget_str(pl, "body"));
			xml_close(&x);
		}
		xml_close(&x);
	}
	return xml_finish(&x, NULL);
}

static char *badge_xml(const char *value)
{
	struct xml x;

	xml_init(&x);
	xml_open(&x, "badge");
	xml_attr(&x, "value", value);
	return xml_finish(&x, NULL);
}

static struct sender_wns_part *add_part(struct sender_wns_request *r,
					const char *name, char *body)
{
	struct sender_wns_part *p = &r->parts[r->n++];
	char type[32];

	memset(p, 0, sizeof *p);
	p->name = name;
	p->body = body;
	/* NULL: an XML document past its cap (xml.h), over the limit. */
	p->body_len = body != NULL ? strlen(body) : SENDER_WNS_MAX_PAYLOAD + 1;
	snprintf(type, sizeof type, "wns/%s", name);
	hdr(p, "X-WNS-Type: %s", type);
	hdr(p, "Content-Type: %s", strcmp(name, "raw") == 0
	    ? "application/octet-stream" : "text/xml");
	return p;
}

void sender_wns_request_free(struct sender_wns_request *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->parts[i].body);
		for (size_t j = 0; r->parts[i].headers[j] != NULL; j++)
			free(r->parts[i].headers[j]);
	}
	memset(r, 0, sizeof *r);
}

int sender_wns_build(const struct push_item *item, int64_t now_us,
		     struct sender_wns_request *out, struct push_result *res)
{
	json_object *pl, *wns, *v;
	const char *cache = NULL, *tag = NULL;
	char buf[64], why[128];
	int rc = -EINVAL;

	memset(out, 0, sizeof *out);
	if (item->expires_at_us != 0 && item->expires_at_us <= now_us) {
		push_result_set(res, PUSH_OUTCOME_EXPIRED,
				"expired before sending");
		return -EINVAL;
	}
	pl = sender_parse_payload(item->payload);
	if (pl == NULL || !json_object_is_type(pl, json_type_object)) {
		json_object_put(pl);
		push_result_set(res, PUSH_OUTCOME_FAILED,
				sender_payload_why(item->payload));
		return -EINVAL;
	}
	wns = jsonget(pl, "wns");
	if (wns != NULL && !json_object_is_type(wns, json_type_object)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"the wns override is not an object");
		goto out;
	}
	if ((v = jsonget(wns, "cache_policy")) != NULL) {
		cache = json_object_is_type(v, json_type_string)
			? json_object_get_string(v) : "";
		if (strcmp(cache, "cache") && strcmp(cache, "no-cache")) {
			push_result_set(res, PUSH_OUTCOME_FAILED,
					"wns.cache_policy must be \"cache\" or "
					"\"no-cache\"");
			goto out;
		}
	}
	if ((v = jsonget(wns, "tag")) != NULL) {
		tag = json_object_is_type(v, json_type_string)
		      ? json_object_get_string(v) : "";
		if (!alnum_1_16(tag)) {
			push_result_set(res, PUSH_OUTCOME_FAILED,
					"wns.tag must be 1 to 16 letters or "
					"digits");
			goto out;
		}
	} else if (alnum_1_16(item->collapse_key)) {
		tag = item->collapse_key;
	}

	/* toast */
	v = jsonget(wns, "toast");
	if (v != NULL && json_object_is_type(v, json_type_string))
		add_part(out, "toast", mem_strdup(json_object_get_string(v)));
	else if (!is_false(v) &&
		 (jsonget_str(pl, "title") || jsonget_str(pl, "body")))
		add_part(out, "toast", toast_xml(pl, wns));
	/* badge */
	v = jsonget(wns, "badge");
	if (v == NULL)
		v = jsonget(pl, "badge");
	if (v != NULL && json_object_is_type(v, json_type_int)) {
		snprintf(buf, sizeof buf, "%" PRId64, json_object_get_int64(v));
		add_part(out, "badge", badge_xml(buf));
	} else if (v != NULL && json_object_is_type(v, json_type_string)) {
		add_part(out, "badge", badge_xml(json_object_get_string(v)));
	}
	/* tile */
	v = jsonget(wns, "tile");
	if (v != NULL && json_object_is_type(v, json_type_string))
		add_part(out, "tile", mem_strdup(json_object_get_string(v)));
	else if (is_true(v))
		add_part(out, "tile", tile_xml(pl));
	/* raw */
	v = jsonget(wns, "raw");
	if (v != NULL && json_object_is_type(v, json_type_string))
		add_part(out, "raw", mem_strdup(json_object_get_string(v)));
	else if (out->n == 0 && (v = jsonget(pl, "data")) != NULL &&
		 json_object_is_type(v, json_type_object))
		add_part(out, "raw", mem_strdup(
			json_object_to_json_string_ext(v, JSON_FLAGS)));
	if (out->n == 0) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"nothing to send to WNS (no title, body, "
				"badge, data or wns part)");
		goto out;
	}

	for (size_t i = 0; i < out->n; i++) {
		struct sender_wns_part *p = &out->parts[i];
		bool tile = strcmp(p->name, "tile") == 0;
		bool toast = strcmp(p->name, "toast") == 0;

		if (p->body_len == 0 || p->body_len > SENDER_WNS_MAX_PAYLOAD) {
			snprintf(why, sizeof why, "wns %s payload %s",
				 p->name, p->body_len ? "over 5000 bytes"
				 : "is empty");
			push_result_set(res, PUSH_OUTCOME_FAILED, why);
			goto out;
		}
		if (item->expires_at_us != 0) {
			int64_t ttl = (item->expires_at_us - now_us +
				       USEC - 1) / USEC;

			snprintf(buf, sizeof buf, "%" PRId64, ttl);
			hdr(p, "X-WNS-TTL: %s", buf);
		}
		if (item->priority == PUSH_PRIORITY_HIGH)
			hdr(p, "X-WNS-PRIORITY: %s", "1");
		else if (item->priority == PUSH_PRIORITY_LOW)
			hdr(p, "X-WNS-PRIORITY: %s", "3");
		if (is_true(jsonget(wns, "request_for_status")))
			hdr(p, "X-WNS-RequestForStatus: %s", "true");
		if (cache != NULL && !toast)
			hdr(p, "X-WNS-Cache-Policy: %s", cache);
		if (tag != NULL && tile)
			hdr(p, "X-WNS-Tag: %s", tag);
	}
	rc = 0;
out:
	if (rc < 0)
		sender_wns_request_free(out);
	json_object_put(pl);
	return rc;
}

/* ---- classification (pure) --------------------------------------- */

static void reason(struct push_result *res, const char *s)
{
	snprintf(res->reason, sizeof res->reason, "%s", s);
}

void sender_wns_classify(const struct sender_wns_answer *ans, int attempts,
			 int max_attempts, bool retry_ambiguous,
			 int64_t now_us, int64_t backoff_us,
			 struct push_result *res)
{
	long st = ans->status;
	int64_t ra = 0, at;
	bool has_ra = backoff_parse_retry_after(ans->retry_after, now_us,
						&ra) == 0;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	if (ans->msg_id != NULL)
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 ans->msg_id);
	at = now_us + backoff_us;
	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %.60s",
			 ans->error ? ans->error : "unknown error");
		if (!retry_ambiguous && http_err_ambiguous(ans->err))
			res->outcome = PUSH_OUTCOME_UNCERTAIN;
		else
			send_retry_or_fail(res, attempts, max_attempts, at);
		return;
	}
	if (st >= 200 && st < 300) {
		const char *w = ans->wns_status;

		if (w != NULL && strcasecmp(w, "channelthrottled") == 0) {
			reason(res, "channelthrottled");
			res->throttled = true;
			if (at < now_us + SENDER_WNS_THROTTLE_WAIT_US)
				at = now_us + SENDER_WNS_THROTTLE_WAIT_US;
			send_retry_or_fail(res, attempts, max_attempts,
					   has_ra ? ra : at);
			return;
		}
		/* received, or dropped: accepted, not to be retried (3.4). */
		res->outcome = PUSH_OUTCOME_SENT;
		reason(res, w != NULL && strcasecmp(w, "dropped") == 0
		       ? "dropped" : "received");
		return;
	}
	switch (st) {
	case 400:
		res->outcome = PUSH_OUTCOME_FAILED;
		reason(res, "bad request");
		break;
	case 401:
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		res->reauth = true;
		reason(res, "unauthorized");
		break;
	case 403:
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		reason(res, "forbidden (credential not for this channel)");
		break;
	case 404:
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		reason(res, "channel not found");
		break;
	case 405:
		res->outcome = PUSH_OUTCOME_FAILED;
		reason(res, "method not allowed");
		break;
	case 406:
		res->throttled = true;
		reason(res, "throttled");
		if (at < now_us + SENDER_WNS_THROTTLE_WAIT_US)
			at = now_us + SENDER_WNS_THROTTLE_WAIT_US;
		send_retry_or_fail(res, attempts, max_attempts,
				   has_ra ? ra : at);
		break;
	case 410:
		if (ans->error_desc != NULL &&
		    strcasestr(ans->error_desc, "domain blocked") != NULL) {
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
			reason(res, "domain blocked");
		} else {
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
			reason(res, "channel expired");
		}
		break;
	case 413:
		res->outcome = PUSH_OUTCOME_FAILED;
		reason(res, "payload too large");
		break;
	case 500:
	case 503:
	case 408:
	case 429:
		reason(res, st == 500 ? "internal error" : st == 503
		       ? "unavailable" : st == 408 ? "request timeout"
		       : "too many requests");
		res->throttled = st == 429;
		if (has_ra && ra > at)
			at = ra;
		send_retry_or_fail(res, attempts, max_attempts, at);
		break;
	default:
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);
		if (st >= 500 && st < 600) {
			/* Not WNS's own answer (a front end's): it may have
			 * been delivered. */
			if (!retry_ambiguous)
				res->outcome = PUSH_OUTCOME_UNCERTAIN;
			else
				send_retry_or_fail(res, attempts, max_attempts,
						   has_ra && ra > at ? ra : at);
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
		}
		break;
	}
}

/* ---- the sender -------------------------------------------------- */

struct sender_cred {
	struct multipart_cred base;     /* env, queue, closing, memo */
	char *client_id;
	char *endpoint;                 /* origin override or NULL */
	char *ca_path;
	bool retry_ambiguous;
	struct hostlist *hosts;
	struct oauth_cache *auth;
};

struct wns_send {
	struct multipart_send mp;       /* item, done, parts, url */
	struct sender_wns_request req;
};

static struct wns_send *wns_of(const struct multipart_part *p)
{
	return send_entry(p->send, struct wns_send, mp);
}

static struct sender_cred *cred_of(const struct multipart_part *p)
{
	return send_entry(multipart_cred_of(p->send), struct sender_cred,
			  base);
}

static void wns_free(struct send *b)
{
	struct wns_send *s = send_entry(multipart_of(b), struct wns_send, mp);

	multipart_send_release(&s->mp);
	sender_wns_request_free(&s->req);
	free(s);
}

static const struct send_kind wns_kind = {
	.done_event = "wns push done",
	.backoff_base_us = SENDER_WNS_BACKOFF_BASE_US,
	.backoff_cap_us = SENDER_WNS_BACKOFF_CAP_US,
	.free = wns_free,
	.cancel = multipart_cancel,
};

static void post(struct multipart_part *p, const char *token);

static void on_auth(void *arg, const char *token,
		    const struct oauth_cache_error *err)
{
	struct multipart_part *p = arg;
	struct push_result res;

	if (token != NULL) {
		post(p, token);
		return;
	}
	/* The token service's reason, its first 200 bytes. */
	send_auth_failed(&p->send->base, err, 200, &res);
	multipart_part_done(p, &res);
}

/* The part's token, now or when the cache has one (multipart start). */
static void get_token(struct multipart_part *p)
{
	struct sender_cred *cred = cred_of(p);
	const char *tok = oauth_cache_token(cred->auth, push_now_us());

	p->active = true;
	if (tok != NULL)
		post(p, tok);
	else
		oauth_cache_wait(cred->auth, &p->waiter, on_auth, p);
}

/* cred_close(): a part waiting for its token stops waiting. */
static void unwait(struct multipart_part *p)
{
	oauth_cache_cancel(cred_of(p)->auth, &p->waiter);
}

static const struct multipart_ops wns_parts = {
	.start = get_token,
	.unwait = unwait,
};

/* Answer headers a debug push's trace keeps. */
static const char *const wns_trace_headers[] = { "x-wns-status",
	"x-wns-error-description", "x-wns-msg-id", "x-wns-debug-trace",
	"retry-after", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct multipart_part *p = arg;
	struct sender_cred *cred = cred_of(p);
	struct push_item *item = p->send->base.item;
	const char *name = p->pr.name;
	struct sender_wns_answer ans;
	struct push_result res;

	p->xfer = NULL;
	if (multipart_part_cancel_if_closing(p))
		return;
	send_trace_response(&cred->base.base.env, item, name, hr,
			    wns_trace_headers);
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.retry_after = http_response_header(hr, "retry-after");
	ans.wns_status = http_response_header(hr, "x-wns-status");
	if (ans.wns_status == NULL)
		ans.wns_status = http_response_header(hr,
					"x-wns-notificationstatus");
	ans.error_desc = http_response_header(hr, "x-wns-error-description");
	ans.msg_id = http_response_header(hr, "x-wns-msg-id");
	sender_wns_classify(&ans, item->attempts, p->send->base.max_attempts,
			    cred->retry_ambiguous, push_now_us(),
			    send_retry_delay(&p->send->base), &res);
	if (res.outcome != PUSH_OUTCOME_SENT || item->debug)
		log_info("wns answer", "push_id=%lld part=%s status=%ld "
			 "wns_status=%s msg_id=%s debug_trace=%s ms_cv=%s "
			 "error=%s", (long long)item->push_id,
			 name, hr->status,
			 ans.wns_status ? ans.wns_status : "",
			 ans.msg_id ? ans.msg_id : "",
			 http_response_header(hr, "x-wns-debug-trace")
			 ?: "", http_response_header(hr, "ms-cv") ?: "",
			 ans.error_desc ? ans.error_desc
			 : hr->error ? hr->error : "");
	if (res.reauth && !p->reauthed) {
		/* Microsoft: resend at most once on a rejected token. */
		p->reauthed = true;
		oauth_cache_invalidate(cred->auth, p->token);
		get_token(p);
		return;
	}
	multipart_part_done(p, &res);
}

/* A fresh MS-CV correlation vector: 16 base64 characters and ".0". */
static void make_cv(char out[20])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				  "opqrstuvwxyz0123456789+/";
	uint64_t r = backoff_rand_default(NULL);
	uint64_t r2 = backoff_rand_default(NULL);

	for (int i = 0; i < 16; i++) {
		out[i] = b64[(i < 8 ? r : r2) & 63];
		if (i < 8)
			r >>= 6;
		else
			r2 >>= 6;
	}
	memcpy(out + 16, ".0", 3);
}

static void post(struct multipart_part *p, const char *token)
{
	struct wns_send *s = wns_of(p);
	struct sender_cred *cred = cred_of(p);
	const struct sender_wns_part *part = &s->req.parts[p->index];
	const char *headers[SENDER_WNS_MAX_HEADERS + 5];
	struct http_request req;
	struct push_result res;
	char *auth, cv[24], cvh[40];
	size_t alen = strlen(token) + 32, n = 0;
	int rc;

	secret_free(p->token);
	p->token = mem_strdup(token);
	auth = mem_alloc(alen);
	snprintf(auth, alen, "Authorization: Bearer %s", token);
	make_cv(cv);
	snprintf(cvh, sizeof cvh, "MS-CV: %s", cv);
	headers[n++] = auth;
	for (size_t i = 0; part->headers[i] != NULL; i++)
		headers[n++] = part->headers[i];
	headers[n++] = cvh;
	headers[n++] = "Expect:";
	headers[n] = NULL;

	send_post_init(&req, &cred->base.base, s->mp.url, cred->ca_path);
	req.headers = headers;
	req.body = part->body;
	req.body_len = part->body_len;
	req.done = on_answer;
	req.arg = p;
	if (s->mp.base.item->sent_at_us == 0)
		s->mp.base.item->sent_at_us = push_now_us();
	p->active = true;
	send_trace_request(&cred->base.base.env, s->mp.base.item, part->name,
			   &req);
	rc = http_submit(cred->base.base.env.http, &req, &p->xfer);
	secret_free(auth);
	if (rc < 0) {
		p->xfer = NULL;
		send_submit_failed(&s->mp.base, rc, &res);
		multipart_part_done(p, &res);
	}
}

static int wns_send(struct sender_cred *cred, struct push_item *item,
		    int max_attempts, sender_done_fn done, void *arg)
{
	struct wns_send *s = mem_alloc_zero(1, sizeof *s);
	const char *names[PARTS_MAX];
	struct push_result res;
	int64_t now = push_now_us();

	if (!multipart_begin(&s->mp, &cred->base, item, max_attempts, done,
			     arg) ||
	    !multipart_channel(&s->mp, cred->hosts, cred->endpoint,
			       "wns channel refused"))
		return 0;
	if (sender_wns_build(item, now, &s->req, &res) < 0) {
		multipart_refuse(&s->mp, &res);
		return 0;
	}
	for (size_t i = 0; i < s->req.n; i++)
		names[i] = s->req.parts[i].name;
	multipart_run(&s->mp, s->req.n, names, now);
	return 0;
}

static int wns_cred_open(struct sender_cred **out,
			 const struct sender_env *env, const char *row_json,
			 char *err, size_t errlen)
{
	json_object *row, *v;
	struct auth_wns_config cfg;
	struct sender_cred *cred = NULL;
	const char *flow;
	char aerr[200];
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "wns credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	cred = mem_alloc_zero(1, sizeof *cred);
	cred->hosts = hostlist_new();
	if (hostlist_add_json(cred->hosts, jsonget(row, "channel_hosts"),
			      DEFAULT_HOSTS, aerr, sizeof aerr) < 0) {
		snprintf(err, errlen, "wns credential: %s", aerr);
		goto fail;
	}
	memset(&cfg, 0, sizeof cfg);
	flow = jsonget_nonempty(row, "auth_flow");
	if (flow == NULL || strcmp(flow, "entra") == 0) {
		cfg.flow = AUTH_WNS_ENTRA;
	} else if (strcmp(flow, "store") == 0) {
		cfg.flow = AUTH_WNS_STORE;
	} else {
		snprintf(err, errlen, "wns credential: unknown auth_flow");
		goto fail;
	}
	cfg.client_id = jsonget_nonempty(row, "client_id");
	cfg.client_secret = jsonget_nonempty(row, "client_secret");
	cfg.tenant_id = jsonget_nonempty(row, "tenant_id");
	cfg.token_url = jsonget_nonempty(row, "token_endpoint");
	cfg.ca_path = jsonget_nonempty(row, "ca_bundle_path");
	cfg.connect_timeout_ms = env->connect_timeout_ms;
	cfg.request_timeout_ms = env->request_timeout_ms;
	if (auth_wns_new(&cred->auth, env->loop, env->http, &cfg, aerr,
			 sizeof aerr) < 0) {
		snprintf(err, errlen, "wns credential: %s", aerr);
		goto fail;
	}
	cred->client_id = mem_strdup(cfg.client_id);
	cred->endpoint = jsonget_nonempty(row, "endpoint")
			 ? mem_strdup(jsonget_nonempty(row, "endpoint")) : NULL;
	cred->ca_path = cfg.ca_path ? mem_strdup(cfg.ca_path) : NULL;
	/* The app's retry_ambiguous; NULL: the WNS default, resend. */
	v = jsonget(row, "retry_ambiguous");
	cred->retry_ambiguous = v == NULL ||
		!json_object_is_type(v, json_type_boolean) ||
		json_object_get_boolean(v);
	multipart_cred_init(&cred->base, env, &wns_kind, &wns_parts);
	*out = cred;
	rc = 0;
	goto out;
fail:
	hostlist_free(cred->hosts);
	free(cred);
out:
	/* The row holds the client secret: clear json-c's copy. */
	v = jsonget(row, "client_secret");
	if (v != NULL && json_object_is_type(v, json_type_string))
		explicit_bzero((char *)json_object_get_string(v),
			       (size_t)json_object_get_string_len(v));
	json_object_put(row);
	return rc;
}

static void wns_cred_close(struct sender_cred *cred)
{
	if (cred == NULL || !send_cred_cancel_all(&cred->base.base))
		return;
	oauth_cache_free(cred->auth);
	hostlist_free(cred->hosts);
	multipart_cred_free(&cred->base);
	free(cred->client_id);
	free(cred->endpoint);
	free(cred->ca_path);
	sendq_close(&cred->base.base.q, free, cred);
}

const struct sender_ops sender_wns_ops = {
	.name = "wns",
	.platform = PUSH_PLATFORM_WNS,
	.cred_open = wns_cred_open,
	.cred_close = wns_cred_close,
	.send = wns_send,
};
