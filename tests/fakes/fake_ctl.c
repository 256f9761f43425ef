/*
 * fake_ctl.c — the control port: plain HTTP/1.1 on loopback, JSON in
 * and out, so tests script the fakes with curl and no restart.
 *
 *   GET  /health                    {"ok":true}
 *   POST /rules      rule | [rule]  per-token behaviour
 *   DELETE /rules?provider=P&token=T
 *   POST /mode       mode           server-wide failure for "seconds"
 *   POST /latency    distribution   extra delay on every request
 *   POST /settings   {"max_streams":N}  SETTINGS on live connections
 *   POST /config     {...}          timing knobs, expire_tokens
 *   POST /goaway     {"provider","reason"}  GOAWAY every connection
 *   GET  /counters[?provider=P&token=T]
 *   POST /reset                     forget rules, modes, counters
 *
 * The fields are documented in README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "fake_script.h"

static void
reply(struct fake_resp *r, int status, const char *err)
{
	json_object *o = json_object_new_object();

	if (err != NULL)
		json_object_object_add(o, "error", json_object_new_string(err));
	else
		json_object_object_add(o, "ok", json_object_new_boolean(1));
	fake_resp_json(r, status, o);
}

static json_object *
body_json(struct fake_req *req)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, req->body,
	    (int)req->body_len);

	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static void
set_streams(struct fake_conn *c, void *arg)
{
	uint32_t n = *(uint32_t *)arg;

	if (c->proto != FAKE_PROTO_H2)
		return;
	if (c->lis->prov == FAKE_APNS && !c->apns_authed &&
	    !c->client_cert && !fake_cfg.sink)
		return;	/* keeps Apple's one-stream rule */
	fake_h2_set_max_streams(c, n);
	fake_h2_flush(c);
}

struct goaway_arg {
	int prov;
	const char *data;
};

static void
goaway_conn(struct fake_conn *c, void *arg)
{
	struct goaway_arg *g = arg;

	if (g->prov >= 0 && c->lis->prov != g->prov)
		return;
	if (c->proto != FAKE_PROTO_H2) {
		if (c->lis->prov != FAKE_CTL)
			fake_conn_close(c, 1);
		return;
	}
	fake_h2_goaway(c, g->data);
}

static int
int_field(json_object *o, const char *k, int *out, int min)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < min ||
	    json_object_get_int64(v) > (1 << 30))
		return -1;
	*out = (int)json_object_get_int64(v);
	return 0;
}

static int
config(json_object *o, char *err, size_t errlen)
{
	static const char *const keys[] = { "apns_jwt_max_age",
	    "apns_jwt_min_refresh", "apns_max_streams", "fcm_token_ttl",
	    "wns_token_ttl", "mpns_daily_limit", "mpns_raw_max",
	    "mpns_notif_max", "expire_tokens", NULL };
	json_object *v;
	int i;

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "body must be a JSON object");
		return -1;
	}
	json_object_object_foreach(o, k, val) {
		(void)val;
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			snprintf(err, errlen, "unknown field %s", k);
			return -1;
		}
	}
	if (int_field(o, "apns_jwt_max_age", &fake_cfg.apns_jwt_max_age, 1) ||
	    int_field(o, "apns_jwt_min_refresh",
	    &fake_cfg.apns_jwt_min_refresh, 0) ||
	    int_field(o, "apns_max_streams", &fake_cfg.apns_max_streams, 1) ||
	    int_field(o, "fcm_token_ttl", &fake_cfg.fcm_token_ttl, 1) ||
	    int_field(o, "wns_token_ttl", &fake_cfg.wns_token_ttl, 1) ||
	    int_field(o, "mpns_daily_limit", &fake_cfg.mpns_daily_limit, 0) ||
	    int_field(o, "mpns_raw_max", &fake_cfg.mpns_raw_max, 1) ||
	    int_field(o, "mpns_notif_max", &fake_cfg.mpns_notif_max, 1)) {
		snprintf(err, errlen, "bad integer value");
		return -1;
	}
	if (json_object_object_get_ex(o, "expire_tokens", &v) &&
	    json_object_get_boolean(v)) {
		fake_fcm_expire_tokens();
		fake_wns_expire_tokens();
	}
	return 0;
}

