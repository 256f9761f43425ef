/*
 * sender_mpns.c - Microsoft Push Notification Service, Windows Phone
 * (PROTOCOLS.md 4).  Retired by Microsoft, kept for the deployments that
 * still hold these channels.
 *
 * A push becomes one request per part (sender_mpns_build); text and a
 * count cannot travel together, so:
 *
 *   toast  when the payload has a title or body (mpns.toast false: none):
 *          <wp:Notification xmlns:wp="WPNotification"><wp:Toast>
 *          <wp:Text1>title</wp:Text1><wp:Text2>body</wp:Text2>
 *          <wp:Param>mpns.param</wp:Param></wp:Toast></wp:Notification>
 *   tile   when the payload has a badge or an mpns.tile object (false:
 *          none): <wp:Tile Id="id"> with BackgroundImage, Count (badge, or
 *          mpns.tile.count), Title, BackBackgroundImage, BackTitle,
 *          BackContent from mpns.tile's background_image, count, title,
 *          back_background_image, back_title, back_content
 *   raw    mpns.raw (a string) as it is, or, for a data-only push (no
 *          toast, no tile), the JSON text of data
 *
 * Headers: Content-Type text/xml (raw: application/octet-stream),
 * X-WindowsPhone-Target toast / token (none for raw), X-NotificationClass
 * by the push's priority (high: immediate 2/1/3 for toast/tile/raw;
 * normal: within 450 s, 12/11/13; low: within 900 s, 22/21/23), a fresh
 * X-MessageID UUID per request (stored as the delivery's message id), and
 * an empty Expect:.  Bodies are at most 3072 bytes.
 *
 * Sending: unauthenticated, or with the credential's TLS client
 * certificate (its own connection group, so an authenticated connection
 * is never used for another credential).  The channel URL's host must be
 * in channel_hosts.  Parts go out at once; the push's result is
 * parts_combine()'s, and accepted parts are not resent by a retry.  After
 * a 406 or 412 the channel is held for an hour: pushes to it wait
 * without a request (MPNS blocks senders that retry an inactive device
 * more often).  Ambiguous answers are not resent unless the app's
 * retry_ambiguous is true (NULL means false for MPNS): a duplicate toast
 * annoys people more than a missing one.
 */
#include "platforms/mpns/sender_mpns.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "net/hdrcheck.h"
#include "net/hostlist.h"
#include "net/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "platforms/sendq.h"
#include "obs/trace.h"
#include "platforms/xml.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define DEFAULT_HOSTS "*.notify.live.net"
#define MEMO_AGE_US (48 * 3600 * USEC)
#define MEMO_CAP 65536
#define HOLD_CAP 65536

/* ---- building (pure) --------------------------------------------- */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, json_type_string)
	       ? json_object_get_string(v) : NULL;
}

static bool is_false(json_object *v)
{
	return v != NULL && json_object_is_type(v, json_type_boolean) &&
	       !json_object_get_boolean(v);
}

static void hdr(struct sender_mpns_part *p, const char *fmt, const char *v)
{
	size_t i = 0, n = strlen(fmt) + strlen(v) + 1;

	while (p->headers[i] != NULL)
		i++;
	if (i >= SENDER_MPNS_MAX_HEADERS)
		return;
	p->headers[i] = mem_alloc(n);
	snprintf(p->headers[i], n, fmt, v);
}

static void uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t r[2] = { backoff_rand_default(NULL),
			  backoff_rand_default(NULL) };
	int k = 0;

	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			out[i] = '-';
			continue;
		}
		out[i] = hex[(r[k / 16] >> (4 * (k % 16))) & 15];
		k++;
	}
	out[14] = '4';                          /* version 4 */
	out[19] = hex[8 | ((r[1] >> 60) & 3)];  /* variant 10xx */
	out[36] = '\0';
}

static void notification_open(struct xml *x)
{
	xml_decl(x);
	xml_open(x, "wp:Notification");
	xml_attr(x, "xmlns:wp", "WPNotification");
}

static char *toast_xml(json_object *pl, json_object *mp)
{
	struct xml x;

	xml_init(&x);
	notification_open(&x);
	xml_open(&x, "wp:Toast");
	xml_elem_text(&x, "wp:Text1", str(pl, "title"));
	xml_elem_text(&x, "wp:Text2", str(pl, "body"));
	xml_elem_text(&x, "wp:Param", str(mp, "param"));
	return xml_finish(&x, NULL);
}

