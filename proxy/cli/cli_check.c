/* cli_check.c - `mqseal check -c FILE`: what start needs, verified without starting. conf/ checks
 * the file and the files it names; this adds what needs the identity key or the process's user:
 * every peer key decodes, none is this node's own key, the state directory is writable by the user
 * the node will run as, each TLS listener's certificate and key load (and match), and a warning
 * when no peer is listed. Problems are printed one a line as
 * "FILE[:LINE]: option: problem", like conf/'s (a peer's FILE is the peers file when it is there).
 * After the effective configuration, the read and write rights that `groups` gives, per group and
 * per node (cli_rights.c). Also `mqseal peerline -c FILE`: this node's line for the other nodes'
 * peers files. */
#include "cli_check.h"
#include "cli_rights.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "identity.h"
#include "keyfile.h"
#include "listener.h"
#include "node.h"
#include "conf.h"

/* Every peer key decodes, and none is this node's own (its messages would seem to come from
 * itself, and the peer it was meant for would be missing). */
static int check_peer_keys(const struct px_conf *conf, const struct id_key *key)
{
	uint8_t raw[ID_PUB_LEN], own[ID_PUB_LEN];
	int bad = 0;
	size_t i;

	if (id_key_public(key, own) != PX_OK)
		return 1;
	for (i = 0; i < conf->npeers; i++) {
		const struct conf_peer *p = &conf->peers[i];
		/* FILE:LINE: as conf/ names the key: in the list, or public_key on a peers_file line */
		const char *file = conf_peer_file(conf, p), *what = p->in_file ? "public_key" : "peers.public_key";

		if (id_pub_decode(p->public_key, raw) != PX_OK) {
			fprintf(stderr, "%s:%u: %s: not a valid Ed25519 public key\n", file, p->line, what);
			bad = 1;
		} else if (memcmp(raw, own, ID_PUB_LEN) == 0) {
			fprintf(stderr,
				"%s:%u: %s: peer %s is listed with this node's own public key (from %s); "
				"list the key that `mqseal pubkey` prints on node %s\n",
				file, p->line, what, p->id, conf->identity_file, p->id);
			bad = 1;
		}
	}
	return bad;
}

/* Can uid (in group gid) search directory path (the x bit that applies to it)? */
static bool check_searchable(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return false;
	if (uid == 0)
		return true;
	if (st.st_uid == uid)
		return (st.st_mode & S_IXUSR) != 0;
	if (st.st_gid == gid)
		return (st.st_mode & S_IXGRP) != 0;
	return (st.st_mode & S_IXOTH) != 0;
}

/* Running as root with `user`: the node hands state_dir to that user after binding (node.c), so
 * the directory itself will be the user's; every directory above it must let the user through. */
static int check_state_dir_for_user(const struct px_conf *conf)
{
	char path[PATH_MAX];
	struct passwd *pw = getpwnam(conf->user);
	size_t i, n = strlen(conf->state_dir);

	if (!pw) {
		fprintf(stderr, "%s: user: %s: no such user\n", conf->path, conf->user);
		return 1;
	}
	if (n >= sizeof(path))
		return 0;
	memcpy(path, conf->state_dir, n + 1);
	for (i = n; i > 0; i--) { /* each ancestor: /a/b/c -> /a/b, /a, / */
		if (path[i] != '/' || i == n)
			continue;
		path[i] = '\0';
		if (!check_searchable(path[0] ? path : "/", pw->pw_uid, pw->pw_gid)) {
			fprintf(stderr, "%s: state_dir: user %s (uid %u) cannot reach %s: %s is not searchable by it\n",
				conf->path, conf->user, (unsigned)pw->pw_uid, conf->state_dir, path[0] ? path : "/");
			return 1;
		}
	}
	return 0;
}

