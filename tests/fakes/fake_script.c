/*
 * fake_script.c — the script: per-token rules, server-wide modes,
 * latency distribution and per-token counters.
 *
 * Rules live in one list; a rule with "times" counts down and is
 * removed when it reaches zero, so "fail N times then succeed" is a
 * rule with times = N.  Modes are rules with an end time that match
 * every request of a provider.  Counters are a chained hash table
 * keyed by provider and token.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "fake_script.h"

#define NBUCKET 4096

struct counter {
	int prov;
	char *token;
	long requests, ok, failed, dropped;
	int last_status;
	struct counter *next;
};

static struct fake_rule *rules;
static struct fake_rule *modes;
static struct counter *buckets[NBUCKET];
static struct {
	int prov;		/* -1: all */
	int kind;		/* 0 none, 1 uniform, 2 exponential */
	int min_ms, max_ms, mean_ms;
} latency;

static const char *actions[] = {
	"respond", "reset_stream", "reset_conn", "goaway", "respond_goaway",
	"close"
};

static void
rule_free(struct fake_rule *r)
{
	fake_rule_clear(r);
	free(r);
}

void
fake_rule_clear(struct fake_rule *r)
{
	free(r->token);
	free(r->reason);
	free(r->body);
	json_object_put(r->headers);
	memset(r, 0, sizeof *r);
}

static void
rule_copy(struct fake_rule *dst, const struct fake_rule *src)
{
	*dst = *src;
	dst->next = NULL;
	dst->token = src->token ? fake_xstrdup(src->token) : NULL;
	dst->reason = src->reason ? fake_xstrdup(src->reason) : NULL;
	dst->body = src->body ? fake_xstrdup(src->body) : NULL;
	dst->headers = json_object_get(src->headers);
}

