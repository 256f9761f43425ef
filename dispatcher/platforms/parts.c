/*
 * parts.c - see parts.h.  The memo is a chained hash table whose entries
 * are also on one list in insertion order, so the oldest can be evicted
 * when the memo is full.
 */
#include "platforms/parts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

#define NBUCKET 1024

static int rank(enum push_outcome o)
{
	switch (o) {
	case PUSH_OUTCOME_INVALID_TOKEN:
		return 6;
	case PUSH_OUTCOME_FAILED:
		return 5;
	case PUSH_OUTCOME_EXPIRED:
		return 4;
	case PUSH_OUTCOME_RETRY:
		return 3;
	case PUSH_OUTCOME_UNCERTAIN:
		return 2;
	case PUSH_OUTCOME_SENT:
		return 1;
	default:
		return 5;
	}
}

/* Append to a fixed buffer, truncating. */
static void cat(char *buf, size_t cap, const char *fmt, const char *a,
		const char *b)
{
	size_t len = strlen(buf);

	if (len + 1 < cap)
		snprintf(buf + len, cap - len, fmt, a, b);
}

void parts_combine(const struct part_result *parts, size_t n,
		   struct push_result *out)
{
	const struct part_result *worst = NULL;
	int worst_rank = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		const struct part_result *p = &parts[i];
		enum push_outcome o = p->skipped
			? (p->was_uncertain ? PUSH_OUTCOME_UNCERTAIN
			   : PUSH_OUTCOME_SENT) : p->res.outcome;
		char st[96];

		if (rank(o) > worst_rank) {
			worst_rank = rank(o);
			worst = p;
			out->outcome = o;
		}
		if (!p->skipped) {
			if (p->res.outcome == PUSH_OUTCOME_RETRY &&
			    p->res.retry_at_us > out->retry_at_us)
				out->retry_at_us = p->res.retry_at_us;
			out->throttled |= p->res.throttled;
			out->auth_failure |= p->res.auth_failure;
		}
		/* "toast=200 received", at most ~80 bytes a part. */
		if (p->skipped)
			snprintf(st, sizeof st, "%s", p->was_uncertain
				 ? "uncertain earlier, not resent"
				 : "accepted earlier");
		else if (p->res.http_status != 0)
			snprintf(st, sizeof st, "%d %.70s",
				 p->res.http_status, p->res.reason);
		else
			snprintf(st, sizeof st, "%.80s", p->res.reason);
		cat(out->reason, sizeof out->reason, i ? "; %s=%s" : "%s=%s",
		    p->name, st);
		if (!p->skipped && p->res.message_id[0] != '\0')
			cat(out->message_id, sizeof out->message_id,
			    out->message_id[0] ? "; %s=%.60s" : "%s=%.60s",
			    p->name, p->res.message_id);
	}
	if (worst != NULL && !worst->skipped)
		out->http_status = worst->res.http_status;
	else if (worst != NULL)
		out->http_status = 200;
	if (out->outcome != PUSH_OUTCOME_RETRY)
		out->retry_at_us = 0;
}

/* ---- the memo ---------------------------------------------------- */

struct entry {
	char *key;
	unsigned a, b;
	int64_t until_us;
	struct entry *chain;               /* same bucket */
	struct entry *older, *newer;       /* insertion order */
};

struct parts_memo {
	struct entry *buckets[NBUCKET];
	struct entry *oldest, *newest;
	size_t n, cap;
};

static unsigned hash(const char *s)
{
	unsigned h = 5381u;

	while (*s)
		h = h * 33u + (unsigned char)*s++;
	return h % NBUCKET;
}

struct parts_memo *parts_memo_new(size_t cap)
{
	struct parts_memo *m = mem_alloc_zero(1, sizeof *m);

	m->cap = cap > 0 ? cap : 1;
	return m;
}

static void entry_remove(struct parts_memo *m, struct entry *e)
{
	struct entry **pp = &m->buckets[hash(e->key)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		m->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		m->newest = e->older;
	m->n--;
	free(e->key);
	free(e);
}

void parts_memo_free(struct parts_memo *m)
{
	if (m == NULL)
		return;
	while (m->oldest != NULL)
		entry_remove(m, m->oldest);
	free(m);
}

static struct entry *find(struct parts_memo *m, const char *key)
{
	struct entry *e;

	for (e = m->buckets[hash(key)]; e != NULL; e = e->chain)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

bool parts_memo_get(struct parts_memo *m, const char *key, int64_t now_us,
		    unsigned *a, unsigned *b, int64_t *until_us)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return false;
	if (e->until_us <= now_us) {
		entry_remove(m, e);
		return false;
	}
	if (a != NULL)
		*a = e->a;
	if (b != NULL)
		*b = e->b;
	if (until_us != NULL)
		*until_us = e->until_us;
	return true;
}

void parts_memo_put(struct parts_memo *m, const char *key, unsigned a,
		    unsigned b, int64_t until_us)
{
	struct entry *e = find(m, key);
	unsigned h;

	if (e != NULL)
		entry_remove(m, e);
	while (m->n >= m->cap)
		entry_remove(m, m->oldest);
	e = mem_alloc_zero(1, sizeof *e);
	e->key = mem_strdup(key);
	e->a = a;
	e->b = b;
	e->until_us = until_us;
	h = hash(key);
	e->chain = m->buckets[h];
	m->buckets[h] = e;
	e->older = m->newest;
	if (m->newest != NULL)
		m->newest->newer = e;
	else
		m->oldest = e;
	m->newest = e;
	m->n++;
}

void parts_memo_del(struct parts_memo *m, const char *key)
{
	struct entry *e = find(m, key);

	if (e != NULL)
		entry_remove(m, e);
}

size_t parts_memo_count(const struct parts_memo *m)
{
	return m->n;
}