/* state_dir must be writable (or creatable) by the user the node runs as. */
static int check_state_dir(const struct px_conf *conf)
{
	char parent[PATH_MAX];
	const char *dir = conf->state_dir, *slash;
	struct stat st;

	if (conf->user && geteuid() == 0)
		return check_state_dir_for_user(conf);
	if (stat(dir, &st) == 0) {
		if (access(dir, W_OK | X_OK) == 0)
			return 0;
		fprintf(stderr, "%s: state_dir: %s is not writable by uid %u (%s); the node keeps its epoch record there: "
			"chown it to the user that runs mqseal, or set user\n",
			conf->path, dir, (unsigned)geteuid(), strerror(errno));
		return 1;
	}
	slash = strrchr(dir, '/');
	if (!slash || (size_t)(slash - dir) >= sizeof(parent))
		snprintf(parent, sizeof(parent), ".");
	else
		snprintf(parent, sizeof(parent), "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
	if (access(parent, W_OK | X_OK) == 0)
		return 0;
	fprintf(stderr, "%s: state_dir: %s does not exist and uid %u cannot create it in %s (%s)\n", conf->path, dir,
		(unsigned)geteuid(), parent, strerror(errno));
	return 1;
}

/* How many peers, and where they came from (stderr: stdout is the effective configuration). */
static void check_peer_count(const struct px_conf *conf)
{
	size_t nlist = conf->npeers - conf->npeers_file;

	if (conf->peers_file_path)
		fprintf(stderr, "%s: %zu peer%s: %zu in the peers list, %zu in %s\n", conf->path, conf->npeers,
			conf->npeers == 1 ? "" : "s", nlist, conf->npeers_file, conf->peers_file_path);
	else
		fprintf(stderr, "%s: %zu peer%s, in the peers list\n", conf->path, conf->npeers,
			conf->npeers == 1 ? "" : "s");
}

/* The TLS listeners' contexts, built as start builds them: a certificate or key OpenSSL cannot
 * load, a key that is not the certificate's, an unreadable client CA file. */
static int check_listeners_tls(const struct px_conf *conf)
{
	char err[512];
	int rc = 0;

	for (size_t i = 0; i < conf->nlisteners; i++) {
		SSL_CTX *tls;

		if (!conf->listeners[i].cert_file)
			continue;
		tls = listener_tls_new(conf, &conf->listeners[i], err, sizeof(err));
		if (!tls) {
			fprintf(stderr, "%s\n", err);
			rc = -1;
		}
		SSL_CTX_free(tls);
	}
	return rc;
}

static void check_warnings(const struct px_conf *conf)
{
	if (conf->npeers == 0)
		fprintf(stderr, "warning: %s: peers: none listed: no other node can open what this node seals, and it "
			"opens nothing; add each other node as { id = \"...\"; public_key = \"...\"; } with the line "
			"`mqseal pubkey` prints there, or the line `mqseal peerline` prints there to peers_file\n", conf->path);
}

int cli_check(const char *path)
{
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	struct id_key *key = NULL;
	char err[512], *dump;
	size_t n;
	int rc = NODE_EXIT_USAGE;

	n = conf_load(path, true, &conf, &errs);
	for (size_t k = 0; k < errs.count; k++)
		fprintf(stderr, "%s\n", errs.lines[k]);
	for (size_t k = 0; k < errs.nwarnings; k++)
		fprintf(stderr, "warning: %s\n", errs.warnings[k]);
	if (n != 0)
		goto out;
	if (keyfile_load(conf->identity_file, true, &key, err, sizeof(err)) != PX_OK) {
		fprintf(stderr, "%s: identity_file: %s\n", path, err);
		goto out;
	}
	check_warnings(conf);
	if (check_peer_keys(conf, key) | check_state_dir(conf) | check_listeners_tls(conf))
		goto out;
	dump = conf_dump(conf);
	if (dump) {
		fputs(dump, stdout);
		free(dump);
	}
	check_peer_count(conf);
	if (cli_rights_print(stdout, conf) != 0)
		fprintf(stderr, "%s: out of memory printing the read and write rights\n", path);
	fprintf(stderr, "%s: configuration OK\n", path);
	rc = NODE_EXIT_OK;
out:
	id_key_free(key);
	conf_free(conf);
	conf_errors_clear(&errs);
	return rc;
}

int cli_peerline(const char *path)
{
	char err[512], text[ID_PUB_TEXT_LEN + 1];
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	struct id_key *key = NULL;
	int rc = NODE_EXIT_USAGE;
	size_t k;

	if (conf_load(path, false, &conf, &errs) != 0) {
		for (k = 0; k < errs.count; k++)
			fprintf(stderr, "%s\n", errs.lines[k]);
		goto out;
	}
	rc = NODE_EXIT_FAILURE;
	if (keyfile_load(conf->identity_file, false, &key, err, sizeof(err)) != PX_OK) {
		fprintf(stderr, "%s: identity_file: %s\n", path, err);
		goto out;
	}
	if (keyfile_public_text(key, text) != PX_OK)
		goto out;
	printf("%s %s\n", conf->node_id, text);
	rc = fflush(stdout) == 0 ? NODE_EXIT_OK : NODE_EXIT_FAILURE;
out:
	id_key_free(key);
	conf_free(conf);
	conf_errors_clear(&errs);
	return rc;
}
