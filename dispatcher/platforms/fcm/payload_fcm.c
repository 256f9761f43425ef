/*
 * payload_fcm.c - the FCM HTTP v1 request body: the neutral payload
 * mapped to the v1 Message (sender_fcm_build_body), pure.
 *
 * Mapping of the neutral payload to the v1 Message (sender_fcm_build_body):
 *
 *   title, body, image   -> notification.{title,body,image}
 *   data {k: v}          -> data {k: "v"}; strings as they are, any other
 *                           value as its JSON text (1, true, {"a":1})
 *   sound                -> android.notification.sound, apns aps.sound
 *   badge                -> android.notification.notification_count,
 *                           apns aps.badge
 *   category             -> android.notification.click_action,
 *                           apns aps.category
 *   thread_id            -> apns aps.thread-id
 *   subtitle             -> apns aps.alert.subtitle (with title and body,
 *                           since an aps.alert object replaces them)
 *   collapse_key (push)  -> android.collapse_key, apns-collapse-id header
 *                           (only if <= 64 bytes, Apple's limit)
 *   priority (push)      -> android.priority: HIGH for high, else NORMAL
 *   expires_at (push)    -> android.ttl "<N>s" (seconds left, clamped to
 *                           0..2419200) and apns-expiration (epoch s); a
 *                           push already expired is not sent (EXPIRED)
 *   token (push)         -> token
 *   fcm {...}            -> merged last into the message, recursively
 *                           (RFC 7386 merge patch: objects merge, other
 *                           values replace, null removes)
 *
 * Other keys (apns, wns, mpns, webpush overrides, unknown keys) are
 * ignored.  After the merge, data and android.data values are made
 * strings again and checked for reserved keys (from, message_type,
 * google*, gcm*), and the content is measured the way the fake provider
 * approximates FCM's 4096-byte limit (keys + values of data,
 * notification, android data/notification, apns headers, plus the
 * serialized apns payload).  Both make the push FAILED before sending.
 */
#include "platforms/fcm/sender_fcm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/buf.h"
#include "base/mem.h"
#include "platforms/jsonget.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- payload mapping (pure) -------------------------------------- */

/* A new json string holding v (a string stays, others as JSON text). */
static json_object *as_string(json_object *v)
{
	if (json_object_is_type(v, json_type_string))
		return json_object_new_string_len(json_object_get_string(v),
					json_object_get_string_len(v));
	if (v == NULL)
		return json_object_new_string("null");
	return json_object_new_string(json_object_to_json_string_ext(v,
							JSON_FLAGS));
}

/* o[key] = v (replacing); v is consumed. */
static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

static void add_if_nonempty(json_object *o, const char *key, json_object *c)
{
	if (json_object_object_length(c) > 0)
		json_object_object_add(o, key, c);
	else
		json_object_put(c);
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
			json_object *copy = NULL;

			json_object_deep_copy(v, &copy, NULL);
			json_object_object_add(target, k, copy);
		}
	}
}

/* Make every value of the data map `d` a string. */
static void stringify_map(json_object *d)
{
	json_object_object_foreach(d, k, v) {
		if (!json_object_is_type(v, json_type_string))
			json_object_object_add(d, k, as_string(v));
	}
}

static bool reserved_key(const char *k)
{
	return strcmp(k, "from") == 0 || strcmp(k, "message_type") == 0 ||
	       strncmp(k, "google", 6) == 0 || strncmp(k, "gcm", 3) == 0;
}

/* Check data map `d` (may be NULL); 0, or -EINVAL with res filled. */
static int check_data(json_object *d, const char *where,
		      struct push_result *res)
{
	char why[200];

	if (d == NULL)
		return 0;
	if (!json_object_is_type(d, json_type_object)) {
		snprintf(why, sizeof why, "%s is not an object", where);
		push_result_set(res, PUSH_OUTCOME_FAILED, why);
		return -EINVAL;
	}
	stringify_map(d);
	json_object_object_foreach(d, k, v) {
		(void)v;
		if (reserved_key(k)) {
			snprintf(why, sizeof why, "reserved data key: %.100s",
				 k);
			push_result_set(res, PUSH_OUTCOME_FAILED, why);
			return -EINVAL;
		}
	}
	return 0;
}

