/*
 * http.c - the worker's HTTP server on libmicrohttpd 0.9.75 (see http.h).
 *
 * libmicrohttpd parses requests, enforces its per-connection memory pool
 * (32 KiB: longer request headers get its own 431/413 answer), the
 * connection limit and the inactivity timeout, and runs everything on one
 * internal thread (MHD_USE_AUTO_INTERNAL_THREAD: epoll on Linux). This file
 * routes: exact path -> handler, 404 for other paths, 405 with "Allow" for
 * methods other than GET and HEAD. A response is answered on the first call
 * of the access handler: no route takes a request body, and libmicrohttpd
 * closes a connection whose body was not read.
 * Owns: the daemon, copies of the route paths, the body buffer (server
 * thread only) and the startup error text (log_mu).
 * libmicrohttpd's own messages become debug log lines: once started, they
 * are nearly all about what a client did ("closed with incomplete
 * request"), which a port scan would turn into a flood of warnings. While
 * starting, the first one is kept for errstr instead: it says why bind
 * failed.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define HTTP_DEFAULT_MAX_CONNECTIONS 32
#define HTTP_DEFAULT_TIMEOUT_S 10
#define HTTP_TEXT "text/plain; charset=utf-8"
/* Longest libmicrohttpd message kept or logged, in bytes. */
#define HTTP_MSG_MAX 256

struct http {
	struct MHD_Daemon *daemon;                   /* owned; set once by http_new */
	struct http_route routes[HTTP_MAX_ROUTES];   /* paths are owned copies; read-only once started */
	size_t nroutes;
	int port;                                    /* bound port; set before http_new returns */
	struct jbuf body;                            /* thread: the server's; reused by every request */
	pthread_mutex_t log_mu;                      /* guards starting and start_err */
	bool starting;                               /* inside MHD_start_daemon: keep messages */
	char start_err[HTTP_MSG_MAX];                /* first message logged while starting, or "" */
};

/* libmicrohttpd's logger (MHD_OPTION_EXTERNAL_LOGGER). Thread: the caller of
 * MHD_start_daemon while starting, the server's thread afterwards. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	http_t *h = cls;
	char msg[HTTP_MSG_MAX];
	size_t n;
	bool kept = false;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	pthread_mutex_lock(&h->log_mu);
	if (h->starting) {
		if (!h->start_err[0])
			memcpy(h->start_err, msg, n + 1);
		kept = true;
	}
	pthread_mutex_unlock(&h->log_mu);
	if (!kept)
		log_at(LOG_DEBUG, "http server", LOG_STR("detail", msg));
}

/* Queues a response with body (copied by libmicrohttpd), its content type
 * and, when allow is not NULL, an Allow header. Thread: the server's. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *content_type,
			     const char *body, size_t len, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES &&
	    (!allow || MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES))
		ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const struct http_route *find_route(const http_t *h, const char *path)
{
	size_t i;

	for (i = 0; i < h->nroutes; i++)
		if (strcmp(h->routes[i].path, path) == 0)
			return &h->routes[i];
	return NULL;
}

/* libmicrohttpd's access handler: called once the request headers are in
 * (the URL without its query string); answers at once. Thread: the server's. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	static const char internal_error[] = "internal server error\n";
	http_t *h = cls;
	const struct http_route *r = find_route(h, url);
	const char *content_type = HTTP_TEXT;
	int status = MHD_HTTP_OK;
	wb_err_t err;

	if (!r)
		return reply(conn, MHD_HTTP_NOT_FOUND, HTTP_TEXT, "not found\n", 10, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, HTTP_TEXT, "method not allowed\n", 19, "GET, HEAD");

	jbuf_reset(&h->body);
	err = r->handler(r->opaque, &h->body, &status, &content_type);
	if (err != WB_OK || h->body.oom || status < 100 || status > 599 || !content_type) {
		log_at(LOG_WARN, "http handler failed", LOG_STR("path", r->path), LOG_ERR("error", err),
		       LOG_INT("status", status), LOG_BOOL("body_oom", h->body.oom));
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, HTTP_TEXT, internal_error,
			     sizeof(internal_error) - 1, NULL);
	}
	return reply(conn, (unsigned)status, content_type, h->body.len ? h->body.p : "", h->body.len, NULL);
}

/* Checks and copies the route table into h; false with errstr set. */
static bool copy_routes(http_t *h, const struct http_opts *opts, char *errstr, size_t errstr_size)
{
	size_t i, j;

	if (!opts->routes || opts->nroutes == 0 || opts->nroutes > HTTP_MAX_ROUTES) {
		wb_errstr(errstr, errstr_size, "http: %zu routes given, 1..%d allowed", opts->routes ? opts->nroutes : 0,
			HTTP_MAX_ROUTES);
		return false;
	}
	for (i = 0; i < opts->nroutes; i++) {
		const struct http_route *r = &opts->routes[i];

		if (!r->path || r->path[0] != '/' || !r->handler) {
			wb_errstr(errstr, errstr_size, "http: route %zu needs a path starting with '/' and a handler", i);
			return false;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(opts->routes[j].path, r->path) == 0) {
				wb_errstr(errstr, errstr_size, "http: route %s given twice", r->path);
				return false;
			}
		}
		h->routes[i] = *r;
		h->routes[i].path = strdup(r->path);
		if (!h->routes[i].path) {
			wb_errstr(errstr, errstr_size, "http: out of memory");
			return false;
		}
		h->nroutes = i + 1;
	}
	return true;
}

