/* main.c - the mqseal command line: run a node, check a configuration, create or show an
 * identity key, print a node's peers-file line. Wiring only; the node itself is node.c. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_check.h"
#include "cli_status.h"
#include "identity.h"
#include "keyfile.h"
#include "node.h"
#include "reload.h"
#include "conf.h"

static const char usage_text[] =
	"usage: mqseal -c FILE [-v|-q]    run a node in the foreground, logging to stderr\n"
	"       mqseal check -c FILE      validate FILE and print the effective configuration\n"
	"       mqseal reload -c FILE     validate FILE, make the running node reload it (SIGHUP)\n"
	"                                 and wait: exit 0 reloaded, 1 refused, 2 FILE invalid\n"
	"       mqseal keygen FILE        create an identity key file (mode 0600, never overwritten)\n"
	"                                 and print its public key line for the peers' configs;\n"
	"                                 FILE - writes the key to stdout, the public line to stderr\n"
	"       mqseal pubkey [FILE]      print the public key line of an identity key file\n"
	"                                 (no FILE or -: read the key from stdin)\n"
	"       mqseal peerline -c FILE   print this node's line for the other nodes' peers files:\n"
	"                                 <node_id> <public_key>\n"
	"       mqseal status -c FILE [--json]  ask the running node for every peer's state\n"
	"       mqseal health [-c FILE | URL]   exit 0 when the running node is ready (GET /readyz)\n"
	"       mqseal --version          print the version\n"
	"       mqseal --help             print this help\n"
	"\n"
	"options come before FILE arguments (-- ends them: mqseal keygen -- -odd-name)\n"
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

/* Prints the public key line of key: to stdout, or to stderr when stdout carries the key itself. */
static int print_public(const struct id_key *key, const char *name, FILE *to)
{
	char text[ID_PUB_TEXT_LEN + 1];
	enum px_err rc = keyfile_public_text(key, text);

	if (rc != PX_OK) {
		fprintf(stderr, "mqseal: %s: %s\n", name, px_strerror(rc));
		return NODE_EXIT_FAILURE;
	}
	fprintf(to, "%s\n", text);
	return fflush(to) == 0 ? NODE_EXIT_OK : NODE_EXIT_FAILURE;
}

/* keygen FILE, or keygen - (the private key on stdout, for `mqseal keygen - | mqseal pubkey` and
 * secret stores; never to a terminal, where it would stay in the scrollback). */
static int cmd_keygen(const char *path)
{
	bool to_stdout = strcmp(path, "-") == 0;
	struct id_key *key = NULL;
	char err[512];
	int rc;

	if (to_stdout && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "mqseal: keygen -: standard output is a terminal; redirect it to a file or a pipe\n");
		return NODE_EXIT_FAILURE;
	}
	if ((to_stdout ? keyfile_create_fd(STDOUT_FILENO, &key, err, sizeof(err))
		       : keyfile_create(path, &key, err, sizeof(err))) != PX_OK) {
		fprintf(stderr, "mqseal: %s\n", err);
		return NODE_EXIT_FAILURE;
	}
	rc = print_public(key, path, to_stdout ? stderr : stdout);
	id_key_free(key);
	return rc;
}

/* pubkey FILE, or pubkey [-] reading the key from stdin. */
static int cmd_pubkey(const char *path)
{
	bool from_stdin = !path || strcmp(path, "-") == 0;
	struct id_key *key = NULL;
	char err[512];
	int rc;

	if (from_stdin && isatty(STDIN_FILENO)) {
		fprintf(stderr, "mqseal: pubkey: no FILE and standard input is a terminal; give a FILE or pipe a key in\n");
		return NODE_EXIT_USAGE;
	}
	if ((from_stdin ? keyfile_load_fd(STDIN_FILENO, "standard input", &key, err, sizeof(err))
			: keyfile_load(path, false, &key, err, sizeof(err))) != PX_OK) {
		fprintf(stderr, "mqseal: %s\n", err);
		return NODE_EXIT_FAILURE;
	}
	rc = print_public(key, from_stdin ? "standard input" : path, stdout);
	id_key_free(key);
	return rc;
}