/* Keys + string values of o's members (like FCM's count, roughly). */
static size_t strings_size(json_object *o)
{
	size_t n = 0;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach(o, k, v) {
		if (json_object_is_type(v, json_type_string))
			n += strlen(k) + (size_t)json_object_get_string_len(v);
	}
	return n;
}

static size_t content_size(json_object *m)
{
	json_object *android = jsonget(m, "android");
	json_object *apns = jsonget(m, "apns");
	json_object *p = jsonget(apns, "payload");
	size_t n = strings_size(jsonget(m, "data")) +
		   strings_size(jsonget(m, "notification")) +
		   strings_size(jsonget(android, "data")) +
		   strings_size(jsonget(android, "notification")) +
		   strings_size(jsonget(apns, "headers"));

	if (p != NULL)
		n += strlen(json_object_to_json_string_ext(p, JSON_FLAGS));
	return n;
}

/*
 * The mapping through a json-c tree: needed for an fcm override (a merge
 * patch over the whole message), and the reference the direct writer
 * below must match byte for byte (tests compare the two).
 */
static int build_tree(const struct push_item *item, int64_t now_us,
		      json_object *pl, char **body, struct push_result *res)
{
	json_object *m, *note, *android, *anote, *apns, *hdrs, *aps;
	json_object *v, *root;
	int rc = -EINVAL;

	m = json_object_new_object();
	add(m, "token", json_object_new_string(item->token));

	note = json_object_new_object();
	if ((v = jsonget(pl, "title")) != NULL)
		add(note, "title", as_string(v));
	if ((v = jsonget(pl, "body")) != NULL)
		add(note, "body", as_string(v));
	if ((v = jsonget(pl, "image")) != NULL)
		add(note, "image", as_string(v));
	add_if_nonempty(m, "notification", note);

	if ((v = jsonget(pl, "data")) != NULL &&
	    json_object_is_type(v, json_type_object)) {
		json_object *d = json_object_new_object();

		json_object_object_foreach(v, k, dv)
			add(d, k, as_string(dv));
		add_if_nonempty(m, "data", d);
	}

	android = json_object_new_object();
	if (item->collapse_key != NULL && item->collapse_key[0] != '\0')
		add(android, "collapse_key",
		    json_object_new_string(item->collapse_key));
	add(android, "priority", json_object_new_string(
		    item->priority == PUSH_PRIORITY_HIGH ? "HIGH" : "NORMAL"));
	if (item->expires_at_us != 0) {
		int64_t ttl = (item->expires_at_us - now_us) / USEC;
		char buf[32];

		if (ttl < 0)
			ttl = 0;
		if (ttl > SENDER_FCM_MAX_TTL_S)
			ttl = SENDER_FCM_MAX_TTL_S;
		snprintf(buf, sizeof buf, "%llds", (long long)ttl);
		add(android, "ttl", json_object_new_string(buf));
	}
	anote = json_object_new_object();
	if ((v = jsonget(pl, "sound")) != NULL)
		add(anote, "sound", as_string(v));
	if ((v = jsonget(pl, "badge")) != NULL &&
	    json_object_is_type(v, json_type_int))
		add(anote, "notification_count",
		    json_object_new_int64(json_object_get_int64(v)));
	if ((v = jsonget(pl, "category")) != NULL)
		add(anote, "click_action", as_string(v));
	add_if_nonempty(android, "notification", anote);
	add_if_nonempty(m, "android", android);

	apns = json_object_new_object();
	hdrs = json_object_new_object();
	if (item->collapse_key != NULL && item->collapse_key[0] != '\0' &&
	    strlen(item->collapse_key) <= 64)
		add(hdrs, "apns-collapse-id",
		    json_object_new_string(item->collapse_key));
	if (item->expires_at_us != 0) {
		char buf[32];

		snprintf(buf, sizeof buf, "%lld",
			 (long long)(item->expires_at_us / USEC));
		add(hdrs, "apns-expiration", json_object_new_string(buf));
	}
	add_if_nonempty(apns, "headers", hdrs);
	aps = json_object_new_object();
	if ((v = jsonget(pl, "subtitle")) != NULL) {
		json_object *alert = json_object_new_object();
		json_object *t;

		if ((t = jsonget(pl, "title")) != NULL)
			add(alert, "title", as_string(t));
		if ((t = jsonget(pl, "body")) != NULL)
			add(alert, "body", as_string(t));
		add(alert, "subtitle", as_string(v));
		add(aps, "alert", alert);
	}
	if ((v = jsonget(pl, "badge")) != NULL &&
	    json_object_is_type(v, json_type_int))
		add(aps, "badge",
		    json_object_new_int64(json_object_get_int64(v)));
	if ((v = jsonget(pl, "sound")) != NULL)
		add(aps, "sound", as_string(v));
	if ((v = jsonget(pl, "category")) != NULL)
		add(aps, "category", as_string(v));
	if ((v = jsonget(pl, "thread_id")) != NULL)
		add(aps, "thread-id", as_string(v));
	if (json_object_object_length(aps) > 0) {
		json_object *p = json_object_new_object();

		add(p, "aps", aps);
		add(apns, "payload", p);
	} else {
		json_object_put(aps);
	}
	add_if_nonempty(m, "apns", apns);

	if ((v = jsonget(pl, "fcm")) != NULL) {
		if (!json_object_is_type(v, json_type_object)) {
			push_result_set(res, PUSH_OUTCOME_FAILED,
					"the fcm override is not an object");
			goto out;
		}
		merge_patch(m, v);
	}

	if (check_data(jsonget(m, "data"), "data", res) < 0 ||
	    check_data(jsonget(jsonget(m, "android"), "data"), "android.data",
		       res) < 0)
		goto out;
	if (content_size(m) > SENDER_FCM_MAX_CONTENT) {
		push_result_set(res, PUSH_OUTCOME_FAILED, "payload too large");
		goto out;
	}
	root = json_object_new_object();
	add(root, "message", json_object_get(m));
	*body = mem_strdup(json_object_to_json_string_ext(root, JSON_FLAGS));
	json_object_put(root);
	rc = 0;
out:
	json_object_put(m);
	return rc;
}


