/*
 * push.h - the data that flows through the dispatcher: a claimed push (one
 * push.queue row with what the claim joined to it) and the result of one
 * attempt to send it.
 *
 * A struct push_item is created by the claim, owned by its pool's ring
 * while it waits and by the sender while its request is in flight, and
 * freed by push_item_free() once its result has been handed to the ack
 * buffer.  Strings are NUL-terminated heap copies owned by the item.
 * Times are microseconds since the Unix epoch (push_now_us()).
 */
#ifndef PGPUSH_PUSH_H
#define PGPUSH_PUSH_H

#include <stdbool.h>
#include <stdint.h>

/* Mirrors the SQL enum push.platform, in the same order. */
enum push_platform {
	PUSH_PLATFORM_APNS,
	PUSH_PLATFORM_FCM,
	PUSH_PLATFORM_WNS,
	PUSH_PLATFORM_MPNS,
	PUSH_PLATFORM_WEBPUSH,
	PUSH_PLATFORM_COUNT
};

/* Mirrors push.priority. */
enum push_priority {
	PUSH_PRIORITY_LOW,
	PUSH_PRIORITY_NORMAL,
	PUSH_PRIORITY_HIGH
};

/* Mirrors the SQL enum push.outcome, in the same order. */
enum push_outcome {
	PUSH_OUTCOME_SENT,
	PUSH_OUTCOME_RETRY,
	PUSH_OUTCOME_FAILED,
	PUSH_OUTCOME_INVALID_TOKEN,
	PUSH_OUTCOME_EXPIRED,
	PUSH_OUTCOME_DROPPED_BANNED,
	PUSH_OUTCOME_DROPPED_OVERLOAD,
	PUSH_OUTCOME_UNCERTAIN,
	PUSH_OUTCOME_NO_DEVICE,
	PUSH_OUTCOME_CANCELLED,
	PUSH_OUTCOME_COUNT
};

struct push_item {
	int64_t queue_id;
	int64_t push_id;
	int64_t device_id;        /* 0: unregistered token target */
	int64_t campaign_id;      /* 0: none */
	int32_t app_id;
	enum push_platform platform;
	enum push_priority priority;
	char *token;              /* device token / channel URL */
	char *payload;            /* the neutral payload, JSON text */
	char *collapse_key;       /* NULL: none */
	int64_t expires_at_us;    /* 0: never */
	int64_t enqueued_at_us;
	int64_t sent_at_us;       /* set when the request goes out */
	int64_t pooled_at_us;     /* when it entered its pool's ring */
	int64_t send_by_us;       /* not sent after this (its lease would
				   * lapse in flight): given back; 0: none */
	int64_t device_seen_us;   /* the device's last_seen_at when claimed;
				   * 0: a token target */
	int attempts;             /* attempts made, this one included */
	bool debug;               /* trace into push.debug_events */
};

/*
 * What one attempt came to, filled by a sender's classify().  `reason` is
 * the provider's reason (e.g. "UNREGISTERED") or pgpush's own words;
 * `message_id` the provider's id of an accepted message.
 */
struct push_result {
	enum push_outcome outcome;
	int http_status;          /* 0: no HTTP answer (transport error) */
	char reason[256];
	char message_id[256];
	int64_t retry_at_us;      /* outcome RETRY: not before this time */
	int64_t provider_ts_us;   /* APNs 410 timestamp, else 0 */
	bool reauth;              /* auth rejected: refresh it, resend once */
	bool auth_failure;        /* counts toward the app's auto-ban */
	bool throttled;           /* provider asked us to slow down */
};

/* Names as in SQL ("fcm", "sent"...); NULL for an out-of-range value. */
const char *push_platform_name(enum push_platform p);
const char *push_outcome_name(enum push_outcome o);
const char *push_priority_name(enum push_priority p);

/* Parse an SQL enum label; returns 0, or -EINVAL for an unknown label. */
int push_platform_parse(const char *s, enum push_platform *out);
int push_priority_parse(const char *s, enum push_priority *out);

/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t push_now_us(void);

/* A result with only an outcome and a reason (no provider answer). */
void push_result_set(struct push_result *res, enum push_outcome outcome,
		     const char *reason);

/* Free an item and its strings; NULL is a no-op. */
void push_item_free(struct push_item *item);

#endif
