/*
 * fake_log.c — the JSON-lines request log.
 *
 * One line per request the fakes answered (or dropped on purpose),
 * written and flushed before the response leaves, so a test that got a
 * response can read its line.  Fields are documented in README.md.
 * Request headers are logged in full, authorization included: the
 * credentials are throwaway test keys and tests compare JWTs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "fake_conn.h"
#include "fake_log.h"

static FILE *log_file;

static const char *action_names[] = {
	"respond", "reset_stream", "reset_conn", "goaway", "respond_goaway",
	"close"
};

int
fake_log_open(const char *path)
{
	log_file = fopen(path, "a");
	return log_file ? 0 : -1;
}

void
fake_log_close(void)
{
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
}

static json_object *
str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

void
fake_log_write(const struct fake_req *req, const struct fake_resp *resp)
{
	json_object *o, *h, *r, *rh;
	int64_t ms = fake_now_ms();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char ts[64];
	size_t i;

	if (log_file == NULL)
		return;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof ts - strlen(ts), ".%03dZ",
	    (int)(ms % 1000));
	o = json_object_new_object();
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "time_ms", json_object_new_int64(ms));
	json_object_object_add(o, "provider",
	    json_object_new_string(fake_provider_name(req->prov)));
	json_object_object_add(o, "http",
	    json_object_new_string(req->http2 ? "2" : "1.1"));
	json_object_object_add(o, "stream", json_object_new_int(
	    req->stream_id));
	json_object_object_add(o, "conn", json_object_new_int64(
	    req->conn != NULL ? (int64_t)req->conn->id : 0));
	json_object_object_add(o, "method", str_or_null(req->method));
	json_object_object_add(o, "path", str_or_null(req->path));
	json_object_object_add(o, "token", str_or_null(resp->token));
	json_object_object_add(o, "auth", str_or_null(resp->auth));
	h = json_object_new_object();
	for (i = 0; i < req->nhdrs; i++)
		json_object_object_add(h, req->hdrs[i].name,
		    json_object_new_string(req->hdrs[i].value));
	json_object_object_add(o, "headers", h);
	json_object_object_add(o, "body", json_object_new_string_len(
	    req->body ? req->body : "", (int)req->body_len));
	json_object_object_add(o, "body_bytes",
	    json_object_new_int64((int64_t)req->body_total));
	r = json_object_new_object();
	json_object_object_add(r, "status", json_object_new_int(
	    resp->action == FAKE_ACT_RESPOND ||
	    resp->action == FAKE_ACT_RESPOND_GOAWAY ? resp->status : 0));
	json_object_object_add(r, "action", json_object_new_string(
	    action_names[resp->action]));
	json_object_object_add(r, "scripted",
	    json_object_new_boolean(resp->scripted));
	json_object_object_add(r, "delay_ms",
	    json_object_new_int(resp->delay_ms));
	rh = json_object_new_object();
	for (i = 0; i < resp->nhdrs; i++)
		json_object_object_add(rh, resp->hdrs[i].name,
		    json_object_new_string(resp->hdrs[i].value));
	json_object_object_add(r, "headers", rh);
	json_object_object_add(r, "body", json_object_new_string_len(
	    resp->body ? resp->body : "", (int)resp->body_len));
	json_object_object_add(o, "response", r);
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE), log_file);
	fputc('\n', log_file);
	fflush(log_file);
	json_object_put(o);
}
