/*
 * http_retire.c - retiring a connection group (http_retire_group()):
 * the group is swapped for a new one of the same name, with new
 * connections; the old one is destroyed from the `reap` timer once its
 * requests in flight have their answers.  See http.c's top comment.
 */
#include "net/http_int.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/log.h"
#include "base/mem.h"

/* ---- retiring a group's connections (http_retire_group) ---------- */

static void on_reap(uv_timer_t *t);

/* A retired group with no request left is destroyed soon, from the loop. */
void http__reap_check(struct http *http, struct http_group *g)
{
	if (g->retired && g->active == 0 && g->held == NULL &&
	    !http->closing)
		uv_timer_start(&http->reap, on_reap, 0, 0);
}

/*
 * Destroy a retired group that has no request: its multi handle closes
 * its connections (its sockets' polls are stopped first, the contexts
 * closed after), its timer's close callback frees it.
 */
static void group_destroy(struct http *http, struct http_group *g)
{
	struct http_group **pp;
	struct http_sock *sk, *next;
	CURLM *multi = g->multi;

	for (pp = &http->groups; *pp != g; pp = &(*pp)->next)
		;
	*pp = g->next;
	uv_timer_stop(&g->timer);
	for (sk = http->socks; sk != NULL; sk = sk->next) {
		if (sk->group == g) {
			uv_poll_stop(&sk->poll);
			sk->events = 0;
		}
	}
	g->multi = NULL;
	curl_multi_cleanup(multi);
	for (sk = http->socks; sk != NULL; sk = next) {
		next = sk->next;
		if (sk->group == g)
			http__sock_destroy(http, sk);
	}
	log_debug("retired connections closed", "group=%s", g->name);
	http->closing_handles++;
	uv_close((uv_handle_t *)&g->timer, http__group_closed);
}

static void on_reap(uv_timer_t *t)
{
	struct http *http = t->data;
	struct http_group *g, *next;

	for (g = http->groups; g != NULL; g = next) {
		next = g->next;
		if (g->retired && g->active == 0 && g->held == NULL)
			group_destroy(http, g);
	}
}

/*
 * Replace `g` by a new group of its name (new connections).  Its
 * requests that have not gone out move to the new group, oldest first;
 * those in flight stay and end on the old connections.
 */
static void group_retire(struct http *http, struct http_group *g)
{
	struct http_group *ng;
	struct http_xfer *x;

	if (g->retired || g == http->common || http->closing ||
	    (g->successor_ms != 0 &&
	     uv_now(http->loop) - g->successor_ms < RETIRE_MIN_MS))
		return;
	ng = http__group_new(http, g->name);
	if (ng == NULL)
		return;                 /* the old connections serve on */
	ng->warmup = g->warmup;
	ng->successor_ms = uv_now(http->loop);
	if (ng->successor_ms == 0)
		ng->successor_ms = 1;
	g->retired = true;
	http->stats.retired++;
	log_info("connections retired: new requests open a new one",
		 "group=%s in_flight=%u", g->name, g->out);
	ng->held = g->held;
	ng->held_tail = g->held_tail;
	g->held = g->held_tail = NULL;
	for (x = ng->held; x != NULL; x = x->held_next)
		x->group = ng;
	/* http->xfers is newest first: pushing each to the front of the
	 * queue leaves the oldest first. */
	for (x = http->xfers; x != NULL; x = x->next) {
		if (x->group != g || x->held || x->went_out ||
		    x->turned_back)
			continue;
		curl_multi_remove_handle(g->multi, x->easy);
		if (g->opening == x)
			g->opening = NULL;
		g->active--;
		curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 0L);
		curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 0L);
		x->errbuf[0] = '\0';
		x->group = ng;
		x->held = true;
		x->held_next = ng->held;
		ng->held = x;
		if (ng->held_tail == NULL)
			ng->held_tail = x;
	}
	http__reap_check(http, g);
	http__group_release(http, ng);
}

/* Retire the current group `name` if it is generation `gen`. */
void http__group_retire_gen(struct http *http, const char *name,
			    uint64_t gen)
{
	struct http_group *g;

	for (g = http->groups; g != NULL; g = g->next)
		if (g->gen == gen && !g->retired && g != http->common &&
		    strcmp(g->name, name) == 0)
			group_retire(http, g);
}

void http_retire_group(struct http *http, const struct http_response *res)
{
	struct http_xfer *x = res->xfer;

	if (x == NULL || http->closing)
		return;
	if (http->th != NULL)
		http__th_retire(http, x);
	else if (x->group != NULL)      /* h2_direct requests have none */
		group_retire(http, x->group);
}

/* Client certificate options; 0, or -EINVAL when libcurl refuses. */
