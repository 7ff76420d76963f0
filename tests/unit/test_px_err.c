/* test_px_err.c - px_strerror: every code has its own non-empty text, unknown codes are handled. */
#include <string.h>

#include "check.h"
#include "px_err.h"

int main(int argc, char **argv)
{
	int i, j;

	(void)argc;
	(void)argv;
	CHECK(strcmp(px_strerror(PX_OK), "ok") == 0);
	CHECK(strcmp(px_strerror(PX_ERR_AUTH), "authentication failed") == 0);
	CHECK(strcmp(px_strerror(PX_ERR_WEAK_KEY), "weak or small-order public key") == 0);
	for (i = 0; i < PX_ERR__COUNT; i++) {
		const char *s = px_strerror((enum px_err)i);
		if (!s) {
			CHECK(s != NULL);
			continue;
		}
		CHECK(s[0] != '\0');
		/* Not the fallback: every code in the enum has a description of its own. */
		CHECK(strcmp(s, "unknown error") != 0);
		for (j = 0; j < i; j++)
			CHECK(strcmp(s, px_strerror((enum px_err)j)) != 0);
	}
	CHECK(strcmp(px_strerror(PX_ERR__COUNT), "unknown error") == 0);
	CHECK(strcmp(px_strerror((enum px_err)(PX_ERR__COUNT + 1)), "unknown error") == 0);
	CHECK(strcmp(px_strerror((enum px_err)1000), "unknown error") == 0);
	CHECK_DONE();
}