static char *tile_xml(json_object *pl, json_object *tile)
{
	json_object *c = get(tile, "count");
	char buf[32];
	struct xml x;

	if (c == NULL)
		c = get(pl, "badge");
	xml_init(&x);
	notification_open(&x);
	xml_open(&x, "wp:Tile");
	if (str(tile, "id") != NULL)
		xml_attr(&x, "Id", str(tile, "id"));
	xml_elem_text(&x, "wp:BackgroundImage",
		      str(tile, "background_image"));
	if (c != NULL && json_object_is_type(c, json_type_int)) {
		snprintf(buf, sizeof buf, "%" PRId64, json_object_get_int64(c));
		xml_elem_text(&x, "wp:Count", buf);
	}
	xml_elem_text(&x, "wp:Title", str(tile, "title"));
	xml_elem_text(&x, "wp:BackBackgroundImage",
		      str(tile, "back_background_image"));
	xml_elem_text(&x, "wp:BackTitle", str(tile, "back_title"));
	xml_elem_text(&x, "wp:BackContent", str(tile, "back_content"));
	return xml_finish(&x, NULL);
}

static void add_part(struct sender_mpns_request *r, const char *name,
		     char *body, enum push_priority prio)
{
	struct sender_mpns_part *p = &r->parts[r->n++];
	int base = strcmp(name, "tile") == 0 ? 1
		   : strcmp(name, "toast") == 0 ? 2 : 3;
	int cls = base + (prio == PUSH_PRIORITY_HIGH ? 0
			  : prio == PUSH_PRIORITY_NORMAL ? 10 : 20);
	char buf[16];

	memset(p, 0, sizeof *p);
	p->name = name;
	p->body = body;
	p->body_len = strlen(body);
	uuid(p->message_id);
	hdr(p, "Content-Type: %s", base == 3 ? "application/octet-stream"
	    : "text/xml");
	if (base != 3)
		hdr(p, "X-WindowsPhone-Target: %s", base == 1 ? "token"
		    : "toast");
	snprintf(buf, sizeof buf, "%d", cls);
	hdr(p, "X-NotificationClass: %s", buf);
	hdr(p, "X-MessageID: %s", p->message_id);
}

void sender_mpns_request_free(struct sender_mpns_request *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->parts[i].body);
		for (size_t j = 0; r->parts[i].headers[j] != NULL; j++)
			free(r->parts[i].headers[j]);
	}
	memset(r, 0, sizeof *r);
}

