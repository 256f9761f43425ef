/*
 * sender_fcm.c - Firebase Cloud Messaging HTTP v1.
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
 *
 * Sending: a send takes the cached access token (auth_fcm.h makes the
 * oauth_cache) or waits for one, POSTs through the HTTP bridge, and
 * classifies the answer.  A 401 without an FcmError invalidates the token
 * and resends once with a new one (not an attempt); a second 401 is
 * FAILED with auth_failure.  Each send is on the credential's sendq until
 * its done callback, so cred_close() can cancel them all; results decided
 * inside send() are queued and delivered from the sendq's zero timer,
 * never from inside send().
 */
#include "platforms/fcm/sender_fcm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "platforms/fcm/auth_fcm.h"
#include "base/backoff.h"
#include "net/hdrcheck.h"
#include "net/http.h"
#include "base/log.h"
#include "base/mem.h"
#include "platforms/sendq.h"
#include "obs/trace.h"

#define USEC 1000000LL
#define FCM_DEFAULT_ENDPOINT "https://fcm.googleapis.com"
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- payload mapping (pure) -------------------------------------- */

static void set_result(struct push_result *res, enum push_outcome o,
		       const char *reason)
{
	memset(res, 0, sizeof *res);
	res->outcome = o;
	snprintf(res->reason, sizeof res->reason, "%s", reason);
}

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

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
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
		json_object *t = get(target, k);

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
		set_result(res, PUSH_OUTCOME_FAILED, why);
		return -EINVAL;
	}
	stringify_map(d);
	json_object_object_foreach(d, k, v) {
		(void)v;
		if (reserved_key(k)) {
			snprintf(why, sizeof why, "reserved data key: %.100s",
				 k);
			set_result(res, PUSH_OUTCOME_FAILED, why);
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
	json_object *android = get(m, "android"), *apns = get(m, "apns");
	json_object *p = get(apns, "payload");
	size_t n = strings_size(get(m, "data")) +
		   strings_size(get(m, "notification")) +
		   strings_size(get(android, "data")) +
		   strings_size(get(android, "notification")) +
		   strings_size(get(apns, "headers"));

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
	if ((v = get(pl, "title")) != NULL)
		add(note, "title", as_string(v));
	if ((v = get(pl, "body")) != NULL)
		add(note, "body", as_string(v));
	if ((v = get(pl, "image")) != NULL)
		add(note, "image", as_string(v));
	add_if_nonempty(m, "notification", note);

	if ((v = get(pl, "data")) != NULL &&
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
	if ((v = get(pl, "sound")) != NULL)
		add(anote, "sound", as_string(v));
	if ((v = get(pl, "badge")) != NULL &&
	    json_object_is_type(v, json_type_int))
		add(anote, "notification_count",
		    json_object_new_int64(json_object_get_int64(v)));
	if ((v = get(pl, "category")) != NULL)
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
	if ((v = get(pl, "subtitle")) != NULL) {
		json_object *alert = json_object_new_object();
		json_object *t;

		if ((t = get(pl, "title")) != NULL)
			add(alert, "title", as_string(t));
		if ((t = get(pl, "body")) != NULL)
			add(alert, "body", as_string(t));
		add(alert, "subtitle", as_string(v));
		add(aps, "alert", alert);
	}
	if ((v = get(pl, "badge")) != NULL &&
	    json_object_is_type(v, json_type_int))
		add(aps, "badge",
		    json_object_new_int64(json_object_get_int64(v)));
	if ((v = get(pl, "sound")) != NULL)
		add(aps, "sound", as_string(v));
	if ((v = get(pl, "category")) != NULL)
		add(aps, "category", as_string(v));
	if ((v = get(pl, "thread_id")) != NULL)
		add(aps, "thread-id", as_string(v));
	if (json_object_object_length(aps) > 0) {
		json_object *p = json_object_new_object();

		add(p, "aps", aps);
		add(apns, "payload", p);
	} else {
		json_object_put(aps);
	}
	add_if_nonempty(m, "apns", apns);

	if ((v = get(pl, "fcm")) != NULL) {
		if (!json_object_is_type(v, json_type_object)) {
			set_result(res, PUSH_OUTCOME_FAILED,
				   "the fcm override is not an object");
			goto out;
		}
		merge_patch(m, v);
	}

	if (check_data(get(m, "data"), "data", res) < 0 ||
	    check_data(get(get(m, "android"), "data"), "android.data",
		       res) < 0)
		goto out;
	if (content_size(m) > SENDER_FCM_MAX_CONTENT) {
		set_result(res, PUSH_OUTCOME_FAILED, "payload too large");
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
 * plain output of the tree above: a third of the per-push CPU of
 * building, serialising and freeing a tree of small objects.
 */
struct jw {
	char *buf;
	size_t len, cap;
};

static void jw_need(struct jw *w, size_t n)
{
	if (w->len + n + 1 <= w->cap)
		return;
	while (w->cap < w->len + n + 1)
		w->cap = w->cap ? w->cap * 2 : 512;
	w->buf = mem_realloc(w->buf, w->cap);
}

static void jw_raw(struct jw *w, const char *s, size_t n)
{
	jw_need(w, n);
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void jw_lit(struct jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

/* A JSON string, escaped as json-c does without slash escaping. */
static void jw_str(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	jw_need(w, n + 2);
	w->buf[w->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jw_raw(w, s + run, i - run);
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
		jw_raw(w, esc, el);
	}
	jw_raw(w, s + run, n - run);
	jw_raw(w, "\"", 1);
}

/* `"key":` after a comma unless it opens its object (*first). */
static void jw_key(struct jw *w, bool *first, const char *key)
{
	if (!*first)
		jw_raw(w, ",", 1);
	*first = false;
	jw_str(w, key, strlen(key));
	jw_raw(w, ":", 1);
}

/* v as a JSON string (as_string()); returns the string's length. */
static size_t jw_as_string(struct jw *w, json_object *v)
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
static void jw_field(struct jw *w, bool *first, const char *key,
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
	struct jw w = { 0 };
	json_object *v, *badge, *title = get(pl, "title"),
		*text = get(pl, "body"), *sound = get(pl, "sound"),
		*category = get(pl, "category");
	bool first = true, f2, f3, f4;
	bool collapse = item->collapse_key != NULL &&
			item->collapse_key[0] != '\0';
	size_t size = 0, mark;
	char buf[32];

	badge = get(pl, "badge");
	if (badge != NULL && !json_object_is_type(badge, json_type_int))
		badge = NULL;

	jw_lit(&w, "{\"message\":{");
	jw_key(&w, &first, "token");
	jw_str(&w, item->token, strlen(item->token));

	if (title != NULL || text != NULL || get(pl, "image") != NULL) {
		f2 = true;
		jw_key(&w, &first, "notification");
		jw_raw(&w, "{", 1);
		jw_field(&w, &f2, "title", title, &size);
		jw_field(&w, &f2, "body", text, &size);
		jw_field(&w, &f2, "image", get(pl, "image"), &size);
		jw_raw(&w, "}", 1);
	}

	if ((v = get(pl, "data")) != NULL &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0) {
		f2 = true;
		jw_key(&w, &first, "data");
		jw_raw(&w, "{", 1);
		json_object_object_foreach(v, k, dv) {
			if (reserved_key(k)) {
				char why[200];

				snprintf(why, sizeof why,
					 "reserved data key: %.100s", k);
				set_result(res, PUSH_OUTCOME_FAILED, why);
				free(w.buf);
				return -EINVAL;
			}
			/* a null value is the string "null" here */
			jw_key(&w, &f2, k);
			size += strlen(k) + jw_as_string(&w, dv);
		}
		jw_raw(&w, "}", 1);
	}

	/* android always has a priority */
	f2 = true;
	jw_key(&w, &first, "android");
	jw_raw(&w, "{", 1);
	if (collapse) {
		jw_key(&w, &f2, "collapse_key");
		jw_str(&w, item->collapse_key, strlen(item->collapse_key));
	}
	jw_key(&w, &f2, "priority");
	jw_lit(&w, item->priority == PUSH_PRIORITY_HIGH ? "\"HIGH\""
		   : "\"NORMAL\"");
	if (item->expires_at_us != 0) {
		int64_t ttl = (item->expires_at_us - now_us) / USEC;

		if (ttl < 0)
			ttl = 0;
		if (ttl > SENDER_FCM_MAX_TTL_S)
			ttl = SENDER_FCM_MAX_TTL_S;
		snprintf(buf, sizeof buf, "\"%llds\"", (long long)ttl);
		jw_key(&w, &f2, "ttl");
		jw_lit(&w, buf);
	}
	if (sound != NULL || badge != NULL || category != NULL) {
		f3 = true;
		jw_key(&w, &f2, "notification");
		jw_raw(&w, "{", 1);
		jw_field(&w, &f3, "sound", sound, &size);
		if (badge != NULL) {
			snprintf(buf, sizeof buf, "%lld", (long long)
				 json_object_get_int64(badge));
			jw_key(&w, &f3, "notification_count");
			jw_lit(&w, buf);
		}
		jw_field(&w, &f3, "click_action", category, &size);
		jw_raw(&w, "}", 1);
	}
	jw_raw(&w, "}", 1);

	bool hdrs = (collapse && strlen(item->collapse_key) <= 64) ||
		    item->expires_at_us != 0;
	bool aps = get(pl, "subtitle") != NULL || badge != NULL ||
		   sound != NULL || category != NULL ||
		   get(pl, "thread_id") != NULL;

	if (hdrs || aps) {
		f2 = true;
		jw_key(&w, &first, "apns");
		jw_raw(&w, "{", 1);
	}
	if (hdrs) {
		f3 = true;
		jw_key(&w, &f2, "headers");
		jw_raw(&w, "{", 1);
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
		jw_raw(&w, "}", 1);
	}
	if (aps) {
		jw_key(&w, &f2, "payload");
		mark = w.len;
		jw_lit(&w, "{\"aps\":{");
		f3 = true;
		if ((v = get(pl, "subtitle")) != NULL) {
			size_t ignored = 0;

			f4 = true;
			jw_key(&w, &f3, "alert");
			jw_raw(&w, "{", 1);
			jw_field(&w, &f4, "title", title, &ignored);
			jw_field(&w, &f4, "body", text, &ignored);
			jw_field(&w, &f4, "subtitle", v, &ignored);
			jw_raw(&w, "}", 1);
		}
		if (badge != NULL) {
			snprintf(buf, sizeof buf, "%lld", (long long)
				 json_object_get_int64(badge));
			jw_key(&w, &f3, "badge");
			jw_lit(&w, buf);
		}
		if (sound != NULL) {
			jw_key(&w, &f3, "sound");
			jw_as_string(&w, sound);
		}
		if (category != NULL) {
			jw_key(&w, &f3, "category");
			jw_as_string(&w, category);
		}
		if ((v = get(pl, "thread_id")) != NULL) {
			jw_key(&w, &f3, "thread-id");
			jw_as_string(&w, v);
		}
		jw_raw(&w, "}}", 2);
		size += w.len - mark;
	}
	if (hdrs || aps)
		jw_raw(&w, "}", 1);
	jw_raw(&w, "}}", 2);

	if (size > SENDER_FCM_MAX_CONTENT) {
		set_result(res, PUSH_OUTCOME_FAILED, "payload too large");
		free(w.buf);
		return -EINVAL;
	}
	*body = w.buf;
	return 0;
}

static int build(const struct push_item *item, int64_t now_us,
		 char **body, struct push_result *res, bool direct)
{
	json_object *pl;
	int rc;

	if (item->expires_at_us != 0 && item->expires_at_us <= now_us) {
		set_result(res, PUSH_OUTCOME_EXPIRED, "expired before sending");
		return -EINVAL;
	}
	if (item->token == NULL || item->token[0] == '\0') {
		set_result(res, PUSH_OUTCOME_FAILED, "no FCM token");
		return -EINVAL;
	}
	pl = sender_parse_payload(item->payload);
	if (pl == NULL || !json_object_is_type(pl, json_type_object)) {
		json_object_put(pl);
		set_result(res, PUSH_OUTCOME_FAILED,
			   sender_payload_why(item->payload));
		return -EINVAL;
	}
	if (direct && get(pl, "fcm") == NULL)
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

/* ---- classification (pure) --------------------------------------- */

/* What an FCM error body says; fields point into `root`. */
struct fcm_error_info {
	const char *status;       /* error.status */
	const char *message;      /* error.message */
	const char *error_code;   /* details[FcmError].errorCode */
	bool token_violation;     /* a fieldViolation on message.token */
};

static const char *str_of(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return v != NULL && json_object_is_type(v, json_type_string)
	       ? json_object_get_string(v) : NULL;
}

static bool code_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

static void parse_error(json_object *root, struct fcm_error_info *info)
{
	json_object *e = get(root, "error"), *details;
	size_t i, n;

	memset(info, 0, sizeof *info);
	if (e == NULL || !json_object_is_type(e, json_type_object))
		return;
	info->status = str_of(e, "status");
	info->message = str_of(e, "message");
	details = get(e, "details");
	if (details == NULL || !json_object_is_type(details, json_type_array))
		return;
	n = json_object_array_length(details);
	for (i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(details, i);
		json_object *fv = get(d, "fieldViolations");
		const char *code = str_of(d, "errorCode");

		if (code != NULL && info->error_code == NULL)
			info->error_code = code;
		if (fv != NULL && json_object_is_type(fv, json_type_array)) {
			size_t j, m = json_object_array_length(fv);

			for (j = 0; j < m; j++) {
				const char *f = str_of(
					json_object_array_get_idx(fv, j),
					"field");

				if (code_is(f, "message.token"))
					info->token_violation = true;
			}
		}
	}
}

/* Retryable: RETRY at `at`, or FAILED once the attempts are used up. */
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

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
			   *p == '\r'))
		p++;
	return p;
}

/*
 * True and the name in `out` when `body` is exactly one object with one
 * member "name" whose string has no escapes and fits; anything else
 * (other members, escapes, an error body) is left to the JSON parser.
 */
static bool plain_name(const char *body, size_t len, char *out,
		       size_t outlen)
{
	const char *p, *end, *q;

	if (body == NULL)
		return false;
	p = body;
	end = body + len;
	p = skip_ws(p, end);
	if (p == end || *p++ != '{')
		return false;
	p = skip_ws(p, end);
	if ((size_t)(end - p) < 6 || memcmp(p, "\"name\"", 6) != 0)
		return false;
	p = skip_ws(p + 6, end);
	if (p == end || *p++ != ':')
		return false;
	p = skip_ws(p, end);
	if (p == end || *p++ != '"')
		return false;
	for (q = p; q < end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return false;
	if (q == end || (size_t)(q - p) >= outlen)
		return false;
	if (skip_ws(q + 1, end) == end || *skip_ws(q + 1, end) != '}' ||
	    skip_ws(skip_ws(q + 1, end) + 1, end) != end)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

void sender_fcm_classify(const struct sender_fcm_answer *ans, int attempts,
			 int max_attempts, int64_t now_us, int64_t backoff_us,
			 struct push_result *res)
{
	struct fcm_error_info info;
	json_object *root = NULL;
	int64_t ra = 0;
	bool has_ra;
	long st = ans->status;

	memset(res, 0, sizeof *res);
	res->http_status = (int)st;
	has_ra = backoff_parse_retry_after(ans->retry_after, now_us, &ra) == 0;

	if (st == 0) {
		snprintf(res->reason, sizeof res->reason, "transport: %s",
			 ans->error != NULL ? ans->error : "unknown error");
		retry_or_fail(res, attempts, max_attempts, now_us + backoff_us);
		return;
	}
	/* The common answer, {"name": "projects/p/messages/id"}, without
	 * a JSON parser. */
	if (st >= 200 && st < 300 &&
	    plain_name(ans->body, ans->body_len, res->message_id,
		       sizeof res->message_id)) {
		res->outcome = PUSH_OUTCOME_SENT;
		return;
	}
	if (ans->body != NULL && ans->body_len > 0) {
		struct json_tokener *tok = json_tokener_new();

		root = json_tokener_parse_ex(tok, ans->body,
					     (int)ans->body_len);
		json_tokener_free(tok);
		if (root != NULL && !json_object_is_type(root,
							 json_type_object)) {
			json_object_put(root);
			root = NULL;
		}
	}
	parse_error(root, &info);
	if (info.error_code != NULL)
		snprintf(res->reason, sizeof res->reason, "%s",
			 info.error_code);
	else if (info.status != NULL)
		snprintf(res->reason, sizeof res->reason, "%s", info.status);
	else if (st != 200)
		snprintf(res->reason, sizeof res->reason, "HTTP %ld", st);

	if (st >= 200 && st < 300) {
		const char *name = str_of(root, "name");

		res->outcome = PUSH_OUTCOME_SENT;
		res->reason[0] = '\0';
		if (name != NULL)
			snprintf(res->message_id, sizeof res->message_id, "%s",
				 name);
	} else if (st == 400) {
		if (info.token_violation || (info.message != NULL &&
		    strstr(info.message,
			   "not a valid FCM registration token") != NULL))
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		else
			res->outcome = PUSH_OUTCOME_FAILED;
	} else if (st == 401) {
		res->outcome = PUSH_OUTCOME_FAILED;
		res->auth_failure = true;
		/* No FcmError: our OAuth token was refused; refresh it. */
		if (!code_is(info.error_code, "THIRD_PARTY_AUTH_ERROR") &&
		    !code_is(info.error_code, "APNS_AUTH_ERROR"))
			res->reauth = true;
	} else if (st == 403) {
		if (code_is(info.error_code, "SENDER_ID_MISMATCH")) {
			res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
		} else {
			res->outcome = PUSH_OUTCOME_FAILED;
			res->auth_failure = true;
		}
	} else if (st == 404) {
		res->outcome = PUSH_OUTCOME_INVALID_TOKEN;
	} else if (st == 429) {
		res->throttled = true;
		retry_or_fail(res, attempts, max_attempts,
			      has_ra ? ra : now_us +
			      (backoff_us > SENDER_FCM_QUOTA_WAIT_US
			       ? backoff_us : SENDER_FCM_QUOTA_WAIT_US));
	} else if (st >= 500 && st < 600) {
		int64_t at = now_us + backoff_us;

		if (has_ra && ra > at)
			at = ra;
		retry_or_fail(res, attempts, max_attempts, at);
	} else if (st == 408) {
		retry_or_fail(res, attempts, max_attempts, now_us + backoff_us);
	} else {
		res->outcome = PUSH_OUTCOME_FAILED;
	}
	json_object_put(root);
}

/* ---- the sender -------------------------------------------------- */

struct sender_cred {
	struct sender_env env;
	char *project_id;
	char *send_url;
	char *ca_path;
	struct oauth_cache *auth;
	struct sendq q;                 /* in flight (waiting or HTTP) */
	bool closing;
};

struct fcm_send {
	struct sender_cred *cred;
	struct push_item *item;
	int max_attempts;
	sender_done_fn done;
	void *arg;
	char *body;
	char *token;                    /* the bearer token sent */
	bool reauthed;
	struct oauth_cache_waiter waiter;
	struct http_xfer *xfer;
	struct sendq_item qi;           /* on cred->q */
};

static void send_free(struct fcm_send *s)
{
	free(s->body);
	if (s->token != NULL) {
		explicit_bzero(s->token, strlen(s->token));
		free(s->token);
	}
	free(s);
}

/* Hand the result back (from the loop) and free the send. */
static void finish(struct fcm_send *s, struct push_result *res)
{
	struct push_item *item = s->item;

	sendq_remove(&s->cred->q, &s->qi);
	if (item->debug)
		log_info("fcm push done", "push_id=%lld outcome=%s status=%d "
			 "reason=%s", (long long)item->push_id,
			 push_outcome_name(res->outcome), res->http_status,
			 res->reason);
	/* The pool sees a final result; the reauth happened in here. */
	res->reauth = false;
	s->done(s->arg, item, res);
	send_free(s);
}

/* A result decided inside send(), delivered by the queue's timer. */
static void finish_deferred(struct sendq_item *it, struct push_result *res)
{
	finish(sendq_entry(it, struct fcm_send, qi), res);
}

static int64_t retry_delay(const struct fcm_send *s)
{
	return backoff_delay_us(s->item->attempts, SENDER_FCM_BACKOFF_BASE_US,
				SENDER_FCM_BACKOFF_CAP_US, NULL, NULL);
}

static void post(struct fcm_send *s, const char *token);

static void on_auth(void *arg, const char *token,
		    const struct oauth_cache_error *err)
{
	struct fcm_send *s = arg;
	struct push_result res;
	int64_t now, at;

	if (token != NULL) {
		post(s, token);
		return;
	}
	now = push_now_us();
	memset(&res, 0, sizeof res);
	snprintf(res.reason, sizeof res.reason, "%s", err->reason);
	if (s->cred->closing) {
		sendq_set_cancelled(&res);
	} else if (err->permanent) {
		res.outcome = PUSH_OUTCOME_FAILED;
		res.auth_failure = true;
	} else {
		at = now + retry_delay(s);
		if (err->retry_at_us > at)
			at = err->retry_at_us;
		retry_or_fail(&res, s->item->attempts, s->max_attempts, at);
	}
	finish(s, &res);
}

/* Answer headers a debug push's trace keeps. */
static const char *const fcm_trace_headers[] = { "retry-after",
						  "content-type", NULL };

static void on_answer(void *arg, const struct http_response *hr)
{
	struct fcm_send *s = arg;
	struct sender_cred *cred = s->cred;
	struct sender_fcm_answer ans;
	struct push_result res;
	const char *tok;

	s->xfer = NULL;
	if (cred->closing) {
		sendq_set_cancelled(&res);
		finish(s, &res);
		return;
	}
	memset(&ans, 0, sizeof ans);
	ans.status = hr->status;
	ans.body = hr->body;
	ans.body_len = hr->body_len;
	ans.error = hr->error;
	ans.err = hr->err;
	ans.retry_after = http_response_header(hr, "retry-after");
	trace_http_response(&cred->env, s->item, NULL, hr, fcm_trace_headers);
	sender_fcm_classify(&ans, s->item->attempts, s->max_attempts,
			    push_now_us(), retry_delay(s), &res);
	if (res.reauth && !s->reauthed) {
		s->reauthed = true;
		log_info("fcm access token refused, refreshing",
			 "project=%s push_id=%lld", cred->project_id,
			 (long long)s->item->push_id);
		oauth_cache_invalidate(cred->auth, s->token);
		tok = oauth_cache_token(cred->auth, push_now_us());
		if (tok != NULL)
			post(s, tok);
		else
			oauth_cache_wait(cred->auth, &s->waiter, on_auth, s);
		return;
	}
	finish(s, &res);
}

/* POST the body with `token`; from the loop (or from send()). */
static void post(struct fcm_send *s, const char *token)
{
	struct sender_cred *cred = s->cred;
	struct http_request req;
	struct push_result res;
	const char *headers[3];
	char *auth;
	size_t alen = strlen(token) + 32;
	int rc;

	if (s->token != NULL) {
		explicit_bzero(s->token, strlen(s->token));
		free(s->token);
	}
	s->token = mem_strdup(token);
	auth = mem_alloc(alen);
	snprintf(auth, alen, "Authorization: Bearer %s", token);
	headers[0] = auth;
	headers[1] = "Content-Type: application/json";
	headers[2] = NULL;

	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = cred->send_url;
	req.ca_path = cred->ca_path;
	req.headers = headers;
	req.body = s->body;
	req.body_len = strlen(s->body);
	req.connect_timeout_ms = cred->env.connect_timeout_ms;
	req.timeout_ms = cred->env.request_timeout_ms;
	/* fcm.googleapis.com speaks HTTP/2: the bridge's own client. */
	req.h2_direct = true;
	req.done = on_answer;
	req.arg = s;
	trace_http_request(&cred->env, s->item, NULL, &req);
	s->item->sent_at_us = push_now_us();
	rc = http_submit(cred->env.http, &req, &s->xfer);
	explicit_bzero(auth, strlen(auth));
	free(auth);
	if (rc < 0) {
		s->xfer = NULL;
		memset(&res, 0, sizeof res);
		snprintf(res.reason, sizeof res.reason,
			 "transport: cannot start the request: %s",
			 strerror(-rc));
		retry_or_fail(&res, s->item->attempts, s->max_attempts,
			      push_now_us() + retry_delay(s));
		sendq_finish_later(&cred->q, &s->qi, &res);
	}
}

static int fcm_send(struct sender_cred *cred, struct push_item *item,
		    int max_attempts, sender_done_fn done, void *arg)
{
	struct fcm_send *s = mem_alloc_zero(1, sizeof *s);
	struct push_result res;
	const char *tok;

	s->cred = cred;
	s->item = item;
	s->max_attempts = max_attempts > 0 ? max_attempts
			  : cred->env.max_attempts;
	s->done = done;
	s->arg = arg;
	sendq_add(&cred->q, &s->qi);
	if (cred->closing) {
		sendq_set_cancelled(&res);
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	if (sender_fcm_build_body(item, push_now_us(), &s->body, &res) < 0) {
		sendq_finish_later(&cred->q, &s->qi, &res);
		return 0;
	}
	tok = oauth_cache_token(cred->auth, push_now_us());
	if (tok != NULL)
		post(s, tok);
	else
		oauth_cache_wait(cred->auth, &s->waiter, on_auth, s);
	return 0;
}

/* A string member of `o`, or NULL when absent, null or not a string. */
static const char *opt_str(json_object *o, const char *key)
{
	const char *s = str_of(o, key);

	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int fcm_cred_open(struct sender_cred **out,
			 const struct sender_env *env, const char *row_json,
			 char *err, size_t errlen)
{
	json_object *row, *sa, *sa_owned = NULL;
	const char *project, *endpoint, *token_url, *audience, *ca;
	struct auth_fcm_config cfg;
	struct sender_cred *cred;
	char aerr[200];
	size_t n;
	int rc = -EINVAL;

	row = json_tokener_parse(row_json != NULL ? row_json : "");
	if (row == NULL || !json_object_is_type(row, json_type_object)) {
		snprintf(err, errlen, "fcm credential: not a JSON object");
		json_object_put(row);
		return -EINVAL;
	}
	sa = get(row, "service_account");
	if (sa != NULL && json_object_is_type(sa, json_type_string)) {
		sa_owned = json_tokener_parse(json_object_get_string(sa));
		sa = sa_owned;
	}
	if (sa == NULL || !json_object_is_type(sa, json_type_object)) {
		snprintf(err, errlen,
			 "fcm credential: service_account is not an object");
		goto out;
	}
	project = opt_str(row, "project_id");
	if (project == NULL)
		project = opt_str(sa, "project_id");
	if (project == NULL) {
		snprintf(err, errlen, "fcm credential: no project_id");
		goto out;
	}
	if (!hdrcheck_segment_ok(project)) {
		snprintf(err, errlen, "fcm credential: project_id is not a "
			 "valid URL path segment");
		goto out;
	}
	endpoint = opt_str(row, "endpoint");
	if (endpoint == NULL)
		endpoint = FCM_DEFAULT_ENDPOINT;
	/* The assertion's audience is the service account's token_uri, as
	 * Google requires; token_endpoint only redirects the request (a
	 * proxy, or the test fake). */
	audience = opt_str(sa, "token_uri");
	if (audience == NULL)
		audience = AUTH_FCM_TOKEN_URL;
	token_url = opt_str(row, "token_endpoint");
	if (token_url == NULL)
		token_url = audience;
	ca = opt_str(row, "ca_bundle_path");

	memset(&cfg, 0, sizeof cfg);
	cfg.client_email = opt_str(sa, "client_email");
	cfg.private_key_pem = opt_str(sa, "private_key");
	cfg.private_key_id = opt_str(sa, "private_key_id");
	cfg.token_url = token_url;
	cfg.audience = audience;
	cfg.ca_path = ca;
	cfg.connect_timeout_ms = env->connect_timeout_ms;
	cfg.request_timeout_ms = env->request_timeout_ms;

	cred = mem_alloc_zero(1, sizeof *cred);
	rc = auth_fcm_new(&cred->auth, env->loop, env->http, &cfg, aerr,
			  sizeof aerr);
	if (rc < 0) {
		snprintf(err, errlen, "fcm credential: %s", aerr);
		free(cred);
		goto out;
	}
	cred->env = *env;
	cred->project_id = mem_strdup(project);
	n = strlen(endpoint);
	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	cred->send_url = mem_alloc(n + strlen(project) + 32);
	sprintf(cred->send_url, "%.*s/v1/projects/%s/messages:send", (int)n,
		endpoint, project);
	cred->ca_path = ca != NULL ? mem_strdup(ca) : NULL;
	sendq_init(&cred->q, env->loop, finish_deferred);
	*out = cred;
	rc = 0;
out:
	/* The row holds the private key: clear json-c's copy of it. */
	if (sa != NULL && json_object_is_type(sa, json_type_object)) {
		json_object *k = get(sa, "private_key");

		if (k != NULL && json_object_is_type(k, json_type_string))
			explicit_bzero((char *)json_object_get_string(k),
				       (size_t)json_object_get_string_len(k));
	}
	json_object_put(sa_owned);
	json_object_put(row);
	return rc;
}

static void fcm_cred_close(struct sender_cred *cred)
{
	struct push_result res;

	/* Already closing: a cancelled send's callback came back here. */
	if (cred == NULL || cred->closing)
		return;
	cred->closing = true;
	while (cred->q.sends != NULL) {
		struct fcm_send *s = sendq_entry(cred->q.sends,
						 struct fcm_send, qi);

		if (s->xfer != NULL) {
			/* on_answer sees `closing` and finishes it. */
			http_cancel(cred->env.http, s->xfer);
		} else {
			oauth_cache_cancel(cred->auth, &s->waiter);
			sendq_set_cancelled(&res);
			finish(s, &res);
		}
	}
	sendq_flush(&cred->q);
	oauth_cache_free(cred->auth);
	free(cred->project_id);
	free(cred->send_url);
	free(cred->ca_path);
	sendq_close(&cred->q, free, cred);
}

const struct sender_ops sender_fcm_ops = {
	.name = "fcm",
	.platform = PUSH_PLATFORM_FCM,
	.cred_open = fcm_cred_open,
	.cred_close = fcm_cred_close,
	.send = fcm_send,
};
