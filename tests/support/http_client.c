/*
 * http_client.c - plain-socket HTTP client for tests (see http_client.h).
 * Owns one socket per call, closed before returning, and the reply text.
 */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_clock.h"

/* Most bytes of one answer kept: the servers under test answer far less. */
#define HTTP_CLIENT_MAX (16u << 20)

int http_client_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits for fd to be readable until deadline_ms; false on timeout. */
static bool wait_readable(int fd, int64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int64_t left;
	int n;

	for (;;) {
		left = deadline_ms - test_now_ms();
		if (left <= 0)
			return false;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

/* Splits the raw answer (len bytes at raw, owned) into out. */
static void split(char *raw, size_t len, struct http_reply *out)
{
	char *end = strstr(raw, "\r\n\r\n");
	size_t head_len = end ? (size_t)(end - raw) : len;
	const char *body = end ? end + 4 : raw + len;

	out->body_len = len - (size_t)(body - raw);
	out->body = malloc(out->body_len + 1);
	if (out->body) {
		memcpy(out->body, body, out->body_len);
		out->body[out->body_len] = '\0';
	}
	raw[head_len] = '\0';
	out->head = raw;
	if (sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1)
		out->status = 0;
}

int http_client_request(int port, const char *request, int timeout_ms, struct http_reply *out)
{
	int64_t deadline = test_now_ms() + timeout_ms;
	size_t len = 0, cap = 4096, sent = 0, want = strlen(request);
	char *raw = NULL;
	int fd;

	memset(out, 0, sizeof(*out));
	fd = http_client_connect(port);
	if (fd < 0)
		return -1;
	while (sent < want) {
		ssize_t n = send(fd, request + sent, want - sent, MSG_NOSIGNAL);

		if (n <= 0)
			goto fail;
		sent += (size_t)n;
	}
	raw = malloc(cap);
	if (!raw)
		goto fail;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *p = cap < HTTP_CLIENT_MAX ? realloc(raw, cap * 2) : NULL;

			if (!p)
				goto fail;
			raw = p;
			cap *= 2;
		}
		if (!wait_readable(fd, deadline))
			goto fail;
		n = read(fd, raw + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ECONNRESET)
			goto fail;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	raw[len] = '\0';
	split(raw, len, out);
	return 0;

fail:
	free(raw);
	close(fd);
	return -1;
}

int http_client_get(int port, const char *method, const char *path, int timeout_ms, struct http_reply *out)
{
	char req[1024];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method, path,
		 port);
	return http_client_request(port, req, timeout_ms, out);
}

bool http_reply_header(const struct http_reply *r, const char *name, char *value, size_t cap)
{
	size_t nlen = strlen(name);
	const char *line;

	if (!r->head)
		return false;
	for (line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1, *end;

			while (*v == ' ' || *v == '\t')
				v++;
			end = strstr(v, "\r\n");
			if (!end)
				end = v + strlen(v);
			if (value && cap)
				snprintf(value, cap, "%.*s", (int)(end - v), v);
			return true;
		}
	}
	return false;
}

void http_reply_fini(struct http_reply *r)
{
	if (!r)
		return;
	free(r->head);
	free(r->body);
	r->head = NULL;
	r->body = NULL;
	r->body_len = 0;
}

bool http_client_wait_closed(int fd, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;
	char buf[512];

	for (;;) {
		ssize_t n;

		if (!wait_readable(fd, deadline))
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return true;
	}
}
