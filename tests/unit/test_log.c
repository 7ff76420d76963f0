/* test_log.c - log lines (proxy/base/log.c) with hostile field contents: whatever a topic, client id
 * or peer id carries (newline, carriage return, escape, DEL, backslash, bytes that are not UTF-8),
 * one event stays one line; text escapes as \xNN, JSON per RFC 8259 (plus \xNN as text for
 * non-UTF-8 bytes); valid UTF-8 passes unchanged; long fields are cut at a character boundary.
 * Structured fields (device, client_id, peer_id, epoch, topic, reason) under their names; the
 * journald "<N>" priority prefix only when JOURNAL_STREAM names stderr's device and inode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char tl_out[8192];

/* Runs one log_emit (or log_emitf with fields, when f is set) with stderr sent to a temporary
 * file; tl_out gets what was written. */
static void tl_emit_fields(bool json, const char *peer, const char *client, const struct log_fields *f_,
			   enum log_level level, const char *msg)
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
	if (f_)
		log_emitf(level, "seal", f_, "dropped: topic %s", msg);
	else
		log_emit(level, "seal", peer, client, "dropped: topic %s", msg);
	fflush(stderr);
	CHECK(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(tl_out, 1, sizeof(tl_out) - 1, f);
	tl_out[n] = '\0';
	fclose(f);
}

static void tl_emit(bool json, const char *peer, const char *client, const char *msg)
{
	tl_emit_fields(json, peer, client, NULL, LOG_WARN, msg);
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
	CHECK(strstr(tl_out, "\"device\":\"p\\\"\",\"client_id\":\"c\\u000a\",\"msg\":\"dropped: topic "
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

static void test_fields(void)
{
	const struct log_fields f = {.device = "127.0.0.1:9",
				     .client_id = "c1",
				     .peer_id = "hub\n",
				     .epoch = 42,
				     .has_epoch = true,
				     .topic = "t/1",
				     .reason = "bad_signature"};
	const struct log_fields only = {.peer_id = "b", .epoch = 7, .has_epoch = true};

	tl_emit_fields(true, NULL, NULL, &f, LOG_WARN, "x");
	CHECK(tl_one_line());
	CHECK(strstr(tl_out,
		     ",\"component\":\"seal\",\"device\":\"127.0.0.1:9\",\"client_id\":\"c1\","
		     "\"peer_id\":\"hub\\u000a\",\"epoch\":42,\"topic\":\"t/1\",\"reason\":\"bad_signature\","
		     "\"msg\":\"dropped: topic x\"}\n") != NULL);
	tl_emit_fields(false, NULL, NULL, &f, LOG_WARN, "x");
	CHECK(strstr(tl_out, " warn seal [127.0.0.1:9 client=c1] dropped: topic x\n") != NULL);
	tl_emit_fields(false, NULL, NULL, &only, LOG_WARN, "x");
	CHECK(strstr(tl_out, " warn seal dropped: topic x\n") != NULL);
	tl_emit_fields(true, NULL, NULL, &only, LOG_WARN, "x");
	CHECK(strstr(tl_out, "\"component\":\"seal\",\"peer_id\":\"b\",\"epoch\":7,\"msg\"") != NULL);
}

/* sd-daemon(3) prefixes, and JOURNAL_STREAM's "DEV:INO" matched exactly. */
static void test_journal(void)
{
	struct stat st;
	char env[64];

	CHECK(log_journal_stream_is("8:1234", 8, 1234));
	CHECK(!log_journal_stream_is("8:1234", 8, 1235));
	CHECK(!log_journal_stream_is("9:1234", 8, 1234));
	CHECK(!log_journal_stream_is(NULL, 8, 1234));
	CHECK(!log_journal_stream_is("", 0, 0));
	CHECK(!log_journal_stream_is("8:1234x", 8, 1234));
	CHECK(!log_journal_stream_is("8:", 8, 0));
	CHECK(!log_journal_stream_is(":1234", 0, 1234));
	CHECK(!log_journal_stream_is("-8:1234", (uint64_t)-8, 1234));
	CHECK(!log_journal_stream_is("8:-1234", 8, (uint64_t)-1234));
	CHECK(!log_journal_stream_is("99999999999999999999:1", 0, 1));

	log_set_journal(true);
	tl_emit_fields(false, NULL, NULL, NULL, LOG_ERROR, "e");
	CHECK(strncmp(tl_out, "<3>", 3) == 0 && tl_one_line());
	tl_emit_fields(false, NULL, NULL, NULL, LOG_WARN, "w");
	CHECK(strncmp(tl_out, "<4>", 3) == 0);
	tl_emit_fields(true, NULL, NULL, NULL, LOG_INFO, "i");
	CHECK(strncmp(tl_out, "<6>{\"ts\":", 9) == 0);
	tl_emit_fields(false, NULL, NULL, NULL, LOG_DEBUG, "d");
	CHECK(strncmp(tl_out, "<7>", 3) == 0);
	log_set_journal(false);
	tl_emit(false, NULL, NULL, "w");
	CHECK(tl_out[0] != '<');

	/* log_detect_journal: stderr is what the variable names, or not. */
	CHECK(fstat(STDERR_FILENO, &st) == 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
	log_detect_journal();
	tl_emit(false, NULL, NULL, "w"); /* detected once, at start: stays on while tl_emit redirects */
	CHECK(tl_out[0] == '<');
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
	log_detect_journal();
	tl_emit(false, NULL, NULL, "w");
	CHECK(tl_out[0] != '<');
	CHECK(unsetenv("JOURNAL_STREAM") == 0);
	log_set_journal(false);
}

int main(void)
{
	log_set_level(LOG_DEBUG);
	test_text();
	test_json();
	test_long();
	test_fields();
	test_journal();
	CHECK_DONE();
}
