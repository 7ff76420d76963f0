/* test_log.c - log lines (proxy/log.c) with hostile field contents: whatever a topic, client id
 * or peer id carries (newline, carriage return, escape, DEL, backslash, bytes that are not UTF-8),
 * one event stays one line; text escapes as \xNN, JSON per RFC 8259 (plus \xNN as text for
 * non-UTF-8 bytes); valid UTF-8 passes unchanged; long fields are cut at a character boundary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char tl_out[8192];

/* Runs one log_emit with stderr sent to a temporary file; tl_out gets what was written. */
static void tl_emit(bool json, const char *peer, const char *client, const char *msg)
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	if (!f || saved < 0) {
		perror("tmpfile");
		exit(1);
	}
	fflush(stderr);
	CHECK(dup2(fileno(f), STDERR_FILENO) >= 0);
	log_set_json(json);
	log_emit(LOG_WARN, "seal", peer, client, "dropped: topic %s", msg);
	fflush(stderr);
	CHECK(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(tl_out, 1, sizeof(tl_out) - 1, f);
	tl_out[n] = '\0';
	fclose(f);
}

/* Exactly one '\n', at the end. */
static bool tl_one_line(void)
{
	size_t n = strlen(tl_out);
	return n > 0 && tl_out[n - 1] == '\n' && strchr(tl_out, '\n') == tl_out + n - 1;
}

static void test_text(void)
{
	tl_emit(false, "127.0.0.1:5", "c\nx", "a\nb\r\x1b[31m\x7f\\ \xc3\xa9 \xff\xc3 \xed\xa0\x80 \xf4\x90\x80\x80");
	CHECK(tl_one_line());
	CHECK(strstr(tl_out, " warn seal [127.0.0.1:5 client=c\\x0ax] dropped: topic "
			     "a\\x0ab\\x0d\\x1b[31m\\x7f\\\\ \xc3\xa9 \\xff\\xc3 \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80\n") != NULL);
	if (!strstr(tl_out, "a\\x0ab"))
		fprintf(stderr, "  got %s", tl_out);
	tl_emit(false, NULL, NULL, "plain/topic");
	CHECK(tl_one_line() && strstr(tl_out, " warn seal dropped: topic plain/topic\n") != NULL);
}

static void test_json(void)
{
	tl_emit(true, "p\"", "c\n", "a\nb\x7f\\\"\xc3\xa9\xff");
	CHECK(tl_one_line());
	CHECK(strstr(tl_out, "\"peer\":\"p\\\"\",\"client\":\"c\\u000a\",\"msg\":\"dropped: topic "
			     "a\\u000ab\\u007f\\\\\\\"\xc3\xa9\\\\xff\"}\n") != NULL);
	if (!strstr(tl_out, "\\u000ab"))
		fprintf(stderr, "  got %s", tl_out);
}

/* A field longer than the line: cut, still one line, no half UTF-8 sequence at the cut. */
static void test_long(void)
{
	char big[1100];
	size_t i;

	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	tl_emit(false, NULL, NULL, big);
	CHECK(tl_one_line());
	CHECK(strstr(tl_out, "\\x") == NULL || strstr(tl_out, "\\xc3\n") != NULL); /* vsnprintf's cut */
	tl_emit(true, NULL, NULL, big);
	CHECK(tl_one_line());
}

int main(void)
{
	log_set_level(LOG_DEBUG);
	test_text();
	test_json();
	test_long();
	CHECK_DONE();
}
