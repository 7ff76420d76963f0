/* golden_vectors.h - reads tests/vectors/golden.txt (the golden vectors of PROTOCOL.md §12,
 * written by tests/vectors/golden.py) for the unit tests that check crypto/ against it.
 * Lines are "name = value": hex bytes, a decimal integer or a "quoted string". */
#ifndef PX_GOLDEN_VECTORS_H
#define PX_GOLDEN_VECTORS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_MAX  128
#define GOLDEN_LINE 4096

struct golden_entry {
	char name[48];
	char value[GOLDEN_LINE];
};

static struct golden_entry golden_tab[GOLDEN_MAX];
static size_t golden_n;

/* Loads <tests_dir>/vectors/golden.txt; returns the number of entries, or -1. */
static inline int golden_load(const char *tests_dir)
{
	char path[1024], line[GOLDEN_LINE + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vectors/golden.txt", tests_dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) && golden_n < GOLDEN_MAX) {
		char *eq = strstr(line, " = ");
		size_t nl = strcspn(line, "\r\n");
		line[nl] = '\0';
		if (line[0] == '#' || !eq || (size_t)(eq - line) >= sizeof(golden_tab[0].name))
			continue;
		memcpy(golden_tab[golden_n].name, line, (size_t)(eq - line));
		snprintf(golden_tab[golden_n].value, GOLDEN_LINE, "%s", eq + 3);
		golden_n++;
	}
	fclose(f);
	return (int)golden_n;
}

static inline const char *golden_raw(const char *name)
{
	size_t i;

	for (i = 0; i < golden_n; i++)
		if (strcmp(golden_tab[i].name, name) == 0)
			return golden_tab[i].value;
	fprintf(stderr, "golden vector %s missing\n", name);
	exit(2);
}

/* Hex bytes into out; returns the length (exits if the entry is missing or bad). */
static inline size_t golden_hex(const char *name, unsigned char *out, size_t cap)
{
	const char *v = golden_raw(name);
	size_t n = strlen(v), i;

	if (n % 2 || n / 2 > cap) {
		fprintf(stderr, "golden vector %s: bad hex or too long\n", name);
		exit(2);
	}
	for (i = 0; i < n / 2; i++) {
		unsigned x;
		if (sscanf(v + 2 * i, "%2x", &x) != 1)
			exit(2);
		out[i] = (unsigned char)x;
	}
	return n / 2;
}

static inline uint64_t golden_u64(const char *name)
{
	return strtoull(golden_raw(name), NULL, 10);
}

/* A quoted string, without its quotes, into out (cap bytes with the NUL). */
static inline const char *golden_str(const char *name, char *out, size_t cap)
{
	const char *v = golden_raw(name);
	size_t n = strlen(v);

	if (n < 2 || v[0] != '"' || v[n - 1] != '"' || n - 2 >= cap)
		exit(2);
	memcpy(out, v + 1, n - 2);
	out[n - 2] = '\0';
	return out;
}

#endif
