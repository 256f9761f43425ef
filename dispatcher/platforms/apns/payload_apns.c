/*
 * payload_apns.c - the APNs request (sender_apns_build): the neutral
 * payload mapped to an APNs body and headers, and the apns-id UUID;
 * pure.
 *
 * Request (sender_apns_build): POST <endpoint>/3/device/<token>, body =
 * the APNs JSON payload, headers:
 *
 *   apns-topic       the credential's topic (bundle id) with the suffix
 *                    the push type requires (voip ".voip", complication
 *                    ".complication", fileprovider ".pushkit.fileprovider",
 *                    liveactivity ".push-type.liveactivity", location
 *                    ".location-query", pushtotalk ".voip-ptt", widgets
 *                    ".push-type.widgets"), unless it already ends so
 *   apns-push-type   apns.push_type if given, else derived from the final
 *                    aps: alert, badge or sound -> alert; only
 *                    content-available -> background; else alert
 *   apns-priority    apns.priority (10, 5 or 1) if given; background -> 5;
 *                    push priority low -> 5; else 10
 *   apns-expiration  expires_at in epoch seconds (none without expiry); a
 *                    push already expired is not sent (EXPIRED)
 *   apns-collapse-id the push's collapse_key (> 64 bytes: FAILED)
 *   apns-id          a fresh UUID per request, stored as the delivery's
 *                    provider message id (Apple echoes it)
 *   authorization    "bearer <JWT>" (token auth only; auth_apns.c)
 *
 * Body mapping of the neutral payload:
 *
 *   title, subtitle, body  -> aps.alert.{title,subtitle,body}
 *   badge (integer)        -> aps.badge
 *   sound                  -> aps.sound (a string, or a critical-alert
 *                             object as it is)
 *   category               -> aps.category
 *   thread_id              -> aps.thread-id
 *   mutable_content true   -> aps.mutable-content 1
 *   content_available true -> aps.content-available 1
 *   data {k: v}            -> k: v at the top level (JSON values as they
 *                             are; a key "aps" is refused: FAILED)
 *   apns {...}             -> merged last into the body (RFC 7386 merge
 *                             patch), except push_type and priority,
 *                             which set the headers above
 *
 * image and the other platforms' overrides are not sent.  The exact body
 * is measured: over 4096 bytes (5120 for voip) is FAILED before sending.
 */
#include "platforms/apns/sender_apns.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/backoff.h"
#include "base/mem.h"
#include "net/hdrcheck.h"
#include "platforms/jsonget.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)


/* ---- request building (pure) ------------------------------------- */

static json_object *copy(json_object *v)
{
	json_object *c = NULL;

	json_object_deep_copy(v, &c, NULL);
	return c;
}

static bool truthy(json_object *v)
{
	return (json_object_is_type(v, json_type_boolean) &&
		json_object_get_boolean(v)) ||
	       (json_object_is_type(v, json_type_int) &&
		json_object_get_int64(v) == 1);
}

/* RFC 7386 merge of `patch` into the object `target`. */
static void merge_patch(json_object *target, json_object *patch)
{
	json_object_object_foreach(patch, k, v) {
		json_object *t = jsonget(target, k);

		if (v == NULL) {
			json_object_object_del(target, k);
		} else if (json_object_is_type(v, json_type_object)) {
			if (t == NULL || !json_object_is_type(t,
							json_type_object)) {
				t = json_object_new_object();
				json_object_object_add(target, k, t);
			}
			merge_patch(t, v);
		} else {
			json_object_object_add(target, k, copy(v));
		}
	}
}

static const struct {
	const char *type, *suffix;
} push_types[] = {
	{ "alert", NULL }, { "background", NULL }, { "mdm", NULL },
	{ "controls", NULL }, { "voip", ".voip" },
	{ "complication", ".complication" },
	{ "fileprovider", ".pushkit.fileprovider" },
	{ "liveactivity", ".push-type.liveactivity" },
	{ "location", ".location-query" }, { "pushtotalk", ".voip-ptt" },
	{ "widgets", ".push-type.widgets" },
};

