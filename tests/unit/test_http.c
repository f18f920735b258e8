/*
 * test_http.c - the worker's HTTP server against http.h, over real loopback
 * sockets (tests/support/http_client.h): routes, 404, 405 with Allow, HEAD
 * without a body, handler failures as 500, idle and half-sent clients that
 * must not hold the server, the idle timeout, the connection limit, prompt
 * destruction with clients connected, port 0 and a busy port, and refused
 * options. Each test destroys its server.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "http_client.h"
#include "test_clock.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Generous bound on one loopback request, for slow sanitizer runs. */
#define REQ_TIMEOUT_MS 5000

/* What a test route answers; read by the server thread. */
struct answer {
	const char *body;         /* written with jbuf_cstr */
	int status;               /* 0: leave the preset 200 */
	const char *content_type; /* NULL: leave the preset */
	wb_err_t err;             /* returned */
	atomic_int calls;         /* requests the handler saw */
};

static wb_err_t answer_handler(void *opaque, struct jbuf *body, int *status, const char **content_type)
{
	struct answer *a = opaque;

	atomic_fetch_add(&a->calls, 1);
	cr_assert_eq(body->len, 0, "body starts empty");
	cr_assert_eq(*status, 200);
	cr_assert_str_eq(*content_type, "text/plain; charset=utf-8");
	jbuf_cstr(body, a->body);
	if (a->status)
		*status = a->status;
	if (a->content_type)
		*content_type = a->content_type;
	return a->err;
}

static struct answer metrics_answer = {.body = "wabot_up 1\n", .content_type = PROM_TYPE};
static struct answer health_answer = {.body = "ok\n"};

/* A server on 127.0.0.1, any port, serving /metrics and /healthz. */
static http_t *start(unsigned max_connections, unsigned timeout_s)
{
	const struct http_route routes[] = {
		{"/metrics", answer_handler, &metrics_answer},
		{"/healthz", answer_handler, &health_answer},
	};
	struct http_opts opts = {
		.bind_address = "127.0.0.1",
		.routes = routes,
		.nroutes = 2,
		.max_connections = max_connections,
		.timeout_s = timeout_s,
	};
	char err[256] = "";
	http_t *h = http_new(&opts, err, sizeof(err));

	cr_assert_not_null(h, "http_new: %s", err);
	cr_assert_gt(http_port(h), 0);
	return h;
}

