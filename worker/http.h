/*
 * http.h - the worker's small HTTP server (/metrics, /healthz, /readyz), on
 * libmicrohttpd; the HTTP protocol itself is entirely libmicrohttpd's.
 *
 * Serves a fixed table of routes, GET and HEAD only, from one internal
 * polling thread (epoll): an idle or slow client costs a connection slot,
 * not a thread, and never delays other requests.
 * Owns: the libmicrohttpd daemon (listen socket, its thread, connections), a
 * copy of the route table, and the body buffer reused across requests.
 * Does not: TLS, authentication, request bodies, anything a route serves
 * (the handlers render it), or bounding how long a client may trickle one
 * byte per timeout (libmicrohttpd 0.9.75 has only an inactivity timeout;
 * max_connections bounds what such clients can hold).
 */
#ifndef WB_HTTP_H
#define WB_HTTP_H

#include <stddef.h>

#include "err.h"
#include "jbuf.h"

typedef struct http http_t;

/*
 * Renders the answer to a GET or HEAD of one route. body is empty and
 * reused (write with jbuf_*; a HEAD answer is rendered too, for its
 * Content-Length, and its body is not sent); *status is preset to 200 and
 * *content_type to "text/plain; charset=utf-8", and either may be changed
 * (content_type must stay valid until http_destroy(), e.g. a literal).
 * Return WB_OK to send it; any error, a body out of memory or a status
 * outside 100..599 sends "500 Internal Server Error" instead.
 * Thread: the server's thread, one request at a time, so a handler that
 * blocks delays every other request, health probes included: render from
 * snapshots, do no I/O.
 */
typedef wb_err_t (*http_handler_fn)(void *opaque, struct jbuf *body, int *status, const char **content_type);

struct http_route {
	const char *path;        /* exact path ("/metrics"), starting with '/';
	                            copied. A query string does not take part. */
	http_handler_fn handler; /* not NULL */
	void *opaque;            /* passed to handler; borrowed: must outlive
	                            the server (destroy the server first) */
};

struct http_opts {
	const char *bind_address;         /* IPv4 or IPv6 literal; NULL: "0.0.0.0" */
	int port;                         /* 0..65535; 0: any free port (http_port) */
	const struct http_route *routes;  /* nroutes entries, copied */
	size_t nroutes;                   /* 1..HTTP_MAX_ROUTES */
	unsigned max_connections;         /* open connections at once; 0: 32.
	                                     Beyond it new ones are refused. */
	unsigned timeout_s;               /* a connection idle this long (seconds)
	                                     is closed; 0: 10 */
};

/* Most routes one server takes. */
#define HTTP_MAX_ROUTES 32

/*
 * Starts serving opts (borrowed; copied) on its own thread. Returns the
 * server, or NULL with one line in errstr (may be NULL; e.g. "bind
 * 0.0.0.0:9090: Address already in use") when an option is invalid (bad
 * address, port out of range, no routes, a route without handler, a path
 * not starting with '/', a path given twice) or the daemon cannot start.
 * Thread: any; the handlers run on the server's thread from now on.
 */
http_t *http_new(const struct http_opts *opts, char *errstr, size_t errstr_size);

/* The port the server listens on (the one picked when opts.port was 0). */
int http_port(const http_t *h);

/*
 * Stops accepting, closes every connection (a request in a handler finishes
 * first), joins the server's thread and frees everything. Returns promptly
 * even with clients connected. NULL ok. After it returns no handler runs.
 * Thread: any but the server's own (not from a handler).
 */
void http_destroy(http_t *h);

#endif /* WB_HTTP_H */
