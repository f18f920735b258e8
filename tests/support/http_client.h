/*
 * http_client.h - a plain-socket HTTP/1.1 client for tests: sends the
 * request text as given (so tests can send what no library would: odd
 * methods, nothing at all) and reads the answer until the server closes.
 * Owns the reply's text until http_reply_fini(). Blocking, one thread per
 * call; no keep-alive, no chunked decoding (the servers under test send
 * Content-Length).
 */
#ifndef WB_TEST_HTTP_CLIENT_H
#define WB_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct http_reply {
	int status;      /* from the status line; 0 when there was none */
	char *head;      /* status line and headers, without the blank line; NUL-terminated */
	char *body;      /* what followed the blank line, NUL-terminated */
	size_t body_len; /* bytes of body */
};

/* A TCP connection to 127.0.0.1:port, or -1. Close it with close(). */
int http_client_connect(int port);

/*
 * Connects to 127.0.0.1:port, sends request (send "Connection: close" in
 * it, so the server closes after answering) and reads until the server
 * closes. 0 with *out filled (free with http_reply_fini), or -1 on a
 * connection error or when the server has not closed within timeout_ms
 * (*out then empty, safe to fini).
 */
int http_client_request(int port, const char *request, int timeout_ms, struct http_reply *out);

/* Sends "method path HTTP/1.1" with Host and "Connection: close"; as
 * http_client_request otherwise. */
int http_client_get(int port, const char *method, const char *path, int timeout_ms, struct http_reply *out);

/* true when r's head carries header name (any case), with its value
 * (leading blanks skipped) copied to value (cap bytes, may be NULL). */
bool http_reply_header(const struct http_reply *r, const char *name, char *value, size_t cap);

/* Frees r's text. NULL ok, and an already finished r too. */
void http_reply_fini(struct http_reply *r);

/* Waits until fd is closed by the peer (read returns 0 or an error);
 * false when it is still open after timeout_ms. Discards data read. */
bool http_client_wait_closed(int fd, int timeout_ms);

#endif /* WB_TEST_HTTP_CLIENT_H */
