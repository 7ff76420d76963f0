/* test_listener_tls.c - a TLS listener's certificate renewed by a reload (proxy/relay/listener.c,
 * listener_reload_tls): certificate A at start, B written over the same files and reloaded (the
 * expiry the metric shows moves to B's; a connection made before keeps A's context, which must
 * outlive the swap: ASan checks the free); then a key that is not PEM, a key that is not B's, and
 * a client CA file that does not exist: each refused with "FILE:LINE: listeners[0].tls.<option>:
 * path: reason", and the listener keeps B. Certificates are self-signed, made here with OpenSSL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "check.h"
#include "conf.h"
#include "listener_internal.h"
#include "stats.h"

#define DAY 86400

/* Writes a self-signed P-256 certificate (CN cn, valid for days) and its key; 0 on success. */
static int write_cert(const char *crt, const char *key, const char *cn, long days)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f = NULL;
	int rc = -1;

	if (!pk || !x || X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), days) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) || !X509_gmtime_adj(X509_getm_notAfter(x), days * DAY) ||
	    X509_set_pubkey(x, pk) != 1)
		goto out;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_sign(x, pk, EVP_sha256()) <= 0)
		goto out;
	if (!(f = fopen(crt, "w")) || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
		goto out;
	if (!(f = fopen(key, "w")) || PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
		goto out;
	f = NULL;
	rc = 0;
out:
	if (f && rc != 0)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		CHECK(fputs(text, f) >= 0);
		CHECK(fclose(f) == 0);
	}
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "r");
	size_t n = in ? fread(buf, 1, sizeof(buf), in) : 0;

	CHECK(in != NULL && n > 0 && n < sizeof(buf));
	if (in)
		fclose(in);
	buf[n] = '\0';
	write_text(to, buf);
}

/* The CN of the certificate in force in tls. */
static void cn_of(SSL_CTX *tls, char *out, size_t len)
{
	X509 *x = SSL_CTX_get0_certificate(tls);

	out[0] = '\0';
	if (x)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)len);
}

/* The expiry the metric shows is about days from now (a minute either way). */
static void check_expiry(const struct listener *l, long days)
{
	struct listener_cert c = {0};
	int64_t want = (int64_t)time(NULL) + days * DAY;

	CHECK(listener_cert_at(l, 0, &c));
	CHECK(c.not_after > want - 60 && c.not_after < want + 60);
	CHECK(c.addr && strcmp(c.addr, "127.0.0.1:0") == 0);
	CHECK(!listener_cert_at(l, 1, &c)); /* listen (plain) has none */
}

/* One refused reload: the error names the option and the path at FILE:LINE; B stays. */
static void check_refused(struct listener *l, const char *option, const char *path, const char *reason)
{
	char err[512] = "", want[600];

	CHECK_EQ(listener_reload_tls(l, err, sizeof(err)), 1);
	snprintf(want, sizeof(want), "/etc/t.conf:7: listeners[0].tls.%s: %s: ", option, path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(strstr(err, reason) != NULL);
	if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, reason))
		fprintf(stderr, "got: %s\n", err);
	check_expiry(l, 20);
}

struct files {
	char dir[64], crt[96], key[96], a_crt[96], a_key[96], b_crt[96], b_key[96];
};

static void files_make(struct files *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/px-listener-tls-XXXXXX");
	CHECK(mkdtemp(f->dir) != NULL);
	snprintf(f->crt, sizeof(f->crt), "%s/live.crt", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/live.key", f->dir);
	snprintf(f->a_crt, sizeof(f->a_crt), "%s/a.crt", f->dir);
	snprintf(f->a_key, sizeof(f->a_key), "%s/a.key", f->dir);
	snprintf(f->b_crt, sizeof(f->b_crt), "%s/b.crt", f->dir);
	snprintf(f->b_key, sizeof(f->b_key), "%s/b.key", f->dir);
	CHECK(write_cert(f->a_crt, f->a_key, "server-a", 10) == 0);
	CHECK(write_cert(f->b_crt, f->b_key, "server-b", 20) == 0);
	copy_file(f->a_crt, f->crt);
	copy_file(f->a_key, f->key);
}

static void files_remove(const struct files *f)
{
	const char *paths[] = {f->crt, f->key, f->a_crt, f->a_key, f->b_crt, f->b_key};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		(void)unlink(paths[i]);
	(void)rmdir(f->dir);
}

static void test_reload(struct listener *l, struct conf_listener *cl, const struct files *f)
{
	char err[512] = "", cn[64];
	SSL *held = SSL_new(l->socks[1].tls); /* a connection accepted with certificate A */

	CHECK(held != NULL);
	check_expiry(l, 10);
	copy_file(f->b_crt, f->crt);
	copy_file(f->b_key, f->key);
	CHECK_EQ(listener_reload_tls(l, err, sizeof(err)), 0);
	check_expiry(l, 20);
	cn_of(l->socks[1].tls, cn, sizeof(cn));
	CHECK(strcmp(cn, "server-b") == 0);
	CHECK(held && SSL_get_SSL_CTX(held) != l->socks[1].tls);
	if (held) {
		cn_of(SSL_get_SSL_CTX(held), cn, sizeof(cn));
		CHECK(strcmp(cn, "server-a") == 0); /* the open connection keeps A's context */
	}
	SSL_free(held);

	write_text(f->key, "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n");
	check_refused(l, "key_file", f->key, "routines");
	copy_file(f->a_key, f->key); /* the new certificate with the old key: a half-done renewal */
	check_refused(l, "key_file", f->key, "key values mismatch");
	copy_file(f->b_key, f->key);
	cl->client_ca_file = (char *)"/nonexistent/ca.crt";
	check_refused(l, "client_ca_file", "/nonexistent/ca.crt", "");
	cl->client_ca_file = NULL;
	CHECK_EQ(listener_reload_tls(l, err, sizeof(err)), 0);
	cn_of(l->socks[1].tls, cn, sizeof(cn));
	CHECK(strcmp(cn, "server-b") == 0);
	CHECK_EQ(listener_reload_tls(NULL, err, sizeof(err)), 0);
}

int main(void)
{
	struct files f = {{0}};
	struct conf_listener cl;
	struct px_conf conf;
	struct stats stats;
	struct px_ctx ctx;
	struct listener *l;
	char err[512] = "";

	memset(&cl, 0, sizeof(cl));
	memset(&conf, 0, sizeof(conf));
	memset(&stats, 0, sizeof(stats));
	memset(&ctx, 0, sizeof(ctx));
	files_make(&f);
	cl = (struct conf_listener){.host = (char *)"127.0.0.1", .cert_file = f.crt, .key_file = f.key, .line = 7};
	conf.path = (char *)"/etc/t.conf";
	conf.listen.host = (char *)"127.0.0.1";
	conf.listen.max_connections = 8;
	conf.listeners = &cl;
	conf.nlisteners = 1;
	ctx.base = event_base_new();
	ctx.conf = &conf;
	ctx.stats = &stats;
	CHECK(ctx.base != NULL);
	l = ctx.base ? listener_new(&ctx, err, sizeof(err)) : NULL;
	CHECK(l != NULL);
	if (!l)
		fprintf(stderr, "listener_new: %s\n", err);
	else
		test_reload(l, &cl, &f);
	listener_free(l);
	if (ctx.base)
		event_base_free(ctx.base);
	files_remove(&f);
	CHECK_DONE();
}
