/* main.c - the mqseal command line: run a node, check a configuration, create or show an
 * identity key. Wiring only; the node itself is node.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_status.h"
#include "identity.h"
#include "keyfile.h"
#include "node.h"
#include "reload.h"
#include "../conf/conf.h"

static const char usage_text[] =
	"usage: mqseal -c FILE [-v|-q]    run a node in the foreground, logging to stderr\n"
	"       mqseal check -c FILE      validate FILE and print the effective configuration\n"
	"       mqseal reload -c FILE     validate FILE, make the running node reload it (SIGHUP)\n"
	"                                 and wait: exit 0 reloaded, 1 refused, 2 FILE invalid\n"
	"       mqseal keygen FILE        create an identity key file (mode 0600, never overwritten)\n"
	"                                 and print its public key line for the peers' configs\n"
	"       mqseal pubkey FILE        print the public key line of an identity key file\n"
	"       mqseal status -c FILE [--json]  ask the running node for every peer's state\n"
	"       mqseal health [-c FILE | URL]   exit 0 when the running node is ready (GET /readyz)\n"
	"       mqseal --version          print the version\n"
	"       mqseal --help             print this help\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (libconfig syntax; see mqseal.conf.example)\n"
	"  -v, --verbose       one log level more than log.level (info -> debug)\n"
	"  -q, --quiet         one log level less than log.level (info -> warn)\n"
	"  -h, --help          print this help\n"
	"  -V, --version       print the version\n"
	"\n"
	"exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error\n"
	"signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads peers, topics and log level\n";

static int usage_error(const char *msg)
{
	fprintf(stderr, "mqseal: %s\n", msg);
	fputs(usage_text, stderr);
	return NODE_EXIT_USAGE;
}

/* Checks what conf/ cannot: every peer key decodes. */
static int check_peer_keys(const struct px_conf *conf)
{
	uint8_t raw[ID_PUB_LEN];
	int bad = 0;
	size_t i;

	for (i = 0; i < conf->npeers; i++) {
		if (id_pub_decode(conf->peers[i].public_key, raw) != PX_OK) {
			fprintf(stderr, "%s:%u: peers.public_key: not a valid Ed25519 public key\n", conf->path,
				conf->peers[i].line);
			bad = 1;
		}
	}
	return bad;
}

static int cmd_check(const char *path)
{
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	struct id_key *key = NULL;
	char err[512], *dump;
	size_t i;
	int rc = NODE_EXIT_USAGE;

	i = conf_load(path, true, &conf, &errs);
	for (size_t k = 0; k < errs.count; k++)
		fprintf(stderr, "%s\n", errs.lines[k]);
	for (size_t k = 0; k < errs.nwarnings; k++)
		fprintf(stderr, "warning: %s\n", errs.warnings[k]);
	if (i != 0)
		goto out;
	if (check_peer_keys(conf))
		goto out;
	if (keyfile_load(conf->identity_file, true, &key, err, sizeof(err)) != PX_OK) {
		fprintf(stderr, "%s: identity_file: %s\n", path, err);
		goto out;
	}
	dump = conf_dump(conf);
	if (dump) {
		fputs(dump, stdout);
		free(dump);
	}
	fprintf(stderr, "%s: configuration OK\n", path);
	rc = NODE_EXIT_OK;
out:
	id_key_free(key);
	conf_free(conf);
	conf_errors_clear(&errs);
	return rc;
}

static int cmd_keygen(const char *path, int create)
{
	char err[512], text[ID_PUB_TEXT_LEN + 1];
	struct id_key *key = NULL;
	enum px_err rc;

	rc = create ? keyfile_create(path, &key, err, sizeof(err)) : keyfile_load(path, false, &key, err, sizeof(err));
	if (rc != PX_OK) {
		fprintf(stderr, "mqseal: %s\n", err);
		return NODE_EXIT_FAILURE;
	}
	rc = keyfile_public_text(key, text);
	id_key_free(key);
	if (rc != PX_OK) {
		fprintf(stderr, "mqseal: %s: %s\n", path, px_strerror(rc));
		return NODE_EXIT_FAILURE;
	}
	printf("%s\n", text);
	return NODE_EXIT_OK;
}

/* Options of the run and check forms. */
static int parse_options(int argc, char **argv, const char **config, int *verbosity)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case 'v':
			(*verbosity)++;
			break;
		case 'q':
			(*verbosity)--;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(NODE_EXIT_OK);
		case 'V':
			printf("mqseal %s\n", MQSEAL_VERSION);
			exit(NODE_EXIT_OK);
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	int verbosity = 0;

	if (argc >= 2 && (strcmp(argv[1], "keygen") == 0 || strcmp(argv[1], "pubkey") == 0)) {
		if (argc != 3)
			return usage_error("keygen and pubkey take exactly one FILE");
		return cmd_keygen(argv[2], strcmp(argv[1], "keygen") == 0);
	}
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cli_status_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "health") == 0)
		return cli_health_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0) {
		if (parse_options(argc - 1, argv + 1, &config, &verbosity) != 0 || !config)
			return usage_error("check needs -c FILE");
		return cmd_check(config);
	}
	if (argc >= 2 && strcmp(argv[1], "reload") == 0) {
		if (parse_options(argc - 1, argv + 1, &config, &verbosity) != 0 || !config)
			return usage_error("reload needs -c FILE");
		return reload_cmd(config, RELOAD_TIMEOUT_S);
	}
	if (parse_options(argc, argv, &config, &verbosity) != 0)
		return usage_error("unexpected arguments");
	if (!config)
		return usage_error("missing -c FILE");
	return node_main(config, verbosity);
}