static int push_type_index(const char *t)
{
	size_t i;

	for (i = 0; i < sizeof push_types / sizeof *push_types; i++)
		if (strcmp(push_types[i].type, t) == 0)
			return (int)i;
	return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

void sender_apns_msg_free(struct sender_apns_msg *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	free(msg->body);
	free(msg->topic);
	for (i = 0; i < sizeof msg->headers / sizeof *msg->headers; i++)
		free(msg->headers[i]);
	memset(msg, 0, sizeof *msg);
}

static char *fmt(const char *f, const char *a)
{
	size_t n = strlen(f) + strlen(a) + 1;
	char *s = mem_alloc(n);

	snprintf(s, n, f, a);
	return s;
}

int sender_apns_build(const struct push_item *item, const char *topic,
		      int64_t now_us, struct sender_apns_msg *msg,
		      struct push_result *res)
{
	json_object *pl, *body = NULL, *aps, *alert, *v, *ov = NULL;
	const char *ptype = NULL, *suffix;
	int prio = 0, ti, h = 0;
	size_t limit;
	char num[32];

	memset(msg, 0, sizeof *msg);
	if (item->expires_at_us != 0 && item->expires_at_us <= now_us) {
		push_result_set(res, PUSH_OUTCOME_EXPIRED,
				"expired before sending");
		return -EINVAL;
	}
	if (item->token == NULL || item->token[0] == '\0') {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"no APNs device token");
		return -EINVAL;
	}
	if (item->collapse_key != NULL &&
	    strlen(item->collapse_key) > SENDER_APNS_MAX_COLLAPSE_ID) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"BadCollapseId: collapse_key over 64 bytes");
		return -EINVAL;
	}
	/* Row data that becomes a header or the path: never sent as is
	 * unless it is a valid header value / one path segment. */
	if (item->collapse_key != NULL &&
	    !hdrcheck_value_ok(item->collapse_key)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"BadCollapseId: collapse_key is not a valid "
				"header value (control character, or a space "
				"at either end)");
		return -EINVAL;
	}
	if (!hdrcheck_segment_ok(item->token)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"BadDeviceToken: the device token is not a "
				"valid URL path segment");
		return -EINVAL;
	}
	if (!hdrcheck_value_ok(topic)) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				"the credential's topic is not a valid header "
				"value");
		return -EINVAL;
	}
	pl = sender_parse_payload(item->payload);
	if (pl == NULL || !json_object_is_type(pl, json_type_object)) {
		json_object_put(pl);
		push_result_set(res, PUSH_OUTCOME_FAILED,
				sender_payload_why(item->payload));
		return -EINVAL;
	}

	body = json_object_new_object();
	aps = json_object_new_object();
	alert = json_object_new_object();
	if ((v = jsonget(pl, "title")) != NULL)
		json_object_object_add(alert, "title", copy(v));
	if ((v = jsonget(pl, "subtitle")) != NULL)
		json_object_object_add(alert, "subtitle", copy(v));
	if ((v = jsonget(pl, "body")) != NULL)
		json_object_object_add(alert, "body", copy(v));
	if (json_object_object_length(alert) > 0)
		json_object_object_add(aps, "alert", alert);
	else
		json_object_put(alert);
	if ((v = jsonget(pl, "badge")) != NULL &&
	    json_object_is_type(v, json_type_int))
		json_object_object_add(aps, "badge", copy(v));
	if ((v = jsonget(pl, "sound")) != NULL)
		json_object_object_add(aps, "sound", copy(v));
	if ((v = jsonget(pl, "category")) != NULL)
		json_object_object_add(aps, "category", copy(v));
	if ((v = jsonget(pl, "thread_id")) != NULL)
		json_object_object_add(aps, "thread-id", copy(v));
	if (truthy(jsonget(pl, "mutable_content")))
		json_object_object_add(aps, "mutable-content",
				       json_object_new_int(1));
	if (truthy(jsonget(pl, "content_available")))
		json_object_object_add(aps, "content-available",
				       json_object_new_int(1));
	if (json_object_object_length(aps) > 0)
		json_object_object_add(body, "aps", aps);
	else
		json_object_put(aps);

	if ((v = jsonget(pl, "data")) != NULL &&
	    json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, dv) {
			if (strcmp(k, "aps") == 0) {
				push_result_set(res, PUSH_OUTCOME_FAILED,
					"data key \"aps\" is reserved by APNs");
				goto fail;
			}
			json_object_object_add(body, k, copy(dv));
		}
	}

	if ((v = jsonget(pl, "apns")) != NULL) {
		json_object *t;

		if (!json_object_is_type(v, json_type_object)) {
			push_result_set(res, PUSH_OUTCOME_FAILED,
					"the apns override is not an object");
			goto fail;
		}
		ov = copy(v);
		if ((t = jsonget(ov, "push_type")) != NULL) {
			if (!json_object_is_type(t, json_type_string) ||
			    push_type_index(json_object_get_string(t)) < 0) {
				push_result_set(res, PUSH_OUTCOME_FAILED,
						"apns.push_type is not a known "
						"push type");
				goto fail;
			}
			snprintf(msg->push_type, sizeof msg->push_type, "%s",
				 json_object_get_string(t));
			ptype = msg->push_type;
			json_object_object_del(ov, "push_type");
		}
		if ((t = jsonget(ov, "priority")) != NULL) {
			int64_t p = json_object_is_type(t, json_type_int)
				    ? json_object_get_int64(t) : 0;

			if (p != 10 && p != 5 && p != 1) {
				push_result_set(res, PUSH_OUTCOME_FAILED,
					"apns.priority must be 10, 5 or 1");
				goto fail;
			}
			prio = (int)p;
			json_object_object_del(ov, "priority");
		}
		merge_patch(body, ov);
	}

	if (ptype == NULL) {
		json_object *a = jsonget(body, "aps");

		if (jsonget(a, "alert") == NULL &&
		    jsonget(a, "badge") == NULL &&
		    jsonget(a, "sound") == NULL &&
		    truthy(jsonget(a, "content-available")))
			ptype = "background";
		else
			ptype = "alert";
		snprintf(msg->push_type, sizeof msg->push_type, "%s", ptype);
	}
	if (prio == 0)
		prio = strcmp(ptype, "background") == 0 ||
		       item->priority == PUSH_PRIORITY_LOW ? 5 : 10;
	msg->priority = prio;

	ti = push_type_index(ptype);
	suffix = ti >= 0 ? push_types[ti].suffix : NULL;
	if (suffix != NULL && !ends_with(topic, suffix)) {
		msg->topic = mem_alloc(strlen(topic) + strlen(suffix) + 1);
		sprintf(msg->topic, "%s%s", topic, suffix);
	} else {
		msg->topic = mem_strdup(topic);
	}

	msg->body = mem_strdup(json_object_to_json_string_ext(body,
							      JSON_FLAGS));
	msg->body_len = strlen(msg->body);
	limit = strcmp(ptype, "voip") == 0 ? SENDER_APNS_MAX_PAYLOAD_VOIP
		: SENDER_APNS_MAX_PAYLOAD;
	if (msg->body_len > limit) {
		char why[128];

		snprintf(why, sizeof why,
			 "PayloadTooLarge: %zu bytes, APNs allows %zu",
			 msg->body_len, limit);
		push_result_set(res, PUSH_OUTCOME_FAILED, why);
		goto fail;
	}
	msg->expiration_s = item->expires_at_us != 0
			    ? item->expires_at_us / USEC : -1;
	if (item->collapse_key != NULL)
		snprintf(msg->collapse_id, sizeof msg->collapse_id, "%s",
			 item->collapse_key);

	msg->headers[h++] = fmt("apns-topic: %s", msg->topic);
	msg->headers[h++] = fmt("apns-push-type: %s", msg->push_type);
	snprintf(num, sizeof num, "%d", msg->priority);
	msg->headers[h++] = fmt("apns-priority: %s", num);
	if (msg->expiration_s >= 0) {
		snprintf(num, sizeof num, "%lld",
			 (long long)msg->expiration_s);
		msg->headers[h++] = fmt("apns-expiration: %s", num);
	}
	if (msg->collapse_id[0] != '\0')
		msg->headers[h++] = fmt("apns-collapse-id: %s",
					msg->collapse_id);
	msg->headers[h] = NULL;

	json_object_put(ov);
	json_object_put(body);
	json_object_put(pl);
	return 0;
fail:
	json_object_put(ov);
	json_object_put(body);
	json_object_put(pl);
	sender_apns_msg_free(msg);
	return -EINVAL;
}

void sender_apns_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t r0 = backoff_rand_default(NULL);
	uint64_t r1 = backoff_rand_default(NULL);
	int i, o = 0;

	memcpy(b, &r0, 8);
	memcpy(b + 8, &r1, 8);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}
