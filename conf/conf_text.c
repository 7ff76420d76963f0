/* conf_text.c - the text rules of option values: node ids, MQTT topic names and filters, UTF-8,
 * host names, user names, peer public keys; loopback and wildcard addresses; and the quoting of
 * values echoed in messages. Each rule returns NULL when the text is fine, else a phrase that
 * follows the quoted value ("\"a b\" is not a valid node id (...)"). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf_internal.h"

/* MQTT 5 §1.5.4: a UTF-8 Encoded String is at most 65535 bytes. */
#define CONF_MQTT_STRING_MAX 65535

/* An Ed25519 public key is 32 bytes (RFC 8032 §5.1.5); base64 (RFC 4648 §4) of 32 bytes is 43
 * characters and one '=' of padding. */
#define CONF_KEY_PREFIX	 "ed25519:"
#define CONF_KEY_B64_LEN 44

const char *conf_quote_(const char *s, char buf[static CONF_QUOTE_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	buf[o++] = '"';
	for (; *s && o < CONF_QUOTE_MAX - 9; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	if (*s) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

bool conf_node_id_valid(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-';
		if (!ok || n == 64)
			return false;
	}
	return n >= 1;
}

const char *conf_rule_node_id_(const char *v)
{
	return conf_node_id_valid(v) ? NULL : "is not a valid node id (1 to 64 of A-Z a-z 0-9 . _ -)";
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlong forms, no surrogates,
 * nothing above U+10FFFF) whose code point is not a control character, or 0. MQTT 5 §1.5.4 lets a
 * receiver reject U+0000, U+0001..U+001F and U+007F..U+009F; we reject them in configuration. */
static size_t conf_utf8_char(const unsigned char *s)
{
	uint32_t cp, min;
	size_t n, i;

	if (s[0] < 0x80)
		return (s[0] >= 0x20 && s[0] != 0x7f) ? 1 : 0;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2, cp = s[0] & 0x1fu, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, cp = s[0] & 0x0fu, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, cp = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

static bool conf_utf8_valid(const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n;

	while (*s) {
		n = conf_utf8_char(s);
		if (n == 0)
			return false;
		s += n;
	}
	return true;
}

const char *conf_rule_utf8_(const char *v)
{
	return conf_utf8_valid(v) ? NULL : "is not UTF-8 text without control characters (MQTT 5 §1.5.4)";
}

/* A topic name we publish to (MQTT 5 §4.7): at most 64 bytes, so that prefix + "/" + node id
 * stays well inside any broker's limits. */
const char *conf_rule_topic_(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64)
		return "is not a valid topic: it must be 1 to 64 bytes long";
	if (strpbrk(v, "+#"))
		return "is not a valid topic: '+' and '#' are wildcards, not allowed in a topic name (MQTT 5 "
		       "§4.7.1)";
	if (v[0] == '$')
		return "is not a valid topic: topics starting with '$' belong to the broker (MQTT 5 §4.7.2)";
	if (v[0] == '/' || v[n - 1] == '/' || strstr(v, "//"))
		return "is not a valid topic: it must not start or end with '/' or have an empty level";
	return conf_utf8_valid(v) ? NULL : "is not a valid topic: not UTF-8 text without control characters";
}

/* A topic prefix of topic_prefix_map: 0 to 1024 bytes of a topic name (no wildcards, not a
 * '$' topic); any level structure, as broker mount points and bridge prefixes are plain strings. */
const char *conf_rule_prefix_(const char *v)
{
	if (strlen(v) > 1024)
		return "is not a valid topic prefix: at most 1024 bytes";
	if (strpbrk(v, "+#"))
		return "is not a valid topic prefix: '+' and '#' are wildcards, not allowed in a topic name "
		       "(MQTT 5 §4.7.1)";
	if (v[0] == '$')
		return "is not a valid topic prefix: topics starting with '$' belong to the broker (MQTT 5 "
		       "§4.7.2)";
	return conf_utf8_valid(v) ? NULL : "is not a valid topic prefix: not UTF-8 text without control characters";
}

/* A topic filter (MQTT 5 §4.7.1): '#' only as the whole last level, '+' only as a whole level;
 * 1 to 65535 bytes (§4.7.3, §1.5.4). */
const char *conf_rule_filter_(const char *v)
{
	size_t n = strlen(v), i;

	if (n == 0 || n > CONF_MQTT_STRING_MAX)
		return "is not a valid topic filter: it must be 1 to 65535 bytes long (MQTT 5 §4.7.3)";
	for (i = 0; i < n; i++) {
		bool starts = i == 0 || v[i - 1] == '/', ends = i + 1 == n || v[i + 1] == '/';
		if (v[i] == '#' && !(starts && i + 1 == n))
			return "is not a valid topic filter: '#' must be the whole last level (MQTT 5 "
			       "§4.7.1.2)";
		if (v[i] == '+' && !(starts && ends))
			return "is not a valid topic filter: '+' must be a whole level (MQTT 5 §4.7.1.3)";
	}
	return conf_utf8_valid(v) ? NULL
				  : "is not a valid topic filter: not UTF-8 text without control characters";
}

/* A host name (RFC 1123 §2.1 letters, digits, '-', '.'), an IPv4 address, or an IPv6 address
 * (':', and '%' for a zone); '_' is tolerated as some internal DNS names use it. */
const char *conf_rule_host_(const char *v)
{
	size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:%");
	return v[n] == '\0' ? NULL : "is not a host name or IP address";
}

/* A system user name as useradd accepts it: letters, digits, '.', '_', '-', not starting with
 * '-' (which getpwnam callers could read as an option). */
const char *conf_rule_user_(const char *v)
{
	size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
	return v[n] == '\0' && v[0] != '-' ? NULL : "is not a valid user name (letters, digits, . _ -)";
}

static bool conf_is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* Syntax only; proxy/ decodes the key. The last base64 character carries 2 unused bits that must
 * be zero (RFC 4648 §3.5): otherwise two texts would name the same key and the uniqueness check
 * across peers could be bypassed. */
const char *conf_rule_public_key_(const char *v)
{
	const size_t plen = sizeof(CONF_KEY_PREFIX) - 1;
	const char *b = v + plen;
	size_t i;

	if (strncmp(v, CONF_KEY_PREFIX, plen) != 0 || strlen(b) != CONF_KEY_B64_LEN)
		goto bad;
	for (i = 0; i < CONF_KEY_B64_LEN - 1; i++)
		if (!conf_is_b64(b[i]))
			goto bad;
	if (b[CONF_KEY_B64_LEN - 1] != '=' || !strchr("AEIMQUYcgkosw048", b[CONF_KEY_B64_LEN - 2]))
		goto bad;
	return NULL;
bad:
	return "is not \"ed25519:\" followed by 44 base64 characters (a 32-byte key, canonical padding)";
}

/* 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 and ::ffff:127.0.0.0/104 (RFC 4291 §2.5.3, §2.5.5.2), and
 * the name "localhost" (RFC 6761 §6.3). */
bool conf_host_loopback_(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

/* The any-address, which overlaps every address of the host: 0.0.0.0 and ::. */
bool conf_host_wildcard_(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return a4.s_addr == htonl(INADDR_ANY);
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_UNSPECIFIED(&a6);
	return false;
}