int sender_mpns_build(const struct push_item *item, int64_t now_us,
		      struct sender_mpns_request *out,
		      struct push_result *res)
{
	json_object *pl, *mp, *v, *tile;
	char why[128];
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
	mp = get(pl, "mpns");
	if (mp != NULL && !json_object_is_type(mp, json_type_object)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"the mpns override is not an object");
		goto out;
	}
	if (!is_false(get(mp, "toast")) && (str(pl, "title") ||
					    str(pl, "body")))
		add_part(out, "toast", toast_xml(pl, mp), item->priority);
	tile = get(mp, "tile");
	if (tile != NULL && json_object_is_type(tile, json_type_object))
		add_part(out, "tile", tile_xml(pl, tile), item->priority);
	else if (!is_false(tile) && (v = get(pl, "badge")) != NULL &&
		 json_object_is_type(v, json_type_int))
		add_part(out, "tile", tile_xml(pl, NULL), item->priority);
	v = get(mp, "raw");
	if (v != NULL && json_object_is_type(v, json_type_string))
		add_part(out, "raw", mem_strdup(json_object_get_string(v)),
			 item->priority);
	else if (out->n == 0 && (v = get(pl, "data")) != NULL &&
		 json_object_is_type(v, json_type_object))
		add_part(out, "raw", mem_strdup(json_object_to_json_string_ext(
				 v, JSON_FLAGS)), item->priority);
	if (out->n == 0) {
		push_result_set(res, PUSH_OUTCOME_FAILED, "nothing to send to "
				"MPNS (no title, body, badge, data or mpns "
				"part)");
		goto out;
	}
	for (size_t i = 0; i < out->n; i++) {
		const struct sender_mpns_part *p = &out->parts[i];

		if (p->body_len == 0 ||
		    p->body_len > SENDER_MPNS_MAX_PAYLOAD) {
			snprintf(why, sizeof why, "mpns %s payload %s",
				 p->name, p->body_len ? "over 3072 bytes"
				 : "is empty");
			push_result_set(res, PUSH_OUTCOME_FAILED, why);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		sender_mpns_request_free(out);
	json_object_put(pl);
	return rc;
}

/* ---- classification (pure) --------------------------------------- */

static void retry_or_fail(struct push_result *res, int attempts,
			  int max_attempts, int64_t at)
{
	if (max_attempts > 0 && attempts >= max_attempts) {
		res->outcome = PUSH_OUTCOME_FAILED;
		res->retry_at_us = 0;
	} else {
		res->outcome = PUSH_OUTCOME_RETRY;
		res->retry_at_us = at;
	}
}

static void ambiguous(struct push_result *res, bool retry_ambiguous,
		      int attempts, int max_attempts, int64_t at)
{
	if (retry_ambiguous)
		retry_or_fail(res, attempts, max_attempts, at);
	else
		res->outcome = PUSH_OUTCOME_UNCERTAIN;
}

static bool looks_html(const struct sender_mpns_answer *a)
{
	if (a->content_type != NULL &&
	    strncasecmp(a->content_type, "text/html", 9) == 0)
		return true;
	return a->body != NULL && a->body_len > 0 &&
	       (strcasestr(a->body, "<html") != NULL ||
		strcasestr(a->body, "<!doctype html") != NULL);
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

void sender_mpns_classify(const struct sender_mpns_answer *ans,
			  int attempts, int max_attempts,
			  bool retry_ambiguous, int64_t now_us,
			  int64_t backoff_us, struct push_result *res)
{
	long st = ans->status;
	const char *n = ans->notification;
	int64_t at = now_us + SENDER_MPNS_BACKOFF_BASE_US + backoff_us;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	if (ans->message_id != NULL)
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 ans->message_id);
	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %.60s",
			 ans->error ? ans->error : "unknown error");
		if (http_err_ambiguous(ans->err))
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		else
			retry_or_fail(res, attempts, max_attempts,
				      now_us + backoff_us);
		return;
	}
	/* "Received/Connected", "Dropped/Expired", ... */
	snprintf(res->reason, sizeof res->reason, "%s/%s/%s", or_dash(n),
		 or_dash(ans->device), or_dash(ans->subscription));
	if (st == 200) {
		if (n == NULL || looks_html(ans)) {
			snprintf(res->reason, sizeof res->reason, "%s",
				 looks_html(ans) ? "HTML page, no MPNS status"
				 : "no MPNS status");
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		} else if (strcasecmp(n, "Received") == 0 ||
			   strcasecmp(n, "Suppressed") == 0) {
			/* Suppressed: accepted, the channel does not show
			 * this class; not to be retried (4.3). */
			res->outcome = PUSH_OUTCOME_SENT;
		} else if (strcasecmp(n, "QueueFull") == 0) {
			res->throttled = true;
			retry_or_fail(res, attempts, max_attempts, at);
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
		}
		return;
	}
	switch (st) {
	case 404:
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		break;
	case 401:
		/* Certificate problems or a bad target: configuration. */
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		break;
	case 406:
	case 412:
		res->throttled = true;
		retry_or_fail(res, attempts, max_attempts,
			      now_us + SENDER_MPNS_HOLD_US);
		break;
	case 503:
		/* Documented: not processed; resend in minutes. */
		retry_or_fail(res, attempts, max_attempts, at);
		break;
	default:
		if (st >= 500 && st < 600)
			ambiguous(res, retry_ambiguous, attempts,
				  max_attempts, at);
		else
			res->outcome = PUSH_OUTCOME_FAILED;  /* 400, 405 */
		break;
	}
	if (res->reason[0] == '-' && res->reason[1] == '/')
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);
}

/* ---- the sender -------------------------------------------------- */

struct mpns_send;

struct mpns_part_state {
	struct mpns_send *send;
	struct sender_mpns_part *part;
	struct http_xfer *xfer;
	bool active;                    /* HTTP in flight */
	struct part_result pr;
};

struct sender_cred {
	struct sender_env env;
	char *endpoint;                 /* origin override or NULL */
	char *ca_path;
	char *cert_pem, *key_pem;       /* client certificate or NULL */
	char conn_group[48];            /* with a certificate: its own */
	bool retry_ambiguous;
	struct hostlist *hosts;
	struct parts_memo *memo;        /* queue id -> parts settled */
	struct parts_memo *holds;       /* channel -> held until */
	struct sendq q;                 /* in flight */
	bool closing;
};

