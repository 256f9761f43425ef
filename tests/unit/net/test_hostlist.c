/*
 * test_hostlist.c - channel-URL host allow-lists: exact and "*." patterns,
 * ports, case and trailing dots, the URL checks that stop SSRF tricks
 * (user info, other schemes, look-alike hosts), bad patterns, and
 * rebasing a channel URL onto an endpoint override.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/hostlist.h"
#include "tap.h"

struct url_case {
	const char *url;
	int rc;
	const char *err_has;
};

int main(void)
{
	struct hostlist *hl = hostlist_new();
	char err[256];
	static const struct url_case cases[] = {
		{ "https://db5.notify.windows.com/?token=AwYAAAA", 0, NULL },
		{ "https://a.b.NOTIFY.windows.com./?token=x", 0, NULL },
		{ "https://notify.windows.com/?token=x", -EPERM,
		  "notify.windows.com" },
		{ "https://evilnotify.windows.com/?token=x", -EPERM, NULL },
		{ "https://notify.windows.com.evil.org/?token=x", -EPERM, NULL },
		{ "https://db5.notify.windows.com@10.0.0.1/?token=x", -EINVAL,
		  "user info" },
		{ "http://db5.notify.windows.com/?token=x", -EINVAL, "https" },
		{ "https://10.0.0.1/?token=x", -EPERM, "10.0.0.1" },
		{ "https://127.0.0.1:8443/x?token=t", 0, NULL },
		{ "https://127.0.0.1:9000/x?token=t", -EPERM, NULL },
		{ "https://localhost/x", 0, NULL },
		{ "https://[::1]:443/x", 0, NULL },
		{ "not a url", -EINVAL, NULL },
	};
	size_t i;
	char *u;

	plan(33);
	is_int(hostlist_add(hl, "*.notify.windows.com", err, sizeof err), 0,
	       "wildcard pattern");
	is_int(hostlist_add(hl, "127.0.0.1:8443", err, sizeof err), 0,
	       "host:port pattern");
	is_int(hostlist_add(hl, "LOCALHOST.", err, sizeof err), 0,
	       "exact pattern, any port (case and trailing dot ignored)");
	is_int(hostlist_add(hl, "[::1]", err, sizeof err), 0, "IPv6 pattern");
	is_int((long long)hostlist_count(hl), 4, "four patterns");

	ok(hostlist_match(hl, "x.notify.windows.com", 443),
	   "match: a subdomain");
	ok(!hostlist_match(hl, "notify.windows.com", 443),
	   "no match: the bare domain of a *. pattern");
	ok(hostlist_match(hl, "localhost", 1234), "match: exact, any port");
	ok(!hostlist_match(hl, "", 443), "no match: empty host");

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		err[0] = '\0';
		rc = hostlist_check_url(hl, cases[i].url, err, sizeof err);
		is_int(rc, cases[i].rc, "check %s", cases[i].url);
		if (cases[i].err_has != NULL)
			like_str(err, cases[i].err_has, "  reason: %s", err);
	}
	ok(strstr(err, "not a url") == NULL, "reasons never echo the URL");
	hostlist_check_url(hl, "https://10.0.0.1/?token=SECRET", err,
			   sizeof err);
	ok(strstr(err, "SECRET") == NULL, "nor the channel's token");

	is_int(hostlist_add(hl, "", err, sizeof err), -EINVAL,
	       "empty pattern refused");
	is_int(hostlist_add(hl, "a.*.com", err, sizeof err), -EINVAL,
	       "inner wildcard refused");
	is_int(hostlist_add(hl, "x.com:99999", err, sizeof err), -EINVAL,
	       "bad port refused");

	u = hostlist_rebase_url("https://db5.notify.windows.com/a/b?token=T%2B",
				"https://127.0.0.1:8443");
	is_str(u, "https://127.0.0.1:8443/a/b?token=T%2B",
	       "rebase: the endpoint's origin, the channel's path and query");
	free(u);
	u = hostlist_rebase_url("https://db5.notify.windows.com/?token=T",
				NULL);
	is_str(u, "https://db5.notify.windows.com/?token=T",
	       "no endpoint: the channel URL itself");
	free(u);
	hostlist_free(hl);
	hostlist_free(NULL);
	return done_testing();
}