http_t *http_new(const struct http_opts *opts, char *errstr, size_t errstr_size)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	const char *bind_address = opts->bind_address ? opts->bind_address : "0.0.0.0";
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	http_t *h;

	memset(&addr, 0, sizeof(addr));
	if (opts->port < 0 || opts->port > 65535) {
		wb_errstr(errstr, errstr_size, "http: port %d out of range 0..65535", opts->port);
		return NULL;
	}
	if (inet_pton(AF_INET, bind_address, &addr.in4.sin_addr) == 1) {
		addr.in4.sin_family = AF_INET;
		addr.in4.sin_port = htons((uint16_t)opts->port);
	} else if (inet_pton(AF_INET6, bind_address, &addr.in6.sin6_addr) == 1) {
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons((uint16_t)opts->port);
		flags |= MHD_USE_DUAL_STACK; /* "::" takes IPv4 clients too */
	} else {
		wb_errstr(errstr, errstr_size, "http: bind address \"%s\" is not an IPv4 or IPv6 address", bind_address);
		return NULL;
	}

	h = calloc(1, sizeof(*h));
	if (!h) {
		wb_errstr(errstr, errstr_size, "http: out of memory");
		return NULL;
	}
	jbuf_init(&h->body);
	pthread_mutex_init(&h->log_mu, NULL);
	if (!copy_routes(h, opts, errstr, errstr_size))
		goto out_destroy;

	h->starting = true; /* no other thread yet */
	/* the logger must come first: libmicrohttpd 0.9.75 prints the messages
	 * of the options before it to stderr itself */
	h->daemon = MHD_start_daemon(
		flags, (uint16_t)opts->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
		MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_CONNECTION_LIMIT,
		opts->max_connections ? opts->max_connections : (unsigned)HTTP_DEFAULT_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s ? opts->timeout_s : (unsigned)HTTP_DEFAULT_TIMEOUT_S,
		MHD_OPTION_END);
	pthread_mutex_lock(&h->log_mu);
	h->starting = false;
	pthread_mutex_unlock(&h->log_mu);
	if (!h->daemon) {
		wb_errstr(errstr, errstr_size, "http %s:%d: %s", bind_address, opts->port,
			h->start_err[0] ? h->start_err : "libmicrohttpd could not start");
		goto out_destroy;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		wb_errstr(errstr, errstr_size, "http %s:%d: cannot read the bound port", bind_address, opts->port);
		goto out_destroy;
	}
	h->port = info->port;
	return h;

out_destroy:
	http_destroy(h);
	return NULL;
}

int http_port(const http_t *h)
{
	return h->port;
}

void http_destroy(http_t *h)
{
	size_t i;

	if (!h)
		return;
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	for (i = 0; i < h->nroutes; i++)
		free((char *)h->routes[i].path);
	jbuf_fini(&h->body);
	pthread_mutex_destroy(&h->log_mu);
	free(h);
}
