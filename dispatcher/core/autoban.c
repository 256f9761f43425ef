/*
 * autoban.c - see autoban.h.  Each app keeps the times of its last
 * `threshold` signals in a ring; the cup is full when the ring is full
 * and its oldest entry is still inside the window.
 */
#include "core/autoban.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const char *const kind_names[AUTOBAN_SIGNAL_COUNT] = {
	"none", "auth/config failures", "throttling answers",
	"transport failures (timeouts, resets, TLS)"
};

enum autoban_signal autoban_signal_of(const struct push_result *res,
				      bool sent, bool cred_unusable)
{
	if (res == NULL)
		return AUTOBAN_SIGNAL_NONE;
	if (res->auth_failure)
		return AUTOBAN_SIGNAL_AUTH;
	if (cred_unusable && res->outcome == PUSH_OUTCOME_FAILED)
		return AUTOBAN_SIGNAL_AUTH;
	if (res->throttled)
		return AUTOBAN_SIGNAL_THROTTLED;
	if (sent && res->http_status == 0 &&
	    (strncmp(res->reason, "transport: ", 11) == 0 ||
	     strstr(res->reason, "token endpoint: ") != NULL) &&
	    (res->outcome == PUSH_OUTCOME_RETRY ||
	     res->outcome == PUSH_OUTCOME_FAILED ||
	     res->outcome == PUSH_OUTCOME_UNCERTAIN))
		return AUTOBAN_SIGNAL_TRANSPORT;
	return AUTOBAN_SIGNAL_NONE;
}

static struct autoban_app *find(const struct autoban *ab, int32_t app_id)
{
	for (size_t i = 0; i < ab->n; i++)
		if (ab->apps[i].app_id == app_id)
			return &ab->apps[i];
	return NULL;
}

static size_t cap_for(int threshold)
{
	if (threshold < 1)
		return 1;
	if (threshold > AUTOBAN_THRESHOLD_MAX)
		return AUTOBAN_THRESHOLD_MAX;
	return (size_t)threshold;
}

void autoban_set_policy(struct autoban *ab, int32_t app_id,
			const struct autoban_policy *pol)
{
	struct autoban_app *a = find(ab, app_id);

	if (a == NULL) {
		ab->apps = mem_realloc(ab->apps,
				       (ab->n + 1) * sizeof *ab->apps);
		a = &ab->apps[ab->n++];
		memset(a, 0, sizeof *a);
		a->app_id = app_id;
	}
	size_t cap = cap_for(pol->threshold);
	if (cap != a->cap) {
		/* A new threshold starts a new window. */
		free(a->at);
		free(a->kind);
		a->at = mem_alloc_zero(cap, sizeof *a->at);
		a->kind = mem_alloc_zero(cap, sizeof *a->kind);
		a->cap = cap;
		a->head = 0;
		a->len = 0;
	}
	a->pol = *pol;
}

const struct autoban_policy *autoban_policy_of(const struct autoban *ab,
					       int32_t app_id)
{
	struct autoban_app *a = find(ab, app_id);

	return a ? &a->pol : NULL;
}

/* Drop signals older than the window. */
static void expire(struct autoban_app *a, int64_t now_us)
{
	while (a->len > 0 && a->at[a->head] <= now_us - a->pol.window_us) {
		a->head = (a->head + 1) % a->cap;
		a->len--;
	}
}

int autoban_count(const struct autoban *ab, int32_t app_id, int64_t now_us)
{
	struct autoban_app *a = find(ab, app_id);
	int n = 0;

	if (a == NULL)
		return 0;
	for (size_t i = 0; i < a->len; i++)
		if (a->at[(a->head + i) % a->cap] > now_us - a->pol.window_us)
			n++;
	return n;
}

enum autoban_action autoban_note(struct autoban *ab, int32_t app_id,
				 enum autoban_signal sig, int64_t now_us,
				 const char *last_reason, char *why,
				 size_t whylen)
{
	struct autoban_app *a = find(ab, app_id);
	int counts[AUTOBAN_SIGNAL_COUNT] = {0};

	if (a == NULL || sig <= AUTOBAN_SIGNAL_NONE ||
	    sig >= AUTOBAN_SIGNAL_COUNT)
		return AUTOBAN_NOTHING;
	if (!a->pol.enabled || now_us < a->quiet_until_us)
		return AUTOBAN_NOTHING;
	expire(a, now_us);
	if (a->len == a->cap) {
		/* Only if the clock ran back: drop the oldest. */
		a->head = (a->head + 1) % a->cap;
		a->len--;
	}
	size_t at = (a->head + a->len) % a->cap;
	a->at[at] = now_us;
	a->kind[at] = (uint8_t)sig;
	a->len++;
	if (a->len < a->cap)
		return AUTOBAN_NOTHING;

	for (size_t i = 0; i < a->len; i++)
		counts[a->kind[(a->head + i) % a->cap]]++;
	if (why != NULL && whylen > 0) {
		int off = snprintf(why, whylen, "auto-ban: %zu signals in %llds"
				   " (threshold %d):", a->len,
				   (long long)(a->pol.window_us / 1000000),
				   a->pol.threshold);
		for (int k = 1; k < AUTOBAN_SIGNAL_COUNT && off >= 0 &&
		     (size_t)off < whylen; k++)
			if (counts[k] > 0)
				off += snprintf(why + off, whylen - (size_t)off,
						" %d %s,", counts[k],
						kind_names[k]);
		if (off > 0 && (size_t)off < whylen && why[off - 1] == ',')
			why[--off] = '\0';
		if (last_reason != NULL && last_reason[0] && off >= 0 &&
		    (size_t)off < whylen)
			snprintf(why + off, whylen - (size_t)off,
				 "; last: %s", last_reason);
	}
	a->head = 0;
	a->len = 0;                     /* the cup is emptied */
	if (a->pol.critical) {
		/* Never banned: hold for one window, then try again. */
		int64_t hold = a->pol.window_us > 0 ? a->pol.window_us
						    : 60000000;
		a->held_until_us = now_us + hold;
		a->quiet_until_us = a->held_until_us;
		return AUTOBAN_HOLD;
	}
	a->quiet_until_us = now_us + a->pol.duration_us;
	return AUTOBAN_BAN;
}

void autoban_lifted(struct autoban *ab, int32_t app_id, int64_t now_us)
{
	struct autoban_app *a = find(ab, app_id);

	if (a != NULL && now_us >= a->held_until_us)
		a->quiet_until_us = 0;
}

bool autoban_held(const struct autoban *ab, int32_t app_id, int64_t now_us)
{
	struct autoban_app *a = find(ab, app_id);

	return a != NULL && now_us < a->held_until_us;
}

void autoban_free(struct autoban *ab)
{
	if (ab == NULL)
		return;
	for (size_t i = 0; i < ab->n; i++) {
		free(ab->apps[i].at);
		free(ab->apps[i].kind);
	}
	free(ab->apps);
	ab->apps = NULL;
	ab->n = 0;
}