/* ---- the direct writer ------------------------------------------- */

/*
 * Without an fcm override the message is written straight into one
 * buffer, in the same key order and with the same escaping as json-c's
 * plain output of the tree above: much cheaper than building,
 * serialising and freeing a tree of small objects per push.
 *
 * The buffer's cap cannot bite on a push the enqueue trigger accepted:
 * its payload is at most 5120 bytes of JSON text (push.payload_limit()),
 * each field is written at most three times (notification, android,
 * apns alert) and never longer than in that text (json-c escapes what
 * the text escaped), and the token is at most 2048 bytes.  A body past
 * it anyway makes the push FAILED, "request body too large".
 */
#define FCM_BODY_MAX (256 * 1024)

/* A JSON string, escaped as json-c does without slash escaping. */
static void jw_str(struct buf *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	buf_addc(w, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(w, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		buf_add(w, esc, el);
	}
	buf_add(w, s + run, n - run);
	buf_addc(w, '"');
}

/* `"key":` after a comma unless it opens its object (*first). */
static void jw_key(struct buf *w, bool *first, const char *key)
{
	if (!*first)
		buf_addc(w, ',');
	*first = false;
	jw_str(w, key, strlen(key));
	buf_addc(w, ':');
}

/* v as a JSON string (as_string()); returns the string's length. */
static size_t jw_as_string(struct buf *w, json_object *v)
{
	const char *t;
	size_t n;

	if (v == NULL) {
		t = "null";
		n = 4;
	} else if (json_object_is_type(v, json_type_string)) {
		t = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
	} else {
		t = json_object_to_json_string_ext(v, JSON_FLAGS);
		n = strlen(t);
	}
	jw_str(w, t, n);
	return n;
}

/* "key":"v" for a present payload field; adds key + value to *size. */
static void jw_field(struct buf *w, bool *first, const char *key,
		     json_object *v, size_t *size)
{
	if (v == NULL)
		return;
	jw_key(w, first, key);
	*size += strlen(key) + jw_as_string(w, v);
}

static int build_direct(const struct push_item *item, int64_t now_us,
			json_object *pl, char **body, struct push_result *res)
{
	struct buf w;
	json_object *v, *badge, *title = jsonget(pl, "title"),
		*text = jsonget(pl, "body"), *sound = jsonget(pl, "sound"),
		*category = jsonget(pl, "category");
	bool first = true, f2, f3, f4;
	bool collapse = item->collapse_key != NULL &&
			item->collapse_key[0] != '\0';
	size_t size = 0, mark;
	char buf[32];

	badge = jsonget(pl, "badge");
	if (badge != NULL && !json_object_is_type(badge, json_type_int))
		badge = NULL;

	buf_init(&w, FCM_BODY_MAX);
	buf_addstr(&w, "{\"message\":{");
	jw_key(&w, &first, "token");
	jw_str(&w, item->token, strlen(item->token));

	if (title != NULL || text != NULL || jsonget(pl, "image") != NULL) {
		f2 = true;
		jw_key(&w, &first, "notification");
		buf_addc(&w, '{');
		jw_field(&w, &f2, "title", title, &size);
		jw_field(&w, &f2, "body", text, &size);
		jw_field(&w, &f2, "image", jsonget(pl, "image"), &size);
		buf_addc(&w, '}');
	}

	if ((v = jsonget(pl, "data")) != NULL &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0) {
		f2 = true;
		jw_key(&w, &first, "data");
		buf_addc(&w, '{');
		json_object_object_foreach(v, k, dv) {
			if (reserved_key(k)) {
				char why[200];

				snprintf(why, sizeof why,
					 "reserved data key: %.100s", k);
				push_result_set(res, PUSH_OUTCOME_FAILED, why);
				buf_free(&w);
				return -EINVAL;
			}
			/* a null value is the string "null" here */
			jw_key(&w, &f2, k);
			size += strlen(k) + jw_as_string(&w, dv);
		}
		buf_addc(&w, '}');
	}

	/* android always has a priority */
	f2 = true;
	jw_key(&w, &first, "android");
	buf_addc(&w, '{');
	if (collapse) {
		jw_key(&w, &f2, "collapse_key");
		jw_str(&w, item->collapse_key, strlen(item->collapse_key));
	}
	jw_key(&w, &f2, "priority");
	buf_addstr(&w, item->priority == PUSH_PRIORITY_HIGH ? "\"HIGH\""
		   : "\"NORMAL\"");
	if (item->expires_at_us != 0) {
		int64_t ttl = (item->expires_at_us - now_us) / USEC;

		if (ttl < 0)
			ttl = 0;
		if (ttl > SENDER_FCM_MAX_TTL_S)
			ttl = SENDER_FCM_MAX_TTL_S;
		snprintf(buf, sizeof buf, "\"%llds\"", (long long)ttl);
		jw_key(&w, &f2, "ttl");
		buf_addstr(&w, buf);
	}
	if (sound != NULL || badge != NULL || category != NULL) {
		f3 = true;
		jw_key(&w, &f2, "notification");
		buf_addc(&w, '{');
		jw_field(&w, &f3, "sound", sound, &size);
		if (badge != NULL) {
			snprintf(buf, sizeof buf, "%lld", (long long)
				 json_object_get_int64(badge));
			jw_key(&w, &f3, "notification_count");
			buf_addstr(&w, buf);
		}
		jw_field(&w, &f3, "click_action", category, &size);
		buf_addc(&w, '}');
	}
	buf_addc(&w, '}');

	bool hdrs = (collapse && strlen(item->collapse_key) <= 64) ||
		    item->expires_at_us != 0;
	bool aps = jsonget(pl, "subtitle") != NULL || badge != NULL ||
		   sound != NULL || category != NULL ||
		   jsonget(pl, "thread_id") != NULL;

	if (hdrs || aps) {
		f2 = true;
		jw_key(&w, &first, "apns");
		buf_addc(&w, '{');
	}
	if (hdrs) {
		f3 = true;
		jw_key(&w, &f2, "headers");
		buf_addc(&w, '{');
		if (collapse && strlen(item->collapse_key) <= 64) {
			jw_key(&w, &f3, "apns-collapse-id");
			jw_str(&w, item->collapse_key,
			       strlen(item->collapse_key));
			size += strlen("apns-collapse-id") +
				strlen(item->collapse_key);
		}
		if (item->expires_at_us != 0) {
			int n = snprintf(buf, sizeof buf, "%lld",
					 (long long)(item->expires_at_us /
						     USEC));

			jw_key(&w, &f3, "apns-expiration");
			jw_str(&w, buf, (size_t)n);
			size += strlen("apns-expiration") + (size_t)n;
		}
		buf_addc(&w, '}');
	}
	if (aps) {
		jw_key(&w, &f2, "payload");
		mark = w.len;
		buf_addstr(&w, "{\"aps\":{");
		f3 = true;
		if ((v = jsonget(pl, "subtitle")) != NULL) {
			size_t ignored = 0;

			f4 = true;
			jw_key(&w, &f3, "alert");
			buf_addc(&w, '{');
			jw_field(&w, &f4, "title", title, &ignored);
			jw_field(&w, &f4, "body", text, &ignored);
			jw_field(&w, &f4, "subtitle", v, &ignored);
			buf_addc(&w, '}');
		}
		if (badge != NULL) {
			snprintf(buf, sizeof buf, "%lld", (long long)
				 json_object_get_int64(badge));
			jw_key(&w, &f3, "badge");
			buf_addstr(&w, buf);
		}
		if (sound != NULL) {
			jw_key(&w, &f3, "sound");
			jw_as_string(&w, sound);
		}
		if (category != NULL) {
			jw_key(&w, &f3, "category");
			jw_as_string(&w, category);
		}
		if ((v = jsonget(pl, "thread_id")) != NULL) {
			jw_key(&w, &f3, "thread-id");
			jw_as_string(&w, v);
		}
		buf_addstr(&w, "}}");
		size += w.len - mark;
	}
	if (hdrs || aps)
		buf_addc(&w, '}');
	buf_addstr(&w, "}}");

	if (buf_full(&w) || size > SENDER_FCM_MAX_CONTENT) {
		push_result_set(res, PUSH_OUTCOME_FAILED,
				buf_full(&w) ? "request body too large"
				: "payload too large");
		buf_free(&w);
		return -EINVAL;
	}
	*body = buf_take(&w);
	return 0;
}

static int build(const struct push_item *item, int64_t now_us,
		 char **body, struct push_result *res, bool direct)
{
	json_object *pl;
	int rc;

	if (item->expires_at_us != 0 && item->expires_at_us <= now_us) {
		push_result_set(res, PUSH_OUTCOME_EXPIRED,
				"expired before sending");
		return -EINVAL;
	}
	if (item->token == NULL || item->token[0] == '\0') {
		push_result_set(res, PUSH_OUTCOME_FAILED, "no FCM token");
		return -EINVAL;
	}
	pl = sender_parse_payload(item->payload);
	if (pl == NULL || !json_object_is_type(pl, json_type_object)) {
		json_object_put(pl);
		push_result_set(res, PUSH_OUTCOME_FAILED,
				sender_payload_why(item->payload));
		return -EINVAL;
	}
	if (direct && jsonget(pl, "fcm") == NULL)
		rc = build_direct(item, now_us, pl, body, res);
	else
		rc = build_tree(item, now_us, pl, body, res);
	json_object_put(pl);
	return rc;
}

int sender_fcm_build_body(const struct push_item *item, int64_t now_us,
			  char **body, struct push_result *res)
{
	return build(item, now_us, body, res, true);
}

int sender_fcm_build_body_tree(const struct push_item *item, int64_t now_us,
			       char **body, struct push_result *res)
{
	return build(item, now_us, body, res, false);
}
