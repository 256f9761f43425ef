/*
 * trace.c - see trace.h.
 */
#include "obs/trace.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "db/sqlarr.h"

const char TRACE_INSERT_SQL[] =
	"INSERT INTO push.debug_events (at, push_id, queue_id, dispatcher,"
	" step, detail)"
	" SELECT to_timestamp(e.at / 1e6), e.push_id, e.queue_id, $4,"
	"  e.step, e.detail"
	" FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $5::text[],"
	"  $6::jsonb[]) AS e(at, push_id, queue_id, step, detail)";

void trace_event(struct trace *t, int64_t now_us, const struct push_item *it,
		 const char *step, const char *detail_json)
{
	t->events++;
	if (t->len >= TRACE_MAX_EVENTS) {
		t->dropped++;
		return;
	}
	if (t->len == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->ev = mem_realloc(t->ev, t->cap * sizeof *t->ev);
	}
	struct trace_ev *e = &t->ev[t->len++];
	e->at_us = now_us ? now_us : push_now_us();
	e->push_id = it->push_id;
	e->queue_id = it->queue_id;
	e->step = mem_strdup(step);
	e->detail = detail_json ? mem_strdup(detail_json) : NULL;
}

void trace_ack_wait(struct trace *t, const struct push_item *it,
		    enum push_outcome outcome)
{
	if (t->nwait == t->capwait) {
		t->capwait = t->capwait ? t->capwait * 2 : 16;
		t->wait = mem_realloc(t->wait, t->capwait * sizeof *t->wait);
	}
	t->wait[t->nwait].push_id = it->push_id;
	t->wait[t->nwait].queue_id = it->queue_id;
	t->wait[t->nwait].outcome = outcome;
	t->nwait++;
}

void trace_ack_done(struct trace *t, const int64_t *queue_ids, size_t n)
{
	size_t i = 0;
	int64_t now = 0;

	while (i < t->nwait) {
		bool found = false;
		for (size_t k = 0; k < n && !found; k++)
			found = queue_ids[k] == t->wait[i].queue_id;
		if (!found) {
			i++;
			continue;
		}
		struct push_item it;
		struct trace_json j;
		memset(&it, 0, sizeof it);
		it.push_id = t->wait[i].push_id;
		it.queue_id = t->wait[i].queue_id;
		trace_json_begin(&j);
		trace_json_str(&j, "outcome",
			       push_outcome_name(t->wait[i].outcome));
		char *d = trace_json_end(&j);
		if (now == 0)
			now = push_now_us();
		trace_event(t, now, &it, "acked", d);
		free(d);
		t->wait[i] = t->wait[--t->nwait];
	}
}

void trace_take(struct trace *t, struct trace_ev **ev, size_t *n)
{
	*ev = t->ev;
	*n = t->len;
	t->ev = NULL;
	t->len = 0;
	t->cap = 0;
}

void trace_put_back(struct trace *t, struct trace_ev *ev, size_t n)
{
	/* Keep the order: the old events first, then what came since. */
	size_t keep = n;
	if (keep + t->len > TRACE_MAX_EVENTS)
		keep = t->len >= TRACE_MAX_EVENTS ? 0
						  : TRACE_MAX_EVENTS - t->len;
	for (size_t i = keep; i < n; i++) {
		free(ev[i].step);
		free(ev[i].detail);
		t->dropped++;
	}
	size_t total = keep + t->len;
	struct trace_ev *all = mem_alloc((total ? total : 1) * sizeof *all);
	if (keep)
		memcpy(all, ev, keep * sizeof *all);
	if (t->len)
		memcpy(all + keep, t->ev, t->len * sizeof *all);
	free(t->ev);
	free(ev);
	t->ev = all;
	t->len = total;
	t->cap = total ? total : 1;
}

void trace_free_events(struct trace_ev *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ev[i].step);
		free(ev[i].detail);
	}
	free(ev);
}

void trace_build_params(const struct trace_ev *ev, size_t n,
			const char *dispatcher, char *params[TRACE_NPARAMS])
{
	struct sqlarr a[5];

	memset(a, 0, sizeof a);
	for (int k = 0; k < 5; k++)
		sqlarr_reset(&a[k]);
	for (size_t i = 0; i < n; i++) {
		sqlarr_add_int(&a[0], ev[i].at_us);
		sqlarr_add_int(&a[1], ev[i].push_id);
		if (ev[i].queue_id)
			sqlarr_add_int(&a[2], ev[i].queue_id);
		else
			sqlarr_add_null(&a[2]);
		sqlarr_add_str(&a[3], ev[i].step);
		sqlarr_add_str(&a[4], ev[i].detail);
	}
	params[0] = mem_strdup(sqlarr_text(&a[0]));
	params[1] = mem_strdup(sqlarr_text(&a[1]));
	params[2] = mem_strdup(sqlarr_text(&a[2]));
	params[3] = mem_strdup(dispatcher);
	params[4] = mem_strdup(sqlarr_text(&a[3]));
	params[5] = mem_strdup(sqlarr_text(&a[4]));
	for (int k = 0; k < 5; k++)
		sqlarr_free(&a[k]);
}

void trace_free_params(char *params[TRACE_NPARAMS])
{
	for (int k = 0; k < TRACE_NPARAMS; k++) {
		free(params[k]);
		params[k] = NULL;
	}
}

void trace_batch_take(struct trace *t, char *params[TRACE_NPARAMS])
{
	trace_take(t, &t->busy, &t->nbusy);
	trace_build_params(t->busy, t->nbusy, t->owner, params);
}

void trace_batch_written(struct trace *t)
{
	t->written += t->nbusy;
	trace_free_events(t->busy, t->nbusy);
	t->busy = NULL;
	t->nbusy = 0;
}

