/*
 * fake_mpns.c — Microsoft Push Notification Service for Windows Phone
 * (PROTOCOLS.md section 4), HTTP/1.1 only.
 *
 *   POST /<any path>/<channel token>
 *
 * X-WindowsPhone-Target is "toast", "token" (tile) or absent/"raw"
 * (raw); anything else is 401 as MSDN documents.  X-NotificationClass
 * must be one of the type's classes (tile 1/11/21, toast 2/12/22, raw
 * 3/13/23); X-MessageID, when sent, must be a UUID and is echoed.
 * Toast and tile need text/xml and a <wp:Notification> with the right
 * element; payloads over the configured limits are 400.  Connections
 * without a client certificate are "unauthenticated" and limited to
 * mpns_daily_limit notifications per channel (then 406).  Answers use
 * only the documented X-NotificationStatus / X-SubscriptionStatus /
 * X-DeviceConnectionStatus combinations.  Rules are keyed by token.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_conn.h"
#include "fake_script.h"

static int
is_uuid(const char *s)
{
	int i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ?
		    s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * Renders status with the documented header combination; notif may
 * override the notification status of a 200 (QueueFull, Suppressed).
 */
static void
answer(struct fake_req *req, struct fake_resp *r, int status,
    const char *notif)
{
	const char *id = fake_req_header(req, "x-messageid");
	const char *n = NULL, *sub = NULL, *dev = NULL;

	r->status = status;
	switch (status) {
	case 200:
		n = notif ? notif : "Received";
		sub = "Active";
		dev = "Connected";
		break;
	case 404:
		n = "Dropped";
		sub = "Expired";
		dev = "Connected";
		break;
	case 406:
		n = "Dropped";
		sub = "Active";
		dev = "Connected";
		break;
	case 412:
		n = "Dropped";
		dev = "Inactive";
		break;
	}
	if (n != NULL)
		fake_resp_header(r, "X-NotificationStatus", n);
	if (sub != NULL)
		fake_resp_header(r, "X-SubscriptionStatus", sub);
	if (dev != NULL)
		fake_resp_header(r, "X-DeviceConnectionStatus", dev);
	if (id != NULL && is_uuid(id))
		fake_resp_header(r, "X-MessageID", id);
}

static int
class_ok(const char *cls, int base)
{
	int v;

	if (cls == NULL)
		return 1;
	if (strlen(cls) > 2 || !isdigit((unsigned char)cls[0]) ||
	    (cls[1] != '\0' && !isdigit((unsigned char)cls[1])))
		return 0;
	v = atoi(cls);
	return v == base || v == base + 10 || v == base + 20;
}

static int
check(struct fake_req *req, struct fake_resp *r)
{
	const char *target = fake_req_header(req, "x-windowsphone-target");
	const char *cls = fake_req_header(req, "x-notificationclass");
	const char *id = fake_req_header(req, "x-messageid");
	const char *ct = fake_req_header(req, "content-type");
	int base;
	size_t limit;

	if (target == NULL || strcmp(target, "raw") == 0)
		base = 3;
	else if (strcmp(target, "token") == 0)
		base = 1;
	else if (strcmp(target, "toast") == 0)
		base = 2;
	else {
		answer(req, r, 401, NULL);
		return -1;
	}
	if (!class_ok(cls, base) || (id != NULL && !is_uuid(id))) {
		answer(req, r, 400, NULL);
		return -1;
	}
	limit = (size_t)(base == 3 ? fake_cfg.mpns_raw_max :
	    fake_cfg.mpns_notif_max);
	if (req->body_total > limit) {
		answer(req, r, 400, NULL);
		return -1;
	}
	if (base != 3 && (ct == NULL || strncasecmp(ct, "text/xml", 8) ||
	    strstr(req->body, "<wp:Notification") == NULL ||
	    strstr(req->body, base == 2 ? "<wp:Toast" : "<wp:Tile") == NULL)) {
		answer(req, r, 400, NULL);
		return -1;
	}
	return 0;
}

void
fake_mpns_handle(struct fake_req *req, struct fake_resp *r)
{
	struct fake_conn *c = req->conn;
	char *path = fake_xstrdup(req->path), *q = strchr(path, '?');
	const char *token;
	struct fake_rule rule;

	if (q != NULL)
		*q = '\0';
	token = strrchr(path, '/');
	token = token ? token + 1 : path;
	if (*token != '\0')
		r->token = fake_xstrdup(token);
	free(path);
	r->auth = c->client_cert ? "certificate" : "unauthenticated";
	if (r->token == NULL) {
		answer(req, r, 400, NULL);
		return;
	}
	if (fake_script_mode(FAKE_MPNS, &rule)) {
		answer(req, r, rule.status ? rule.status : 503, rule.reason);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		answer(req, r, 405, NULL);
		return;
	}
	if (check(req, r) != 0)
		return;
	if (!c->client_cert && fake_cfg.mpns_daily_limit > 0 &&
	    fake_script_requests(FAKE_MPNS, r->token) >=
	    fake_cfg.mpns_daily_limit) {
		answer(req, r, 406, NULL);
		return;
	}
	if (fake_script_match(FAKE_MPNS, r->token, &rule)) {
		answer(req, r, rule.status ? rule.status : 200, rule.reason);
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		return;
	}
	answer(req, r, 200, NULL);
}
