/* mqseal_forge.c - test-only command line around forge_envelope (forge.h): prints one sealed
 * payload (PROTOCOL.md §5; signed, §5.8) built from key material given on the command line, as hex
 * (or raw bytes with --raw), for integration tests to publish as forgeries. Never installed.
 *
 *   mqseal_forge (--secret HEX64 --sender ID --epoch N | --key HEX64 --iv HEX24 --key-id HEX16)
 *                --topic T (--payload STR | --payload-hex HEX) [--props-hex HEX] [--counter N]
 *                [--sealed-at MS] [--flags N] [--padding N] [--sign-pem FILE | --sign-seed HEX64]
 *                [--raw]
 *
 * --secret derives the epoch keys as a node does (§4.2: epoch_derive); --key/--iv/--key-id take
 * them as they are. --sign-* signs with that identity key (flag bit 2 added); --flags 4 without
 * it makes an envelope that claims a signature it does not carry. Exit 0 and the envelope on
 * stdout, or 2 and a message on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "forge.h"

#define FORGE_BUF  65536
#define FORGE_PEM  4096

struct forge_args {
	struct epoch_keys k;
	struct forge_msg m;
	uint8_t secret[ANN_SECRET_LEN], seed[ID_SEED_LEN], payload[FORGE_BUF], props[FORGE_BUF];
	const char *sender, *pem_path;
	uint64_t epoch;
	int have_secret, have_key, have_seed, raw, have_payload;
};

static void forge_fail(const char *what)
{
	fprintf(stderr, "mqseal_forge: %s\n", what);
	exit(2);
}

/* Exactly n bytes of hex (n == 0: any length up to cap); returns the byte count. */
static size_t forge_hex(const char *hex, uint8_t *out, size_t n, size_t cap, const char *what)
{
	size_t len = strlen(hex), i;

	if (len % 2 || (n && len != 2 * n) || len / 2 > cap)
		forge_fail(what);
	for (i = 0; i < len / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			forge_fail(what);
		out[i] = (uint8_t)v;
	}
	return len / 2;
}

static uint64_t forge_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s == '\0' || *s == '-' || *end != '\0')
		forge_fail(what);
	return (uint64_t)v;
}

/* One option with its value; returns 0, or -1 if name is not an option with a value. */
static int forge_opt(struct forge_args *a, const char *name, const char *v)
{
	if (strcmp(name, "--secret") == 0)
		a->have_secret = (int)forge_hex(v, a->secret, ANN_SECRET_LEN, ANN_SECRET_LEN, "bad --secret");
	else if (strcmp(name, "--sender") == 0)
		a->sender = v;
	else if (strcmp(name, "--epoch") == 0)
		a->epoch = forge_u64(v, "bad --epoch");
	else if (strcmp(name, "--key") == 0)
		a->have_key |= (int)forge_hex(v, a->k.key, 32, 32, "bad --key") ? 1 : 0;
	else if (strcmp(name, "--iv") == 0)
		a->have_key |= forge_hex(v, a->k.iv, 12, 12, "bad --iv") ? 2 : 0;
	else if (strcmp(name, "--key-id") == 0)
		a->have_key |= forge_hex(v, a->k.key_id, 8, 8, "bad --key-id") ? 4 : 0;
	else if (strcmp(name, "--topic") == 0) {
		a->m.topic = (const uint8_t *)v;
		a->m.topic_len = strlen(v);
	} else if (strcmp(name, "--payload") == 0) {
		a->m.payload_len = strlen(v);
		if (a->m.payload_len > FORGE_BUF)
			forge_fail("--payload too long");
		memcpy(a->payload, v, a->m.payload_len);
		a->have_payload = 1;
	} else if (strcmp(name, "--payload-hex") == 0) {
		a->m.payload_len = forge_hex(v, a->payload, 0, FORGE_BUF, "bad --payload-hex");
		a->have_payload = 1;
	} else if (strcmp(name, "--props-hex") == 0)
		a->m.props_len = forge_hex(v, a->props, 0, FORGE_BUF, "bad --props-hex");
	else if (strcmp(name, "--counter") == 0)
		a->m.counter = forge_u64(v, "bad --counter");
	else if (strcmp(name, "--sealed-at") == 0)
		a->m.sealed_at = forge_u64(v, "bad --sealed-at");
	else if (strcmp(name, "--flags") == 0)
		a->m.flags = (uint8_t)forge_u64(v, "bad --flags");
	else if (strcmp(name, "--padding") == 0)
		a->m.padding = (unsigned)forge_u64(v, "bad --padding");
	else if (strcmp(name, "--sign-pem") == 0)
		a->pem_path = v;
	else if (strcmp(name, "--sign-seed") == 0)
		a->have_seed = (int)forge_hex(v, a->seed, ID_SEED_LEN, ID_SEED_LEN, "bad --sign-seed");
	else
		return -1;
	return 0;
}

static void forge_parse(struct forge_args *a, int argc, char **argv)
{
	int i;

	a->m.padding = 16;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--raw") == 0)
			a->raw = 1;
		else if (i + 1 >= argc || forge_opt(a, argv[i], argv[i + 1]) != 0)
			forge_fail("usage: see the comment at the top of tests/tools/mqseal_forge.c");
		else
			i++;
	}
	if (!a->m.topic || !a->have_payload || (a->have_secret != 0) == (a->have_key != 0) ||
	    (a->have_key && a->have_key != 7) || (a->have_secret && !a->sender) || (a->pem_path && a->have_seed))
		forge_fail("need --topic, a payload, and either --secret/--sender/--epoch or --key/--iv/--key-id");
	a->m.props = a->props;
	a->m.payload = a->payload;
}

/* The signing key, if any: *out is the caller's (id_key_free). */
static void forge_identity(const struct forge_args *a, struct id_key **out)
{
	char pem[FORGE_PEM];
	size_t n;
	FILE *f;

	*out = NULL;
	if (a->have_seed && id_key_from_seed(a->seed, out) != PX_OK)
		forge_fail("bad --sign-seed");
	if (!a->pem_path)
		return;
	f = fopen(a->pem_path, "r");
	if (!f)
		forge_fail("cannot open --sign-pem");
	n = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	if (id_key_from_pem(pem, n, out) != PX_OK)
		forge_fail("--sign-pem is not an Ed25519 private key");
	OPENSSL_cleanse(pem, sizeof(pem));
}

int main(int argc, char **argv)
{
	struct forge_args *a = calloc(1, sizeof(*a));
	struct id_key *id = NULL;
	uint8_t *env = NULL;
	size_t n = 0, i;
	enum px_err rc;

	if (!a)
		forge_fail("out of memory");
	forge_parse(a, argc, argv);
	if (a->have_secret && epoch_derive(a->secret, a->sender, a->epoch, ANN_SUITE_1, &a->k) != PX_OK)
		forge_fail("epoch_derive failed");
	forge_identity(a, &id);
	rc = forge_envelope(&a->k, id, &a->m, &env, &n);
	if (rc != PX_OK)
		forge_fail(px_strerror(rc));
	if (a->raw && fwrite(env, 1, n, stdout) != n)
		forge_fail("write failed");
	for (i = 0; !a->raw && i < n; i++)
		printf("%02x", env[i]);
	if (!a->raw)
		printf("\n");
	free(env);
	id_key_free(id);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	return fflush(stdout) == 0 ? 0 : 2;
}
