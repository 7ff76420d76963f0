/* cli_http.c - what `mqseal status` and `mqseal health` need to ask a running node: a URL
 * parser, one blocking HTTP/1.1 GET with a timeout (the commands are short-lived processes, no
 * event loop), and a small reader for the JSON the admin endpoint writes (admin_peers.c). No
 * shell, curl or wget needed: this is what a container's HEALTHCHECK runs. */
#include "cli_internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int cli_url_parse(const char *url, const char *def_path, struct cli_target *t, char *err, size_t errlen)
{
	const char *h, *end, *colon, *slash;
	size_t hl;

	memset(t, 0, sizeof(*t));
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "%s: not an http:// URL (https is not served by the admin endpoint)",
			 url);
		return -1;
	}
	h = url + 7;
	slash = strchr(h, '/');
	end = slash ? slash : h + strlen(h);
	if (*h == '[') { /* RFC 3986 §3.2.2: an IPv6 literal in brackets */
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb) {
			snprintf(err, errlen, "%s: unterminated [IPv6] host", url);
			return -1;
		}
		colon = rb[1] == ':' ? rb + 1 : NULL;
		hl = (size_t)(rb - h - 1);
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
	}
	if (hl == 0 || hl >= sizeof(t->host) ||
	    (colon && ((size_t)(end - colon - 1) == 0 || (size_t)(end - colon - 1) >= sizeof(t->port)))) {
		snprintf(err, errlen, "%s: expected http://HOST[:PORT][/PATH]", url);
		return -1;
	}
	memcpy(t->host, h, hl);
	if (colon)
		memcpy(t->port, colon + 1, (size_t)(end - colon - 1));
	else
		snprintf(t->port, sizeof(t->port), "80");
	snprintf(t->path, sizeof(t->path), "%s", slash && slash[1] ? slash : def_path);
	return 0;
}

static int cli_connect(const struct cli_target *t, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	struct timeval tv = {.tv_sec = CLI_HTTP_TIMEOUT_S};
	int fd = -1, rc = getaddrinfo(t->host, t->port, &hints, &res);

	if (rc != 0) {
		snprintf(err, errlen, "%s:%s: %s", t->host, t->port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* SO_SNDTIMEO bounds connect() too on Linux (socket(7)) */
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
		    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			snprintf(err, errlen,
				 "cannot connect to %s port %s: %s (is the node running, with "
				 "metrics.enabled?)",
				 t->host, t->port, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static int cli_send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until the node closes (it sends "Connection: close"), at most CLI_HTTP_MAX bytes. */
static char *cli_read_all(int fd, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t r;

	while (buf) {
		if (n == cap) {
			if (cap >= CLI_HTTP_MAX || !(nb = realloc(buf, cap * 2 + 1)))
				break;
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (buf)
		buf[n] = '\0';
	*len = n;
	return buf;
}

int cli_http_get(const struct cli_target *t, int *status, char **body, char *err, size_t errlen)
{
	char req[512], *resp = NULL, *sep;
	int fd = cli_connect(t, err, errlen), n, rc = -1;
	size_t len = 0;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", t->path,
		     t->host);
	if (n < 0 || (size_t)n >= sizeof(req) || cli_send_all(fd, req, (size_t)n) != 0) {
		snprintf(err, errlen, "cannot send the request to %s port %s", t->host, t->port);
		goto out;
	}
	resp = cli_read_all(fd, &len);
	if (!resp || sscanf(resp, "HTTP/1.%*[01] %d", status) != 1 || !(sep = strstr(resp, "\r\n\r\n"))) {
		snprintf(err, errlen, "no HTTP answer from %s port %s%s", t->host, t->port,
			 resp ? "" : " (timed out or reset)");
		goto out;
	}
	*body = strdup(sep + 4);
	if (!*body) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(resp);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------------- JSON reader */

static const char *js_ws(const char *p)
{
	while (p && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* After the string at p ('"'), or NULL if unterminated. */
static const char *js_string_end(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p == '"' ? p + 1 : NULL;
}

/* After the value at p, or NULL when malformed. Nesting is bounded by the text's length. */
static const char *js_skip(const char *p)
{
	int depth = 0;

	p = js_ws(p);
	if (!p || !*p)
		return NULL;
	if (*p != '{' && *p != '[' && *p != '"') {
		while (*p && !strchr(",}] \n\r\t", *p))
			p++;
		return p;
	}
	do {
		if (*p == '"') {
			p = js_string_end(p);
			if (!p)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (!*p)
			return NULL;
		p++;
	} while (depth > 0);
	return p;
}

const char *cli_json_member(const char *obj, const char *key)
{
	size_t kl = strlen(key);
	const char *p = js_ws(obj), *ks, *ke;

	if (!p || *p != '{')
		return NULL;
	p = js_ws(p + 1);
	while (p && *p == '"') {
		ks = p;
		ke = js_string_end(p);
		if (!ke)
			return NULL;
		p = js_ws(ke);
		if (*p != ':')
			return NULL;
		p = js_ws(p + 1);
		if ((size_t)(ke - ks - 2) == kl && strncmp(ks + 1, key, kl) == 0)
			return p;
		p = js_ws(js_skip(p));
		if (!p || *p != ',')
			return NULL;
		p = js_ws(p + 1);
	}
	return NULL;
}

const char *cli_json_elem(const char *arr, size_t i)
{
	const char *p = js_ws(arr);

	if (!p || *p != '[')
		return NULL;
	p = js_ws(p + 1);
	if (*p == ']')
		return NULL;
	while (i--) {
		p = js_ws(js_skip(p));
		if (!p || *p != ',')
			return NULL;
		p = js_ws(p + 1);
	}
	return p;
}

void cli_json_text(const char *v, char *out, size_t len)
{
	const char *end;
	size_t n, j = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	if (!v || !(end = js_skip(v)))
		return;
	if (*v == '"') {
		for (v++; v < end - 1 && j + 1 < len; v++) {
			if (*v == '\\' && v + 1 < end - 1)
				v++;
			out[j++] = *v;
		}
		out[j] = '\0';
		return;
	}
	n = (size_t)(end - v);
	if (n >= len)
		n = len - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

uint64_t cli_json_u64(const char *v)
{
	return v && *v >= '0' && *v <= '9' ? strtoull(v, NULL, 10) : 0;
}

int cli_json_true(const char *v)
{
	return v && strncmp(v, "true", 4) == 0;
}
