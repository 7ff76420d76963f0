/* fuzz_conf.c - libFuzzer target for conf_load. The input is written to a temporary file (mkstemp
 * under /tmp, removed after) and loaded with check_files false. Whatever the input, conf_load must
 * not crash, leak or break its contract (a configuration xor problems; every problem line names
 * the file, or the peers_file it names, at a line); and when the input loads, conf_dump's text must load again and dump identically. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* LeakSanitizer's hook for built-in suppressions. libconfig 1.5 leaks the text of a string token
 * that a syntax error follows (a bison semantic value without a destructor; reproduced with
 * libconfig alone: config_read_string on "x = 1;\n\"abc\"\n"). That is libconfig's to fix;
 * only allocations made inside libconfig are exempt, ours never are. */
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

/* Writes data to a fresh temporary file; returns its path (the caller unlinks and frees) or NULL. */
static char *fuzz_conf_write(const void *data, size_t size)
{
	char *path = strdup("/tmp/fuzz_conf.XXXXXX");
	int fd = path ? mkstemp(path) : -1;
	const char *p = data;
	ssize_t n;

	if (fd < 0) {
		free(path);
		return NULL;
	}
	while (size > 0 && (n = write(fd, p, size)) > 0) {
		p += n;
		size -= (size_t)n;
	}
	close(fd);
	return path;
}

/* Does a problem line name the file (path + ':'), or the peers file it names, at a line
 * ("PEERS_FILE:LINE: ...")? */
static int fuzz_conf_names_file(const char *line, const char *path, size_t plen)
{
	const char *c;

	if (strncmp(line, path, plen) == 0 && line[plen] == ':')
		return 1;
	for (c = strchr(line, ':'); c; c = strchr(c + 1, ':')) {
		size_t digits = strspn(c + 1, "0123456789");
		if (c > line && digits > 0 && c[1 + digits] == ':' && c[2 + digits] == ' ')
			return 1;
	}
	return 0;
}

/* Loads path, checks the contract, and returns the dump of what loaded (NULL when it did not). */
static char *fuzz_conf_load(const char *path)
{
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	size_t i, n = conf_load(path, false, &conf, &errs), plen = strlen(path);
	char *dump = NULL;

	if ((n == 0) != (conf != NULL) || n != errs.count)
		abort();
	for (i = 0; i < errs.count; i++)
		if (!fuzz_conf_names_file(errs.lines[i], path, plen))
			abort();
	for (i = 0; i < errs.nwarnings; i++)
		if (strncmp(errs.warnings[i], path, plen) != 0)
			abort();
	if (conf) {
		dump = conf_dump(conf);
		if (!dump)
			abort();
	}
	conf_errors_clear(&errs);
	conf_free(conf);
	return dump;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = fuzz_conf_write(data, size), *dump, *again = NULL, *dump2 = NULL;

	if (!path)
		return 0;
	dump = fuzz_conf_load(path);
	unlink(path);
	free(path);
	if (dump) {
		again = fuzz_conf_write(dump, strlen(dump));
		if (again) {
			dump2 = fuzz_conf_load(again);
			unlink(again);
			if (!dump2 || strcmp(dump, dump2) != 0) {
				fprintf(stderr, "conf_dump round trip differs:\n%s\n---\n%s\n", dump,
					dump2 ? dump2 : "(did not load)");
				abort();
			}
		}
	}
	free(again);
	free(dump2);
	free(dump);
	return 0;
}