void trace_batch_failed(struct trace *t)
{
	t->write_failures++;
}

void trace_batch_put_back(struct trace *t)
{
	trace_put_back(t, t->busy, t->nbusy);
	t->busy = NULL;
	t->nbusy = 0;
}

bool trace_batch_drop_failed(struct trace *t, const char *st)
{
	/* Kept for the next try only if the connection failed; a statement
	 * error would fail the same way again. */
	if (!(st && st[0] && strncmp(st, "08", 2) != 0 &&
	      strncmp(st, "57", 2) != 0 && strncmp(st, "53", 2) != 0))
		return false;
	t->dropped += t->nbusy;
	trace_free_events(t->busy, t->nbusy);
	t->busy = NULL;
	t->nbusy = 0;
	return true;
}

void trace_free(struct trace *t)
{
	trace_free_events(t->busy, t->nbusy);
	trace_free_events(t->ev, t->len);
	free(t->wait);
	memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ */

static void jput(struct trace_json *j, const char *s, size_t n)
{
	buf_add(&j->b, s, n);
}

static void jkey(struct trace_json *j, const char *key)
{
	if (!j->first)
		jput(j, ",", 1);
	j->first = false;
	jput(j, "\"", 1);
	trace_json_escape(j, key, SIZE_MAX);
	jput(j, "\":", 2);
}

void trace_json_begin(struct trace_json *j)
{
	memset(j, 0, sizeof *j);
	buf_init(&j->b, TRACE_DETAIL_MAX);
	j->first = true;
	jput(j, "{", 1);
}

void trace_json_escape(struct trace_json *j, const char *s, size_t max)
{
	size_t done = 0;

	for (; s && *s && done < max; s++, done++) {
		unsigned char c = (unsigned char)*s;
		char buf[8];
		if (c == '"' || c == '\\') {
			buf[0] = '\\';
			buf[1] = (char)c;
			jput(j, buf, 2);
		} else if (c < 0x20) {
			snprintf(buf, sizeof buf, "\\u%04x", c);
			jput(j, buf, 6);
		} else {
			jput(j, (const char *)&c, 1);
		}
	}
	/* Do not leave a cut UTF-8 sequence behind. */
	if (done >= max && s && *s && j->b.len > 0) {
		const unsigned char *d = (const unsigned char *)j->b.data;
		size_t len = j->b.len;

		while (len > 0 && (d[len - 1] & 0xC0) == 0x80)
			len--;
		if (len > 0 && (d[len - 1] & 0x80))
			len--;
		buf_truncate(&j->b, len);
	}
}

void trace_json_str(struct trace_json *j, const char *key, const char *val)
{
	jkey(j, key);
	if (val == NULL) {
		jput(j, "null", 4);
		return;
	}
	jput(j, "\"", 1);
	trace_json_escape(j, val, SIZE_MAX);
	jput(j, "\"", 1);
}

void trace_json_str_max(struct trace_json *j, const char *key,
			const char *val, size_t max)
{
	jkey(j, key);
	if (val == NULL) {
		jput(j, "null", 4);
		return;
	}
	jput(j, "\"", 1);
	trace_json_escape(j, val, max);
	jput(j, "\"", 1);
}

void trace_json_int(struct trace_json *j, const char *key, int64_t val)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRId64, val);

	jkey(j, key);
	jput(j, buf, (size_t)n);
}

void trace_json_bool(struct trace_json *j, const char *key, bool val)
{
	jkey(j, key);
	jput(j, val ? "true" : "false", val ? 4 : 5);
}

void trace_json_raw(struct trace_json *j, const char *key, const char *raw)
{
	jkey(j, key);
	jput(j, raw, strlen(raw));
}

char *trace_json_end(struct trace_json *j)
{
	jput(j, "}", 1);
	if (buf_full(&j->b)) {
		log_warn("debug event detail too large, left out",
			 "max_bytes=%u", TRACE_DETAIL_MAX);
		buf_free(&j->b);
		return NULL;
	}
	char *s = buf_take(&j->b);
	buf_free(&j->b);
	return s;
}

static bool name_has(const char *name, size_t len, const char *word)
{
	size_t w = strlen(word);

	for (size_t i = 0; i + w <= len; i++)
		if (strncasecmp(name + i, word, w) == 0)
			return true;
	return false;
}

bool trace_header_secret(const char *name, size_t len)
{
	static const char *const words[] = { "authorization", "token", "key",
					     "secret", "cookie", "signature",
					     "password", "credential" };

	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (name_has(name, len, words[i]))
			return true;
	return false;
}

void trace_json_headers(struct trace_json *j, const char *key,
			const char *const *headers, size_t n)
{
	bool first = true;

	jkey(j, key);
	jput(j, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const char *h = headers[i];
		const char *colon = h ? strchr(h, ':') : NULL;
		if (colon == NULL || colon == h)
			continue;
		size_t nlen = (size_t)(colon - h);
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char name[128];
		if (nlen >= sizeof name)
			nlen = sizeof name - 1;
		for (size_t k = 0; k < nlen; k++)
			name[k] = (char)tolower((unsigned char)h[k]);
		name[nlen] = '\0';
		if (!first)
			jput(j, ",", 1);
		first = false;
		jput(j, "\"", 1);
		trace_json_escape(j, name, SIZE_MAX);
		jput(j, "\":\"", 3);
		if (trace_header_secret(name, nlen))
			jput(j, "[redacted]", 10);
		else
			trace_json_escape(j, v, 200);
		jput(j, "\"", 1);
	}
	jput(j, "}", 1);
}
