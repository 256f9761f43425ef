/*
 * fake_tls.c — OpenSSL server contexts for the provider ports.
 *
 * Every provider port is TLS 1.2+ with the server certificate from the
 * test CA (gen-certs.sh).  ALPN decides the protocol: APNs speaks only
 * h2 (a client that offers no h2 fails the handshake, as with Apple),
 * WNS and MPNS only http/1.1, FCM (and its OAuth endpoint) both.
 * Ports that take client certificates (APNs certificate auth,
 * authenticated MPNS) ask for one; a certificate that does not chain to
 * the test CA fails the handshake, no certificate is allowed and the
 * provider module then applies its own rule.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "fake_conn.h"

static const unsigned char alpn_h2[] = "\x02h2";
static const unsigned char alpn_h1[] = "\x08http/1.1";
static const unsigned char alpn_both[] = "\x02h2\x08http/1.1";

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const unsigned char *prefs = arg;
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, prefs,
	    (unsigned)strlen((const char *)prefs), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static const unsigned char sid_ctx[] = "pgpush-fake";

static int
verify_cb(int preverify_ok, X509_STORE_CTX *ctx)
{
	/* Only certificates from the test CA; none at all is fine. */
	return preverify_ok;
}

/*
 * Builds a server context from certdir/{server.pem,server.key,ca.pem}.
 * alpn is "h2", "h1" or "both".  Returns NULL with a message in err.
 */
SSL_CTX *
fake_tls_ctx(const char *certdir, const char *alpn, int want_client_cert,
    char *err, size_t errlen)
{
	char crt[4096], key[4096], ca[4096];
	SSL_CTX *ctx;
	const unsigned char *prefs;

	snprintf(crt, sizeof crt, "%s/server.pem", certdir);
	snprintf(key, sizeof key, "%s/server.key", certdir);
	snprintf(ca, sizeof ca, "%s/ca.pem", certdir);
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	/*
	 * Sessions may be resumed (libcurl 8 does, with or without a client
	 * certificate), as with the real providers.  A server that verifies
	 * peers must name a session id context, or OpenSSL fails every
	 * resumption with an internal_error alert.
	 */
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx,
	    (unsigned)sizeof sid_ctx - 1) != 1)
		goto fail;
	if (want_client_cert) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);

		if (names == NULL ||
		    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
			goto fail;
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	}
	if (strcmp(alpn, "h2") == 0)
		prefs = alpn_h2;
	else if (strcmp(alpn, "h1") == 0)
		prefs = alpn_h1;
	else
		prefs = alpn_both;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)prefs);
	return ctx;
fail:
	snprintf(err, errlen, "TLS setup from %s: %s", certdir,
	    ERR_reason_error_string(ERR_peek_last_error()));
	SSL_CTX_free(ctx);
	return NULL;
}
