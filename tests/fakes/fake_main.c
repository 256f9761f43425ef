/*
 * fake_main.c — pgpush-fake: command line, listeners, the request
 * dispatcher and clean shutdown.
 *
 * Five loopback listeners (APNs, FCM, WNS, MPNS over TLS; control in
 * plain text), each on the port given or a free one; the chosen ports
 * are written to --ports-file as shell assignments once all listen.
 * SIGTERM/SIGINT close everything and return from main, so sanitizer
 * leak reports cover the whole run.  Usage: README.md or --help.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_conn.h"
#include "fake_log.h"
#include "fake_script.h"

struct fake_cfg fake_cfg = {
	.apns_jwt_max_age = 3600,
	.apns_jwt_min_refresh = 1200,
	.apns_max_streams = 1000,
	.fcm_token_ttl = 3599,
	.wns_token_ttl = 86400,
	.mpns_raw_max = 1024,
	.mpns_notif_max = 3072,
	.mpns_daily_limit = 500,
};

static struct fake_listener listeners[FAKE_NPROV];
static SSL_CTX *ctxs[FAKE_NPROV];
static uv_signal_t sigterm, sigint;

static void
usage(FILE *f)
{
	fputs(
"usage: pgpush-fake --certs DIR [options]\n"
"  --certs DIR              ca.pem, server.pem, server.key (gen-certs.sh)\n"
"  --ports-file FILE        write APNS_PORT=... lines once listening\n"
"  --log FILE               JSON-lines request log\n"
"  --sink                   answer success fast, no checks, no log\n"
"  --apns-port N --fcm-port N --wns-port N --mpns-port N --control-port N\n"
"                           ports on 127.0.0.1 (default 0: a free one)\n"
"  --apns-key KID:TEAM:PEM  register an APNs signing key (repeatable)\n"
"  --apns-jwt-max-age S     ExpiredProviderToken after S s (3600)\n"
"  --apns-jwt-min-refresh S TooManyProviderTokenUpdates window (1200)\n"
"  --apns-max-streams N     streams after the first valid JWT (1000)\n"
"  --fcm-sa FILE            register a service-account JSON (repeatable)\n"
"  --fcm-token-ttl S        access token lifetime (3599)\n"
"  --fcm-aud URL            required assertion audience\n"
"                           (https://oauth2.googleapis.com/token)\n"
"  --wns-client SID:SECRET  register a WNS client (repeatable)\n"
"  --wns-token-ttl S        access token lifetime (86400)\n"
"  --mpns-raw-max B         raw payload limit (1024)\n"
"  --mpns-notif-max B       toast/tile payload limit (3072)\n"
"  --mpns-daily-limit N     unauthenticated per-channel limit (500)\n"
"  --max-streams N          SETTINGS_MAX_CONCURRENT_STREAMS override\n",
	    f);
}

/*
 * The one entry point of every request: control, or provider handler
 * plus latency, counters and the request log.
 */
void
fake_dispatch(struct fake_req *req, struct fake_resp *resp)
{
	int st;

	if (req->body == NULL)
		fake_req_add_body(req, "", 0);
	if (req->prov == FAKE_CTL) {
		fake_ctl_handle(req, resp);
		return;
	}
	if (fake_cfg.sink) {
		fake_sink_handle(req->prov, req->path, resp);
		return;
	}
	switch (req->prov) {
	case FAKE_APNS:
		fake_apns_handle(req, resp);
		break;
	case FAKE_FCM:
		fake_fcm_handle(req, resp);
		break;
	case FAKE_WNS:
		fake_wns_handle(req, resp);
		break;
	default:
		fake_mpns_handle(req, resp);
	}
	resp->delay_ms += fake_script_latency(req->prov);
	st = resp->action == FAKE_ACT_RESPOND ||
	    resp->action == FAKE_ACT_RESPOND_GOAWAY ? resp->status : 0;
	if (!resp->nolog) {
		fake_script_count(req->prov, resp->token, st);
		fake_log_write(req, resp);
	}
}

static void
close_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	fake_conn_close_all();
	uv_walk(s->loop, close_handle, NULL);
}

static int
write_ports(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "APNS_PORT=%d\nFCM_PORT=%d\nWNS_PORT=%d\nMPNS_PORT=%d\n"
	    "CONTROL_PORT=%d\nFAKE_PID=%d\n", listeners[FAKE_APNS].port,
	    listeners[FAKE_FCM].port, listeners[FAKE_WNS].port,
	    listeners[FAKE_MPNS].port, listeners[FAKE_CTL].port,
	    (int)getpid());
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

static int
num(const char *s, int min, int max)
{
	char *e;
	long v = strtol(s, &e, 10);

	if (*s == '\0' || *e != '\0' || v < min || v > max) {
		fprintf(stderr, "pgpush-fake: bad number %s\n", s);
		exit(2);
	}
	return (int)v;
}

