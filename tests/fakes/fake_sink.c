/*
 * fake_sink.c — the --sink fast path: every request gets its
 * provider's success answer with no validation, no authentication
 * check, no script and no log, so benchmarks measure the daemon, not
 * the fake.  The OAuth endpoints still answer with a usable token.
 */
#include <stdio.h>
#include <string.h>

#include "fake.h"

static uint64_t seq;

uint64_t
fake_sink_count(void)
{
	return seq;
}

void
fake_sink_handle(int prov, const char *path, struct fake_resp *r)
{
	char buf[128];
	int n;

	r->status = 200;
	r->nolog = 1;
	seq++;
	if (strstr(path, "/token") != NULL ||
	    strstr(path, "accesstoken.srf") != NULL) {
		fake_resp_header(r, "content-type", "application/json");
		fake_resp_body_str(r, "{\"access_token\":\"ya29.sink\","
		    "\"expires_in\":3599,\"token_type\":\"Bearer\"}");
		return;
	}
	switch (prov) {
	case FAKE_APNS:
		snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx",
		    (unsigned long long)seq);
		fake_resp_header(r, "apns-id", buf);
		break;
	case FAKE_FCM:
		n = snprintf(buf, sizeof buf, "{\"name\":\"projects/sink/"
		    "messages/0:%llu\"}", (unsigned long long)seq);
		fake_resp_header(r, "content-type",
		    "application/json; charset=UTF-8");
		fake_resp_body(r, buf, (size_t)n);
		break;
	case FAKE_WNS:
		snprintf(buf, sizeof buf, "%016llx", (unsigned long long)seq);
		fake_resp_header(r, "X-WNS-Status", "received");
		fake_resp_header(r, "X-WNS-Msg-ID", buf);
		break;
	default:
		fake_resp_header(r, "X-NotificationStatus", "Received");
		fake_resp_header(r, "X-SubscriptionStatus", "Active");
		fake_resp_header(r, "X-DeviceConnectionStatus", "Connected");
	}
}