Test(http, route_answers_with_its_body_and_content_type)
{
	http_t *h = start(0, 0);
	struct http_reply r;
	char v[128];

	cr_assert_eq(http_client_get(http_port(h), "GET", "/metrics", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_str_eq(r.body, "wabot_up 1\n");
	cr_assert(http_reply_header(&r, "Content-Type", v, sizeof(v)));
	cr_assert_str_eq(v, PROM_TYPE);
	cr_assert(http_reply_header(&r, "Content-Length", v, sizeof(v)));
	cr_assert_str_eq(v, "11");
	http_reply_fini(&r);

	cr_assert_eq(http_client_get(http_port(h), "GET", "/healthz?verbose=1", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200, "the query string does not take part: %s", r.head);
	cr_assert_str_eq(r.body, "ok\n");
	cr_assert(http_reply_header(&r, "content-type", v, sizeof(v)));
	cr_assert_str_eq(v, "text/plain; charset=utf-8");
	http_reply_fini(&r);
	http_destroy(h);
}

Test(http, unknown_path_is_404)
{
	http_t *h = start(0, 0);
	struct http_reply r;
	int before = atomic_load(&metrics_answer.calls);

	cr_assert_eq(http_client_get(http_port(h), "GET", "/metricsx", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 404, "%s", r.head);
	http_reply_fini(&r);
	cr_assert_eq(http_client_get(http_port(h), "GET", "/", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 404, "%s", r.head);
	http_reply_fini(&r);
	cr_assert_eq(atomic_load(&metrics_answer.calls), before, "no handler ran");
	http_destroy(h);
}

Test(http, methods_other_than_get_and_head_are_405_with_allow)
{
	static const char *const requests[] = {
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
		"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"OPTIONS /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	};
	http_t *h = start(0, 0);
	struct http_reply r;
	char allow[64];
	size_t i;
	int before = atomic_load(&metrics_answer.calls);

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		cr_assert_eq(http_client_request(http_port(h), requests[i], REQ_TIMEOUT_MS, &r), 0, "request %zu", i);
		cr_assert_eq(r.status, 405, "request %zu: %s", i, r.head);
		cr_assert(http_reply_header(&r, "Allow", allow, sizeof(allow)), "request %zu: %s", i, r.head);
		cr_assert_str_eq(allow, "GET, HEAD");
		http_reply_fini(&r);
	}
	cr_assert_eq(atomic_load(&metrics_answer.calls), before, "no handler ran");
	http_destroy(h);
}

Test(http, head_sends_the_headers_without_the_body)
{
	http_t *h = start(0, 0);
	struct http_reply r;
	char v[128];

	cr_assert_eq(http_client_get(http_port(h), "HEAD", "/metrics", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_eq(r.body_len, 0, "body: %s", r.body);
	cr_assert(http_reply_header(&r, "Content-Type", v, sizeof(v)));
	cr_assert_str_eq(v, PROM_TYPE);
	cr_assert(http_reply_header(&r, "Content-Length", v, sizeof(v)), "%s", r.head);
	cr_assert_str_eq(v, "11", "the length the GET body has");
	http_reply_fini(&r);
	http_destroy(h);
}

Test(http, failing_handler_answers_500_and_chosen_status_is_sent)
{
	struct answer a = {.body = "partial", .err = WB_ERR_IO};
	const struct http_route routes[] = {{"/readyz", answer_handler, &a}};
	struct http_opts opts = {.bind_address = "127.0.0.1", .routes = routes, .nroutes = 1};
	http_t *h = http_new(&opts, NULL, 0);
	struct http_reply r;

	cr_assert_not_null(h);
	cr_assert_eq(http_client_get(http_port(h), "GET", "/readyz", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 500, "%s", r.head);
	cr_assert_null(strstr(r.body, "partial"), "nothing of the failed rendering is sent: %s", r.body);
	http_reply_fini(&r);

	a.err = WB_OK;
	a.status = 999;
	cr_assert_eq(http_client_get(http_port(h), "GET", "/readyz", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 500, "a status out of range: %s", r.head);
	http_reply_fini(&r);

	a.status = 503;
	a.body = "redis unreachable\n";
	cr_assert_eq(http_client_get(http_port(h), "GET", "/readyz", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 503, "%s", r.head);
	cr_assert_str_eq(r.body, "redis unreachable\n");
	http_reply_fini(&r);
	cr_assert_eq(atomic_load(&a.calls), 3);
	http_destroy(h);
}

Test(http, body_buffer_starts_empty_for_every_request)
{
	struct answer a = {.body = "a long answer that fills the buffer first\n"};
	const struct http_route routes[] = {{"/x", answer_handler, &a}};
	struct http_opts opts = {.bind_address = "127.0.0.1", .routes = routes, .nroutes = 1};
	http_t *h = http_new(&opts, NULL, 0);
	struct http_reply r;

	cr_assert_not_null(h);
	cr_assert_eq(http_client_get(http_port(h), "GET", "/x", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_str_eq(r.body, a.body);
	http_reply_fini(&r);
	a.body = "";
	cr_assert_eq(http_client_get(http_port(h), "GET", "/x", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_eq(r.body_len, 0, "%s", r.body);
	http_reply_fini(&r);
	http_destroy(h);
}

/* Opens two clients that hang: one sends nothing, one half a request. */
static void hanging_clients(const http_t *h, int *silent, int *half)
{
	static const char partial[] = "GET /metrics HTTP/1.1\r\nHo";

	*silent = http_client_connect(http_port(h));
	*half = http_client_connect(http_port(h));
	cr_assert_geq(*silent, 0);
	cr_assert_geq(*half, 0);
	cr_assert_eq(send(*half, partial, sizeof(partial) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(partial) - 1);
}

Test(http, silent_and_half_sent_clients_do_not_block_other_requests)
{
	http_t *h = start(0, 0);
	struct http_reply r;
	int silent, half;
	int64_t t0;

	hanging_clients(h, &silent, &half);
	t0 = test_now_ms();
	cr_assert_eq(http_client_get(http_port(h), "GET", "/healthz", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200);
	cr_assert_lt(test_now_ms() - t0, 1000, "answered while two clients hang");
	http_reply_fini(&r);
	close(silent);
	close(half);
	http_destroy(h);
}

Test(http, idle_client_is_disconnected_after_the_timeout)
{
	http_t *h = start(0, 1);
	int fd = http_client_connect(http_port(h));
	int64_t t0 = test_now_ms();

	cr_assert_geq(fd, 0);
	cr_assert(http_client_wait_closed(fd, 5000), "still open after 5 s with a 1 s timeout");
	cr_assert_geq(test_now_ms() - t0, 500, "closed too early");
	close(fd);
	http_destroy(h);
}

Test(http, connections_beyond_the_limit_are_refused_until_one_closes)
{
	http_t *h = start(2, 0);
	int a = http_client_connect(http_port(h));
	int b = http_client_connect(http_port(h));
	struct http_reply r;

	cr_assert_geq(a, 0);
	cr_assert_geq(b, 0);
	test_sleep_ms(200); /* let the server accept both */
	cr_assert_neq(http_client_get(http_port(h), "GET", "/healthz", 1000, &r), 0, "a third got: %s", r.head);
	cr_assert_eq(r.status, 0);
	http_reply_fini(&r);
	close(a);
	test_sleep_ms(200);
	cr_assert_eq(http_client_get(http_port(h), "GET", "/healthz", REQ_TIMEOUT_MS, &r), 0);
	cr_assert_eq(r.status, 200);
	http_reply_fini(&r);
	close(b);
	http_destroy(h);
}

Test(http, destroy_with_clients_connected_returns_promptly)
{
	http_t *h = start(0, 30);
	int silent, half;
	int64_t t0;

	hanging_clients(h, &silent, &half);
	test_sleep_ms(100);
	t0 = test_now_ms();
	http_destroy(h);
	cr_assert_lt(test_now_ms() - t0, 1000, "destroy took %lld ms", (long long)(test_now_ms() - t0));
	cr_assert(http_client_wait_closed(silent, 1000), "the connection was closed");
	cr_assert(http_client_wait_closed(half, 1000), "the connection was closed");
	close(silent);
	close(half);
}

Test(http, port_zero_picks_a_free_port_and_a_busy_port_is_reported)
{
	const struct http_route routes[] = {{"/healthz", answer_handler, &health_answer}};
	struct http_opts opts = {.bind_address = "127.0.0.1", .routes = routes, .nroutes = 1};
	http_t *a = http_new(&opts, NULL, 0), *b;
	char err[256] = "";

	cr_assert_not_null(a);
	opts.port = http_port(a);
	b = http_new(&opts, err, sizeof(err));
	cr_assert_null(b);
	cr_assert_not_null(strstr(err, "in use"), "errstr says why: %s", err);
	http_destroy(a);
}

Test(http, bad_options_are_refused_with_a_reason)
{
	const struct http_route good[] = {{"/healthz", answer_handler, &health_answer}};
	const struct http_route no_slash[] = {{"healthz", answer_handler, &health_answer}};
	const struct http_route no_handler[] = {{"/healthz", NULL, NULL}};
	const struct http_route twice[] = {{"/a", answer_handler, &health_answer}, {"/a", answer_handler, NULL}};
	const struct {
		struct http_opts opts;
		const char *says;
	} cases[] = {
		{{.bind_address = "localhost", .routes = good, .nroutes = 1}, "not an IPv4 or IPv6"},
		{{.bind_address = "256.0.0.1", .routes = good, .nroutes = 1}, "not an IPv4 or IPv6"},
		{{.port = -1, .routes = good, .nroutes = 1}, "out of range"},
		{{.port = 65536, .routes = good, .nroutes = 1}, "out of range"},
		{{.routes = NULL, .nroutes = 1}, "routes"},
		{{.routes = good, .nroutes = 0}, "routes"},
		{{.routes = good, .nroutes = HTTP_MAX_ROUTES + 1}, "routes"},
		{{.routes = no_slash, .nroutes = 1}, "starting with '/'"},
		{{.routes = no_handler, .nroutes = 1}, "handler"},
		{{.routes = twice, .nroutes = 2}, "twice"},
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		cr_assert_null(http_new(&cases[i].opts, err, sizeof(err)), "case %zu", i);
		cr_assert_not_null(strstr(err, cases[i].says), "case %zu: %s", i, err);
		cr_assert_null(http_new(&cases[i].opts, NULL, 0), "case %zu without errstr", i);
	}
	http_destroy(NULL);
}