static const struct option longopts[] = {
	{"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
	{"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
};

/* getopt's complaint, in our words: which option, what is wrong, and a likely meant one. */
static int option_error(int c, char **argv)
{
	const char *arg = argv[optind - 1], *names[sizeof(longopts) / sizeof(longopts[0])], *near;
	char msg[256];
	size_t n = 0;

	if (c == ':') {
		snprintf(msg, sizeof(msg), "option %s needs an argument (%s FILE)", arg, arg);
		return usage_error(msg);
	}
	if (strncmp(arg, "--", 2) != 0) {
		snprintf(msg, sizeof(msg), "unknown option -%c", optopt ? optopt : '?');
		return usage_error(msg);
	}
	for (n = 0; longopts[n].name; n++)
		names[n] = longopts[n].name;
	near = conf_nearest(arg + 2, names, n);
	if (near)
		snprintf(msg, sizeof(msg), "unknown option %.64s; did you mean --%s?", arg, near);
	else
		snprintf(msg, sizeof(msg), "unknown option %.64s", arg);
	return usage_error(msg);
}

/* Options of every form, before any other argument ("+": getopt stops at the first non-option,
 * so `keygen FILE --help` is a FILE and an extra argument, never a key named --help). Returns 0,
 * or the exit code of an error already reported. */
static int parse_options(int argc, char **argv, const char **config, int *verbosity)
{
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:vqhV", longopts, NULL)) != -1) {
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
			return option_error(c, argv);
		}
	}
	return 0;
}

/* The arguments left after the options: at most max of them. */
static int extra_arguments(int argc, char **argv, int max, const char *what)
{
	char msg[256];

	if (argc - optind <= max)
		return 0;
	snprintf(msg, sizeof(msg), "unexpected argument '%.64s'%s", argv[optind + max], what);
	return usage_error(msg);
}

/* keygen FILE / pubkey [FILE]: options (only --help) first, then the file. */
static int cmd_key(int argc, char **argv)
{
	bool keygen = strcmp(argv[0], "keygen") == 0;
	const char *config = NULL;
	int verbosity = 0, rc = parse_options(argc, argv, &config, &verbosity);

	if (rc != 0)
		return rc;
	if (config || verbosity)
		return usage_error(keygen ? "keygen takes no -c, -v or -q" : "pubkey takes no -c, -v or -q");
	if (keygen && optind == argc)
		return usage_error("keygen needs a FILE (or - for standard output)");
	rc = extra_arguments(argc, argv, 1, keygen ? " (keygen takes one FILE)" : " (pubkey takes one FILE)");
	if (rc != 0)
		return rc;
	return keygen ? cmd_keygen(argv[optind]) : cmd_pubkey(optind < argc ? argv[optind] : NULL);
}

static const char *const subcommands[] = {"check", "keygen", "pubkey", "status", "health", "reload", "peerline"};

/* The run form's stray argument: an unknown subcommand (maybe a typo) or an extra FILE. */
static int stray_argument(int argc, char **argv)
{
	const char *near = optind == 1 ? conf_nearest(argv[1], subcommands, sizeof(subcommands) / sizeof(subcommands[0]))
				       : NULL;
	char msg[256];

	if (optind == 1) {
		snprintf(msg, sizeof(msg), "unknown command '%.64s'%s%s%s", argv[1], near ? "; did you mean " : "",
			 near ? near : "", near ? "?" : "");
		return usage_error(msg);
	}
	return extra_arguments(argc, argv, 0, "");
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	int verbosity = 0, rc;

	if (argc >= 2 && (strcmp(argv[1], "keygen") == 0 || strcmp(argv[1], "pubkey") == 0))
		return cmd_key(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cli_status_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "health") == 0)
		return cli_health_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0) {
		rc = parse_options(argc - 1, argv + 1, &config, &verbosity);
		if (rc == 0)
			rc = extra_arguments(argc - 1, argv + 1, 0, " (check takes -c FILE)");
		if (rc != 0)
			return rc;
		if (!config)
			return usage_error("check needs -c FILE");
		return cli_check(config);
	}
	if (argc >= 2 && strcmp(argv[1], "peerline") == 0) {
		rc = parse_options(argc - 1, argv + 1, &config, &verbosity);
		if (rc == 0)
			rc = extra_arguments(argc - 1, argv + 1, 0, " (peerline takes -c FILE)");
		if (rc != 0)
			return rc;
		if (!config)
			return usage_error("peerline needs -c FILE");
		return cli_peerline(config);
	}
	if (argc >= 2 && strcmp(argv[1], "reload") == 0) {
		rc = parse_options(argc - 1, argv + 1, &config, &verbosity);
		if (rc == 0)
			rc = extra_arguments(argc - 1, argv + 1, 0, " (reload takes -c FILE)");
		if (rc != 0)
			return rc;
		if (!config)
			return usage_error("reload needs -c FILE");
		return reload_cmd(config, RELOAD_TIMEOUT_S);
	}
	rc = parse_options(argc, argv, &config, &verbosity);
	if (rc != 0)
		return rc;
	if (optind < argc)
		return stray_argument(argc, argv);
	if (!config)
		return usage_error("missing -c FILE");
	return node_main(config, verbosity);
}