struct mpns_send {
	struct sender_cred *cred;
	struct push_item *item;
	int max_attempts;
	sender_done_fn done;
	void *arg;
	char *url;
	char key[24];
	bool in_send;
	size_t pending;
	struct sender_mpns_request req;
	struct mpns_part_state ps[PARTS_MAX];
	struct sendq_item qi;           /* on cred->q */
};

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void send_free(struct mpns_send *s)
{
	sender_mpns_request_free(&s->req);
	free(s->url);
	free(s);
}

static void finish(struct mpns_send *s, struct push_result *res)
{
	struct push_item *item = s->item;

	sendq_remove(&s->cred->q, &s->qi);
	if (item->debug)
		log_info("mpns push done", "push_id=%lld outcome=%s "
			 "status=%d reason=%s", (long long)item->push_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason);
	s->done(s->arg, item, res);
	send_free(s);
}

/* A result decided inside send(), delivered by the queue's timer. */
static void finish_deferred(struct sendq_item *it, struct push_result *res)
{
	finish(sendq_entry(it, struct mpns_send, qi), res);
}

static int64_t retry_delay(const struct mpns_send *s)
{
	return backoff_delay_us(s->item->attempts, SENDER_MPNS_BACKOFF_BASE_US,
				SENDER_MPNS_BACKOFF_CAP_US, NULL, NULL);
}

static void complete(struct mpns_send *s)
{
	struct sender_cred *cred = s->cred;
	struct part_result prs[PARTS_MAX] = { 0 };
	struct push_result res;
	unsigned acc = 0, unc = 0;
	int64_t hold = 0;

	for (size_t i = 0; i < s->req.n; i++) {
		const struct push_result *r = &s->ps[i].pr.res;

		prs[i] = s->ps[i].pr;
		if (prs[i].skipped ? !prs[i].was_uncertain
		    : r->outcome == PUSH_OUTCOME_SENT)
			acc |= 1u << i;
		if (prs[i].skipped ? prs[i].was_uncertain
		    : r->outcome == PUSH_OUTCOME_UNCERTAIN)
			unc |= 1u << i;
		if (!prs[i].skipped && (r->http_status == 406 ||
					r->http_status == 412))
			hold = push_now_us() + SENDER_MPNS_HOLD_US;
	}
	parts_combine(prs, s->req.n, &res);
	if (hold != 0 && !cred->closing)
		parts_memo_put(cred->holds, s->item->token, 0, 0, hold);
	if (res.outcome == PUSH_OUTCOME_RETRY && !cred->closing)
		parts_memo_put(cred->memo, s->key, acc, unc,
			       push_now_us() + MEMO_AGE_US);
	else if (res.outcome != PUSH_OUTCOME_RETRY)
		parts_memo_del(cred->memo, s->key);
	if (s->in_send)
		sendq_finish_later(&cred->q, &s->qi, &res);
	else
		finish(s, &res);
}

static void part_done(struct mpns_part_state *p, const struct push_result *r)
{
	struct mpns_send *s = p->send;

	p->active = false;
	p->pr.res = *r;
	if (--s->pending == 0)
		complete(s);
}

/* Answer headers a debug push's trace keeps. */
static const char *const mpns_trace_headers[] = { "x-notificationstatus",
	"x-subscriptionstatus", "x-deviceconnectionstatus", "x-messageid",
	"content-type", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct mpns_part_state *p = arg;
	struct mpns_send *s = p->send;
	struct sender_cred *cred = s->cred;
	struct sender_mpns_answer ans;
	struct push_result res;

	p->xfer = NULL;
	if (cred->closing) {
		sendq_set_cancelled(&res);
		part_done(p, &res);
		return;
	}
	trace_http_response(&cred->env, s->item, p->part->name, hr,
			    mpns_trace_headers);
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.body = hr->body;
	ans.body_len = hr->body_len;
	ans.notification = http_response_header(hr, "x-notificationstatus");
	ans.subscription = http_response_header(hr, "x-subscriptionstatus");
	ans.device = http_response_header(hr, "x-deviceconnectionstatus");
	ans.content_type = http_response_header(hr, "content-type");
	sender_mpns_classify(&ans, s->item->attempts, s->max_attempts,
			     cred->retry_ambiguous, push_now_us(),
			     retry_delay(s), &res);
	/* The id we sent is the one MPNS keys its logs on. */
	snprintf(res.message_id, sizeof res.message_id, "%s",
		 p->part->message_id);
	if (res.outcome != PUSH_OUTCOME_SENT || s->item->debug)
		log_info("mpns answer", "push_id=%lld part=%s status=%ld "
			 "message_id=%s reason=%s error=%s",
			 (long long)s->item->push_id, p->part->name,
			 hr->status, p->part->message_id, res.reason,
			 hr->error ? hr->error : "");
	part_done(p, &res);
}