static int
get_int(json_object *spec, const char *key, int *out, int min, int max,
    char *err, size_t errlen)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(spec, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "%s must be an integer", key);
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < min || n > max) {
		snprintf(err, errlen, "%s out of range", key);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static const char *
get_str(json_object *spec, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(spec, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static const char *known_keys[] = {
	"provider", "token", "status", "reason", "times", "delay_ms",
	"action", "error_code", "retry_after", "timestamp", "headers",
	"body", "seconds", "percent", NULL
};

/* Parses a rule/mode spec into r (zeroed by the call). */
static int
parse_rule(json_object *spec, struct fake_rule *r, char *err, size_t errlen)
{
	const char *s;
	int i, ec = 0;
	json_object *v;

	memset(r, 0, sizeof *r);
	r->times = -1;
	r->retry_after = -1;
	if (!json_object_is_type(spec, json_type_object)) {
		snprintf(err, errlen, "body must be a JSON object");
		return -1;
	}
	json_object_object_foreach(spec, key, val) {
		(void)val;
		for (i = 0; known_keys[i] != NULL; i++)
			if (strcmp(key, known_keys[i]) == 0)
				break;
		if (known_keys[i] == NULL) {
			snprintf(err, errlen, "unknown field %s", key);
			return -1;
		}
	}
	s = get_str(spec, "provider");
	if (s == NULL || strcmp(s, "*") == 0)
		r->prov = -1;
	else if ((r->prov = fake_provider_parse(s)) < 0 ||
	    r->prov == FAKE_CTL) {
		snprintf(err, errlen, "unknown provider %s", s);
		return -1;
	}
	if ((s = get_str(spec, "token")) != NULL)
		r->token = fake_xstrdup(s);
	if ((s = get_str(spec, "reason")) != NULL)
		r->reason = fake_xstrdup(s);
	if ((s = get_str(spec, "body")) != NULL)
		r->body = fake_xstrdup(s);
	if ((s = get_str(spec, "action")) != NULL) {
		for (i = 0; i < (int)(sizeof actions / sizeof *actions); i++)
			if (strcmp(s, actions[i]) == 0)
				break;
		if (i == (int)(sizeof actions / sizeof *actions)) {
			snprintf(err, errlen, "unknown action %s", s);
			return -1;
		}
		r->action = i;
	}
	if (get_int(spec, "status", &r->status, 0, 599, err, errlen) ||
	    get_int(spec, "times", &r->times, -1, 1 << 30, err, errlen) ||
	    get_int(spec, "delay_ms", &r->delay_ms, 0, 600000, err,
	    errlen) ||
	    get_int(spec, "retry_after", &r->retry_after, 0, 1 << 30, err,
	    errlen) ||
	    get_int(spec, "error_code", &ec, 0, 255, err, errlen))
		return -1;
	r->h2_error = (uint32_t)ec;
	if (json_object_object_get_ex(spec, "timestamp", &v))
		r->timestamp = json_object_get_int64(v);
	if (json_object_object_get_ex(spec, "headers", &v)) {
		if (!json_object_is_type(v, json_type_object)) {
			snprintf(err, errlen, "headers must be an object");
			return -1;
		}
		json_object_object_foreach(v, hk, hv) {
			(void)hk;
			if (!json_object_is_type(hv, json_type_string)) {
				snprintf(err, errlen,
				    "header values must be strings");
				return -1;
			}
		}
		r->headers = json_object_get(v);
	}
	if (r->status != 0 && r->status < 200) {
		snprintf(err, errlen, "status must be 200..599");
		return -1;
	}
	return 0;
}

int
fake_script_add_rule(json_object *spec, char *err, size_t errlen)
{
	struct fake_rule *r = fake_xcalloc(1, sizeof *r), **pp;

	if (parse_rule(spec, r, err, errlen) != 0) {
		rule_free(r);
		return -1;
	}
	if (r->prov < 0 || r->token == NULL) {
		snprintf(err, errlen, "rules need provider and token");
		rule_free(r);
		return -1;
	}
	for (pp = &rules; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->prov == r->prov &&
		    strcmp((*pp)->token, r->token) == 0) {
			struct fake_rule *old = *pp;

			*pp = old->next;
			rule_free(old);
			break;
		}
	r->next = rules;
	rules = r;
	return 0;
}

int
fake_script_del_rule(int prov, const char *token)
{
	struct fake_rule **pp, *r;

	for (pp = &rules; (r = *pp) != NULL; pp = &r->next)
		if (r->prov == prov && strcmp(r->token, token) == 0) {
			*pp = r->next;
			rule_free(r);
			return 0;
		}
	return -1;
}

int
fake_script_add_mode(json_object *spec, char *err, size_t errlen)
{
	struct fake_rule *r = fake_xcalloc(1, sizeof *r);
	int seconds = 0, percent = 100;

	if (parse_rule(spec, r, err, errlen) != 0 ||
	    get_int(spec, "seconds", &seconds, 0, 86400, err, errlen) ||
	    get_int(spec, "percent", &percent, 1, 100, err, errlen)) {
		rule_free(r);
		return -1;
	}
	if (seconds == 0) {
		snprintf(err, errlen, "modes need seconds > 0");
		rule_free(r);
		return -1;
	}
	r->until_ms = fake_now_ms() + (int64_t)seconds * 1000;
	r->percent = percent;
	r->next = modes;
	modes = r;
	return 0;
}

int
fake_script_match(int prov, const char *token, struct fake_rule *out)
{
	struct fake_rule **pp, **hit = NULL, *r;

	for (pp = &rules; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->prov != prov)
			continue;
		if (token != NULL && strcmp((*pp)->token, token) == 0) {
			hit = pp;
			break;
		}
		if (strcmp((*pp)->token, "*") == 0 && hit == NULL)
			hit = pp;
	}
	if (hit == NULL)
		return 0;
	r = *hit;
	rule_copy(out, r);
	if (r->times > 0 && --r->times == 0) {
		*hit = r->next;
		rule_free(r);
	}
	return 1;
}

int
fake_script_mode(int prov, struct fake_rule *out)
{
	struct fake_rule **pp = &modes, *r;
	int64_t now = fake_now_ms();

	while ((r = *pp) != NULL) {
		if (r->until_ms <= now) {
			*pp = r->next;
			rule_free(r);
			continue;
		}
		/* a partial mode hits each request with its odds */
		if ((r->prov < 0 || r->prov == prov) &&
		    (r->percent >= 100 || rand() % 100 < r->percent)) {
			rule_copy(out, r);
			return 1;
		}
		pp = &r->next;
	}
	return 0;
}

int
fake_script_set_latency(json_object *spec, char *err, size_t errlen)
{
	const char *s = get_str(spec, "provider");
	const char *dist = get_str(spec, "distribution");
	int lo = 0, hi = 0, mean = 0, prov = -1;

	if (s != NULL && strcmp(s, "*") != 0 &&
	    ((prov = fake_provider_parse(s)) < 0 || prov == FAKE_CTL)) {
		snprintf(err, errlen, "unknown provider %s", s);
		return -1;
	}
	if (get_int(spec, "min_ms", &lo, 0, 600000, err, errlen) ||
	    get_int(spec, "max_ms", &hi, 0, 600000, err, errlen) ||
	    get_int(spec, "mean_ms", &mean, 0, 600000, err, errlen))
		return -1;
	latency.prov = prov;
	latency.min_ms = lo;
	latency.max_ms = hi < lo ? lo : hi;
	latency.mean_ms = mean;
	if (dist == NULL || strcmp(dist, "uniform") == 0)
		latency.kind = latency.max_ms > 0 ? 1 : 0;
	else if (strcmp(dist, "exponential") == 0)
		latency.kind = 2;
	else {
		snprintf(err, errlen, "distribution: uniform|exponential");
		latency.kind = 0;
		return -1;
	}
	return 0;
}

static double
rand01(void)
{
	uint32_t u;

	if (RAND_bytes((unsigned char *)&u, sizeof u) != 1)
		abort();
	return (u + 0.5) / 4294967296.0;
}

int
fake_script_latency(int prov)
{
	double d;

	if (latency.kind == 0 || (latency.prov >= 0 && latency.prov != prov))
		return 0;
	if (latency.kind == 1)
		return latency.min_ms + (int)(rand01() *
		    (latency.max_ms - latency.min_ms + 1));
	d = latency.min_ms - log(rand01()) * latency.mean_ms;
	if (latency.max_ms > 0 && d > latency.max_ms)
		d = latency.max_ms;
	return (int)d;
}

void
fake_rule_apply(const struct fake_rule *r, struct fake_resp *resp)
{
	char buf[32];

	resp->scripted = 1;
	resp->delay_ms += r->delay_ms;
	resp->action = r->action;
	resp->h2_error = r->h2_error;
	if (r->retry_after >= 0) {
		snprintf(buf, sizeof buf, "%d", r->retry_after);
		fake_resp_header(resp, "retry-after", buf);
	}
	if (r->headers != NULL) {
		json_object_object_foreach(r->headers, k, v)
			fake_resp_header(resp, k, json_object_get_string(v));
	}
	if (r->body != NULL)
		fake_resp_body_str(resp, r->body);
	if ((r->action == FAKE_ACT_GOAWAY ||
	    r->action == FAKE_ACT_RESPOND_GOAWAY) &&
	    resp->goaway_data == NULL) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "reason", json_object_new_string(
		    r->reason ? r->reason : "Shutdown"));
		resp->goaway_data = fake_xstrdup(json_object_to_json_string_ext(
		    o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
}

static unsigned
hash(int prov, const char *token)
{
	unsigned h = 5381u + (unsigned)prov;

	while (*token)
		h = h * 33u + (unsigned char)*token++;
	return h % NBUCKET;
}

static struct counter *
counter_get(int prov, const char *token, int create)
{
	unsigned h = hash(prov, token);
	struct counter *c;

	for (c = buckets[h]; c != NULL; c = c->next)
		if (c->prov == prov && strcmp(c->token, token) == 0)
			return c;
	if (!create)
		return NULL;
	c = fake_xcalloc(1, sizeof *c);
	c->prov = prov;
	c->token = fake_xstrdup(token);
	c->next = buckets[h];
	buckets[h] = c;
	return c;
}

void
fake_script_count(int prov, const char *token, int status)
{
	struct counter *c = counter_get(prov, token ? token : "", 1);

	c->requests++;
	c->last_status = status;
	if (status == 0)
		c->dropped++;
	else if (status < 300)
		c->ok++;
	else
		c->failed++;
}

long
fake_script_requests(int prov, const char *token)
{
	struct counter *c = counter_get(prov, token, 0);

	return c ? c->requests : 0;
}

json_object *
fake_script_counters(int prov, const char *token)
{
	json_object *all = json_object_new_object();
	int i;

	for (i = 0; i < FAKE_CTL; i++)
		json_object_object_add(all, fake_provider_name(i),
		    json_object_new_object());
	for (i = 0; i < NBUCKET; i++) {
		struct counter *c;

		for (c = buckets[i]; c != NULL; c = c->next) {
			json_object *o, *p;

			if ((prov >= 0 && c->prov != prov) ||
			    (token != NULL && strcmp(token, c->token) != 0))
				continue;
			o = json_object_new_object();
			json_object_object_add(o, "requests",
			    json_object_new_int64(c->requests));
			json_object_object_add(o, "ok",
			    json_object_new_int64(c->ok));
			json_object_object_add(o, "failed",
			    json_object_new_int64(c->failed));
			json_object_object_add(o, "dropped",
			    json_object_new_int64(c->dropped));
			json_object_object_add(o, "last_status",
			    json_object_new_int(c->last_status));
			json_object_object_get_ex(all,
			    fake_provider_name(c->prov), &p);
			json_object_object_add(p, c->token, o);
		}
	}
	return all;
}

void
fake_script_reset(void)
{
	struct fake_rule *r;
	int i;

	while ((r = rules) != NULL) {
		rules = r->next;
		rule_free(r);
	}
	while ((r = modes) != NULL) {
		modes = r->next;
		rule_free(r);
	}
	for (i = 0; i < NBUCKET; i++)
		while (buckets[i] != NULL) {
			struct counter *c = buckets[i];

			buckets[i] = c->next;
			free(c->token);
			free(c);
		}
	memset(&latency, 0, sizeof latency);
}