void
fake_ctl_handle(struct fake_req *req, struct fake_resp *r)
{
	char *path = fake_xstrdup(req->path), *q = strchr(path, '?');
	const char *m = req->method;
	json_object *o = NULL;
	char err[256] = "";
	int rc = 0;

	r->nolog = 1;
	if (q != NULL)
		*q++ = '\0';
	if (strcmp(path, "/health") == 0) {
		reply(r, 200, NULL);
	} else if (strcmp(path, "/counters") == 0) {
		char *pv = q ? fake_form_get(q, "provider") : NULL;
		char *tv = q ? fake_form_get(q, "token") : NULL;
		json_object *c = fake_script_counters(
		    pv ? fake_provider_parse(pv) : -1, tv);

		json_object_object_add(c, "sink_requests",
		    json_object_new_int64((int64_t)fake_sink_count()));
		fake_resp_json(r, 200, c);
		free(pv);
		free(tv);
	} else if (strcmp(path, "/rules") == 0 && strcmp(m, "DELETE") == 0) {
		char *pv = q ? fake_form_get(q, "provider") : NULL;
		char *tv = q ? fake_form_get(q, "token") : NULL;

		if (pv == NULL || tv == NULL)
			reply(r, 400, "provider and token required");
		else if (fake_script_del_rule(fake_provider_parse(pv), tv))
			reply(r, 404, "no such rule");
		else
			reply(r, 200, NULL);
		free(pv);
		free(tv);
	} else if (strcmp(m, "POST") != 0) {
		reply(r, strcmp(path, "/reset") == 0 ||
		    strcmp(path, "/rules") == 0 ? 405 : 404, "not found");
	} else if (strcmp(path, "/reset") == 0) {
		fake_script_reset();
		fake_cfg.max_streams_override = 0;
		reply(r, 200, NULL);
	} else if ((o = body_json(req)) == NULL) {
		reply(r, 400, "body is not JSON");
	} else if (strcmp(path, "/rules") == 0) {
		if (json_object_is_type(o, json_type_array)) {
			size_t i, n = json_object_array_length(o);

			for (i = 0; i < n && rc == 0; i++)
				rc = fake_script_add_rule(
				    json_object_array_get_idx(o, i), err,
				    sizeof err);
		} else {
			rc = fake_script_add_rule(o, err, sizeof err);
		}
		reply(r, rc ? 400 : 200, rc ? err : NULL);
	} else if (strcmp(path, "/mode") == 0) {
		rc = fake_script_add_mode(o, err, sizeof err);
		reply(r, rc ? 400 : 200, rc ? err : NULL);
	} else if (strcmp(path, "/latency") == 0) {
		rc = fake_script_set_latency(o, err, sizeof err);
		reply(r, rc ? 400 : 200, rc ? err : NULL);
	} else if (strcmp(path, "/config") == 0) {
		rc = config(o, err, sizeof err);
		reply(r, rc ? 400 : 200, rc ? err : NULL);
	} else if (strcmp(path, "/settings") == 0) {
		int n = 0;
		uint32_t u;

		if (int_field(o, "max_streams", &n, 1) || n == 0) {
			reply(r, 400, "max_streams: integer >= 1");
		} else {
			fake_cfg.max_streams_override = n;
			u = (uint32_t)n;
			fake_conn_each(set_streams, &u);
			reply(r, 200, NULL);
		}
	} else if (strcmp(path, "/goaway") == 0) {
		json_object *v;
		struct goaway_arg g = { -1, NULL };
		char data[256];
		const char *reason = "Shutdown";

		if (json_object_object_get_ex(o, "provider", &v))
			g.prov = fake_provider_parse(json_object_get_string(v));
		if (json_object_object_get_ex(o, "reason", &v))
			reason = json_object_get_string(v);
		snprintf(data, sizeof data, "{\"reason\":\"%s\"}", reason);
		g.data = data;
		fake_conn_each(goaway_conn, &g);
		reply(r, 200, NULL);
	} else {
		reply(r, 404, "not found");
	}
	json_object_put(o);
	free(path);
}
