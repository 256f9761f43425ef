/*
 * push.c - names of the shared enums and the push_item destructor.  The
 * name tables must list the SQL enum labels in their SQL order.
 */
#include "base/push.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const platform_names[PUSH_PLATFORM_COUNT] = {
	"apns", "fcm", "wns", "mpns", "webpush"
};

static const char *const outcome_names[PUSH_OUTCOME_COUNT] = {
	"sent", "retry", "failed", "invalid_token", "expired",
	"dropped_banned", "dropped_overload", "uncertain", "no_device",
	"cancelled"
};

static const char *const priority_names[] = { "low", "normal", "high" };

const char *push_platform_name(enum push_platform p)
{
	return (unsigned)p < PUSH_PLATFORM_COUNT ? platform_names[p] : NULL;
}

const char *push_outcome_name(enum push_outcome o)
{
	return (unsigned)o < PUSH_OUTCOME_COUNT ? outcome_names[o] : NULL;
}

const char *push_priority_name(enum push_priority p)
{
	return (unsigned)p <= PUSH_PRIORITY_HIGH ? priority_names[p] : NULL;
}

int push_platform_parse(const char *s, enum push_platform *out)
{
	for (int i = 0; i < PUSH_PLATFORM_COUNT; i++) {
		if (strcmp(s, platform_names[i]) == 0) {
			*out = (enum push_platform)i;
			return 0;
		}
	}
	return -EINVAL;
}

int push_priority_parse(const char *s, enum push_priority *out)
{
	for (int i = 0; i <= PUSH_PRIORITY_HIGH; i++) {
		if (strcmp(s, priority_names[i]) == 0) {
			*out = (enum push_priority)i;
			return 0;
		}
	}
	return -EINVAL;
}

int64_t push_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void push_result_set(struct push_result *res, enum push_outcome outcome,
		     const char *reason)
{
	memset(res, 0, sizeof *res);
	res->outcome = outcome;
	snprintf(res->reason, sizeof res->reason, "%s", reason);
}

void push_item_free(struct push_item *item)
{
	if (item == NULL)
		return;
	free(item->token);
	free(item->payload);
	free(item->collapse_key);
	free(item);
}