static void post(struct mpns_part_state *p)
{
	struct mpns_send *s = p->send;
	struct sender_cred *cred = s->cred;
	const char *headers[SENDER_MPNS_MAX_HEADERS + 2];
	struct http_request req;
	struct push_result res;
	size_t n = 0;
	int rc;

	for (size_t i = 0; p->part->headers[i] != NULL; i++)
		headers[n++] = p->part->headers[i];
	headers[n++] = "Expect:";
	headers[n] = NULL;
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = s->url;
	req.ca_path = cred->ca_path;
	req.headers = headers;
	req.body = p->part->body;
	req.body_len = p->part->body_len;
	req.connect_timeout_ms = cred->env.connect_timeout_ms;
	req.timeout_ms = cred->env.request_timeout_ms;
	if (cred->cert_pem != NULL) {
		req.conn_group = cred->conn_group;
		req.client_cert = cred->cert_pem;
		req.client_key = cred->key_pem;
	}
	req.done = on_answer;
	req.arg = p;
	if (s->item->sent_at_us == 0)
		s->item->sent_at_us = push_now_us();
	p->active = true;
	trace_http_request(&cred->env, s->item, p->part->name, &req);
	rc = http_submit(cred->env.http, &req, &p->xfer);
	if (rc < 0) {
		p->xfer = NULL;
		memset(&res, 0, sizeof res);
		snprintf(res.reason, sizeof res.reason,
			 "transport: cannot start the request: %s",
			 strerror(-rc));
		retry_or_fail(&res, s->item->attempts, s->max_attempts,
			      push_now_us() + retry_delay(s));
		part_done(p, &res);
	}
}