static void
die(const char *msg)
{
	fprintf(stderr, "pgpush-fake: %s\n", msg);
	exit(1);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "certs", 1, NULL, 'c' }, { "ports-file", 1, NULL, 'P' },
		{ "log", 1, NULL, 'l' }, { "sink", 0, NULL, 's' },
		{ "apns-port", 1, NULL, 1 }, { "fcm-port", 1, NULL, 2 },
		{ "wns-port", 1, NULL, 3 }, { "mpns-port", 1, NULL, 4 },
		{ "control-port", 1, NULL, 5 }, { "apns-key", 1, NULL, 6 },
		{ "apns-jwt-max-age", 1, NULL, 7 },
		{ "apns-jwt-min-refresh", 1, NULL, 8 },
		{ "apns-max-streams", 1, NULL, 9 }, { "fcm-sa", 1, NULL, 10 },
		{ "fcm-token-ttl", 1, NULL, 11 }, { "fcm-aud", 1, NULL, 12 },
		{ "wns-client", 1, NULL, 13 },
		{ "wns-token-ttl", 1, NULL, 14 },
		{ "mpns-raw-max", 1, NULL, 15 },
		{ "mpns-notif-max", 1, NULL, 16 },
		{ "mpns-daily-limit", 1, NULL, 17 },
		{ "max-streams", 1, NULL, 18 }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *certs = NULL, *ports_file = NULL, *log_path = NULL;
	int ports[FAKE_NPROV] = { 0 }, ch, i;
	char err[512];
	uv_loop_t *loop = uv_default_loop();

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': certs = optarg; break;
		case 'P': ports_file = optarg; break;
		case 'l': log_path = optarg; break;
		case 's': fake_cfg.sink = 1; break;
		case 1: case 2: case 3: case 4: case 5:
			ports[ch - 1] = num(optarg, 0, 65535);
			break;
		case 6:
			if (fake_apns_add_key(optarg, err, sizeof err) != 0)
				die(err);
			break;
		case 7: fake_cfg.apns_jwt_max_age = num(optarg, 1, 1 << 30);
			break;
		case 8: fake_cfg.apns_jwt_min_refresh =
			    num(optarg, 0, 1 << 30);
			break;
		case 9: fake_cfg.apns_max_streams = num(optarg, 1, 1 << 30);
			break;
		case 10:
			if (fake_fcm_add_sa(optarg, err, sizeof err) != 0)
				die(err);
			break;
		case 11: fake_cfg.fcm_token_ttl = num(optarg, 1, 1 << 30);
			break;
		case 12:
			free(fake_cfg.fcm_aud);
			fake_cfg.fcm_aud = fake_xstrdup(optarg);
			break;
		case 13:
			if (fake_wns_add_client(optarg, err, sizeof err) != 0)
				die(err);
			break;
		case 14: fake_cfg.wns_token_ttl = num(optarg, 1, 1 << 30);
			break;
		case 15: fake_cfg.mpns_raw_max = num(optarg, 1, 1 << 24);
			break;
		case 16: fake_cfg.mpns_notif_max = num(optarg, 1, 1 << 24);
			break;
		case 17: fake_cfg.mpns_daily_limit =
			    num(optarg, 0, 1 << 30);
			break;
		case 18: fake_cfg.max_streams_override =
			    num(optarg, 1, 1 << 30);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (certs == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (fake_cfg.fcm_aud == NULL)
		fake_cfg.fcm_aud =
		    fake_xstrdup("https://oauth2.googleapis.com/token");
	if (log_path != NULL && fake_log_open(log_path) != 0)
		die("cannot open the log file");
	ctxs[FAKE_APNS] = fake_tls_ctx(certs, "h2", 1, err, sizeof err);
	ctxs[FAKE_FCM] = fake_tls_ctx(certs, "both", 0, err, sizeof err);
	ctxs[FAKE_WNS] = fake_tls_ctx(certs, "h1", 0, err, sizeof err);
	ctxs[FAKE_MPNS] = fake_tls_ctx(certs, "h1", 1, err, sizeof err);
	for (i = 0; i < FAKE_CTL; i++)
		if (ctxs[i] == NULL)
			die(err);
	for (i = 0; i < FAKE_NPROV; i++) {
		int r = fake_listen(loop, &listeners[i], i, ctxs[i],
		    ports[i]);

		if (r != 0) {
			snprintf(err, sizeof err, "listen %s port %d: %s",
			    fake_provider_name(i), ports[i], uv_strerror(r));
			die(err);
		}
	}
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);
	if (ports_file != NULL && write_ports(ports_file) != 0)
		die("cannot write the ports file");
	fprintf(stderr, "pgpush-fake: apns=%d fcm=%d wns=%d mpns=%d "
	    "control=%d%s\n", listeners[FAKE_APNS].port,
	    listeners[FAKE_FCM].port, listeners[FAKE_WNS].port,
	    listeners[FAKE_MPNS].port, listeners[FAKE_CTL].port,
	    fake_cfg.sink ? " (sink)" : "");
	uv_run(loop, UV_RUN_DEFAULT);
	uv_run(loop, UV_RUN_DEFAULT);	/* close callbacks */
	uv_loop_close(loop);
	for (i = 0; i < FAKE_NPROV; i++)
		SSL_CTX_free(ctxs[i]);
	fake_script_reset();
	fake_apns_free();
	fake_fcm_free();
	fake_wns_free();
	fake_log_close();
	free(fake_cfg.fcm_aud);
	return 0;
}
