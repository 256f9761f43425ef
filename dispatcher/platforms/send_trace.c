/*
 * send_trace.c - a sender's "request" and "http_response" steps for a
 * debug push (send.h), as JSON details through env->trace; the JSON
 * builder and the secret-header rule are obs/trace.h's.
 */
#include "platforms/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/http.h"
#include "obs/trace.h"

void send_trace_request(const struct sender_env *env,
			const struct push_item *item, const char *part,
			const struct http_request *req)
{
	const char *kept[16];
	size_t n = 0;
	struct trace_json j;
	const char *u, *host_end;
	char *detail;

	if (env == NULL || env->trace == NULL || item == NULL || !item->debug)
		return;
	for (const char *const *h = req->headers; h != NULL && *h != NULL &&
	     n < sizeof kept / sizeof kept[0]; h++) {
		const char *colon = strchr(*h, ':');

		if (colon != NULL && !trace_header_secret(*h,
					(size_t)(colon - *h)))
			kept[n++] = *h;
	}
	trace_json_begin(&j);
	if (part != NULL)
		trace_json_str(&j, "part", part);
	trace_json_str(&j, "method", req->method != NULL ? req->method
		       : req->body != NULL ? "POST" : "GET");
	u = req->url != NULL ? req->url : "";
	host_end = strstr(u, "://");
	host_end = host_end != NULL ? strchr(host_end + 3, '/') : NULL;
	trace_json_str_max(&j, "host", u, host_end != NULL
			   ? (size_t)(host_end - u) : strlen(u));
	trace_json_headers(&j, "headers", kept, n);
	trace_json_int(&j, "body_bytes", (int64_t)req->body_len);
	detail = trace_json_end(&j);
	env->trace(env->trace_arg, item, "request", detail);
	free(detail);
}

void send_trace_response(const struct sender_env *env,
			 const struct push_item *item, const char *part,
			 const struct http_response *hr,
			 const char *const *names)
{
	const char *vals[16];
	char *lines[16];
	size_t n = 0;
	struct trace_json j;
	char *detail;

	if (env == NULL || env->trace == NULL || item == NULL || !item->debug)
		return;
	for (; names != NULL && *names != NULL && n < 16; names++) {
		const char *v = http_response_header(hr, *names);
		size_t len;

		if (v == NULL)
			continue;
		len = strlen(*names) + strlen(v) + 3;
		lines[n] = mem_alloc(len);
		snprintf(lines[n], len, "%s: %s", *names, v);
		vals[n] = lines[n];
		n++;
	}
	trace_json_begin(&j);
	if (part != NULL)
		trace_json_str(&j, "part", part);
	trace_json_int(&j, "status", hr->status);
	trace_json_int(&j, "http_version", hr->http_version);
	if (hr->error != NULL)
		trace_json_str(&j, "error", hr->error);
	trace_json_headers(&j, "headers", vals, n);
	trace_json_str_max(&j, "body", hr->body, 512);
	detail = trace_json_end(&j);
	env->trace(env->trace_arg, item, "http_response", detail);
	free(detail);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
}
