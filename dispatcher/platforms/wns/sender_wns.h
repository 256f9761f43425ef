/*
 * sender_wns.h - the Windows Push Notification Services sender (struct
 * sender_ops) and its pure halves, exposed for table tests: building a
 * push's requests (toast, badge, tile, raw) and classifying one answer.
 *
 * Only sender.c (the registry) and tests include this header.
 */
#ifndef PGPUSH_SENDER_WNS_H
#define PGPUSH_SENDER_WNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/push.h"
#include "net/http.h"
#include "platforms/parts.h"
#include "platforms/sender.h"

/* WNS refuses larger notification bodies with 413. */
#define SENDER_WNS_MAX_PAYLOAD 5000
#define SENDER_WNS_BACKOFF_BASE_US 1000000LL
#define SENDER_WNS_BACKOFF_CAP_US (600 * 1000000LL)
/* 406 or channelthrottled without Retry-After: at least this long. */
#define SENDER_WNS_THROTTLE_WAIT_US (60 * 1000000LL)
#define SENDER_WNS_MAX_HEADERS 8

extern const struct sender_ops sender_wns_ops;

/* One request of a push. */
struct sender_wns_part {
	const char *name;                 /* "toast", "badge", "tile", "raw" */
	char *body;                       /* malloc'd */
	size_t body_len;
	/* "Name: value" lines (malloc'd): X-WNS-Type, Content-Type, then
	 * the optional X-WNS-* headers; NULL-terminated. */
	char *headers[SENDER_WNS_MAX_HEADERS + 1];
};

struct sender_wns_request {
	struct sender_wns_part parts[PARTS_MAX];
	size_t n;
};

/*
 * Build the requests for `item` at `now_us` (mapping at the top of
 * sender_wns.c).  Returns 0 and fills *out (free with
 * sender_wns_request_free()), or -EINVAL with `res` set: EXPIRED for a
 * push past its expiry, FAILED for a payload WNS would refuse or one
 * with nothing to send.
 */
int sender_wns_build(const struct push_item *item, int64_t now_us,
		     struct sender_wns_request *out, struct push_result *res);

void sender_wns_request_free(struct sender_wns_request *r);

/* What came back for one request. */
struct sender_wns_answer {
	long status;              /* 0: transport error */
	const char *wns_status;   /* X-WNS-Status (or the older
				   * X-WNS-NotificationStatus) */
	const char *error_desc;   /* X-WNS-Error-Description */
	const char *retry_after;
	const char *msg_id;       /* X-WNS-Msg-ID */
	const char *error;        /* status 0: the transport error */
	enum http_err err;        /* status 0: its kind */
};

/*
 * Classify one answer (PROTOCOLS.md 3.4) into `res`; `res->reason` is a
 * short text for this part ("received", "channel expired", ...).
 * Retryable answers become FAILED at `max_attempts`.  Ambiguous answers
 * (5xx other than 500/503, a transport error of an ambiguous kind:
 * http_err_ambiguous()) are retried only when `retry_ambiguous`, else
 * UNCERTAIN; a request that was not sent is retried.
 */
void sender_wns_classify(const struct sender_wns_answer *ans, int attempts,
			 int max_attempts, bool retry_ambiguous,
			 int64_t now_us, int64_t backoff_us,
			 struct push_result *res);

#endif