static int mpns_send(struct sender_cred *cred, struct push_item *item,
		     int max_attempts, sender_done_fn done, void *arg)
{
	struct mpns_send *s = mem_alloc_zero(1, sizeof *s);
	struct push_result res;
	unsigned acc = 0, unc = 0;
	int64_t now = push_now_us(), until = 0;
	char why[200];

	s->cred = cred;
	s->item = item;
	s->max_attempts = max_attempts > 0 ? max_attempts
			  : cred->env.max_attempts;
	s->done = done;
	s->arg = arg;
	snprintf(s->key, sizeof s->key, "%lld", (long long)item->queue_id);
	sendq_add(&cred->q, &s->qi);
	if (cred->closing) {
		sendq_set_cancelled(&res);
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	if (item->token == NULL || !hdrcheck_url_ok(item->token) ||
	    hostlist_check_url(cred->hosts, item->token, why,
			       sizeof why) < 0) {
		push_result_set(&res, PUSH_OUTCOME_FAILED,
				item->token == NULL ? "no channel URL"
				: !hdrcheck_url_ok(item->token)
				? HDRCHECK_URL_REASON : why);
		log_warn("mpns channel refused", "push_id=%lld app=%d "
			 "reason=%s", (long long)item->push_id, item->app_id,
			 res.reason);
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	if (parts_memo_get(cred->holds, item->token, now, NULL, NULL,
			   &until)) {
		/* 406/412 earlier: not before the hour is up. */
		memset(&res, 0, sizeof res);
		snprintf(res.reason, sizeof res.reason, "channel held for an "
			 "hour after a 406/412; not sent");
		res.throttled = true;
		retry_or_fail(&res, item->attempts, s->max_attempts, until);
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	s->url = hostlist_rebase_url(item->token, cred->endpoint);
	if (s->url == NULL) {
		push_result_set(&res, PUSH_OUTCOME_FAILED,
				"channel URL cannot be used");
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	if (sender_mpns_build(item, now, &s->req, &res) < 0) {
		parts_memo_del(cred->memo, s->key);
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	parts_memo_get(cred->memo, s->key, now, &acc, &unc, NULL);
	s->in_send = true;
	s->pending = s->req.n;
	for (size_t i = 0; i < s->req.n; i++) {
		struct mpns_part_state *p = &s->ps[i];

		p->send = s;
		p->part = &s->req.parts[i];
		p->pr.name = p->part->name;
		if ((acc | unc) & (1u << i)) {
			p->pr.skipped = true;
			p->pr.was_uncertain = (unc & (1u << i)) != 0;
			s->pending--;
		}
	}
	if (s->pending == 0) {
		complete(s);
		return 0;
	}
	for (size_t i = 0; i < s->req.n; i++)
		if (!s->ps[i].pr.skipped)
			post(&s->ps[i]);
	s->in_send = false;
	return 0;
}

static const char *opt_str(json_object *o, const char *key)
{
	const char *s = str(o, key);

	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int mpns_cred_open(struct sender_cred **out,
			  const struct sender_env *env, const char *row_json,
			  char *err, size_t errlen)
{
	json_object *row, *v;
	struct sender_cred *cred;
	const char *cert, *key;
	char herr[200];
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "mpns credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	cred = mem_alloc_zero(1, sizeof *cred);
	cred->hosts = hostlist_new();
	if (hostlist_add_json(cred->hosts, get(row, "channel_hosts"),
			      DEFAULT_HOSTS, herr, sizeof herr) < 0) {
		snprintf(err, errlen, "mpns credential: %s", herr);
		hostlist_free(cred->hosts);
		free(cred);
		goto out;
	}
	cert = opt_str(row, "certificate_pem");
	key = opt_str(row, "private_key_pem");
	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errlen, "mpns credential: certificate_pem and "
			 "private_key_pem go together");
		hostlist_free(cred->hosts);
		free(cred);
		goto out;
	}
	if (cert != NULL) {
		cred->cert_pem = mem_strdup(cert);
		cred->key_pem = mem_strdup(key);
		v = get(row, "id");
		snprintf(cred->conn_group, sizeof cred->conn_group,
			 "mpns-cert-%lld", v != NULL
			 ? (long long)json_object_get_int64(v) : 0LL);
	}
	cred->env = *env;
	cred->endpoint = opt_str(row, "endpoint")
			 ? mem_strdup(opt_str(row, "endpoint")) : NULL;
	cred->ca_path = opt_str(row, "ca_bundle_path")
			? mem_strdup(opt_str(row, "ca_bundle_path")) : NULL;
	/* The app's retry_ambiguous; NULL: the MPNS default, do not. */
	v = get(row, "retry_ambiguous");
	cred->retry_ambiguous = v != NULL &&
		json_object_is_type(v, json_type_boolean) &&
		json_object_get_boolean(v);
	cred->memo = parts_memo_new(MEMO_CAP);
	cred->holds = parts_memo_new(HOLD_CAP);
	sendq_init(&cred->q, env->loop, finish_deferred);
	*out = cred;
	rc = 0;
out:
	/* The row holds the private key: clear json-c's copy. */
	v = get(row, "private_key_pem");
	if (v != NULL && json_object_is_type(v, json_type_string))
		explicit_bzero((char *)json_object_get_string(v),
			       (size_t)json_object_get_string_len(v));
	json_object_put(row);
	return rc;
}

static void mpns_cred_close(struct sender_cred *cred)
{
	struct push_result res;

	/* Already closing: a cancelled send's callback came back here. */
	if (cred == NULL || cred->closing)
		return;
	cred->closing = true;
	while (cred->q.sends != NULL) {
		struct mpns_send *s = sendq_entry(cred->q.sends,
						  struct mpns_send, qi);
		struct mpns_part_state *p = NULL;

		for (size_t i = 0; i < s->req.n && p == NULL; i++)
			if (s->ps[i].active && s->ps[i].xfer != NULL)
				p = &s->ps[i];
		if (p != NULL) {
			/* on_answer sees `closing` and settles the part. */
			http_cancel(cred->env.http, p->xfer);
		} else {
			sendq_set_cancelled(&res);
			finish(s, &res);
		}
	}
	sendq_flush(&cred->q);
	hostlist_free(cred->hosts);
	parts_memo_free(cred->memo);
	parts_memo_free(cred->holds);
	wipe_free(cred->cert_pem);
	wipe_free(cred->key_pem);
	free(cred->endpoint);
	free(cred->ca_path);
	sendq_close(&cred->q, free, cred);
}

const struct sender_ops sender_mpns_ops = {
	.name = "mpns",
	.platform = PUSH_PLATFORM_MPNS,
	.cred_open = mpns_cred_open,
	.cred_close = mpns_cred_close,
	.send = mpns_send,
};
