/*
 * redis_conn.c - one Redis connection: non-blocking TCP socket, optional TLS
 * over memory BIOs, hiredis' redisReader as the protocol parser; commands
 * are framed here (redis_cmdbuf, see redis_cmdbuf_append for why).
 *
 * Design:
 *   - Every wait is poll(2) against one absolute deadline (monotonic ms): the
 *     connect deadline for connect + handshake + AUTH, the command deadline
 *     for a whole pipeline. Nothing blocks in the kernel beyond it.
 *   - TLS: OpenSSL reads and writes two memory BIOs; we move the bytes
 *     between them and the socket with recv/send(MSG_NOSIGNAL). Rejected
 *     alternative: SSL_set_fd, where OpenSSL calls write(2) itself and a
 *     peer reset raises SIGPIPE in a process that may not ignore it, and
 *     where plain and TLS would need separate wait loops. With memory BIOs,
 *     SSL_ERROR_WANT_READ means "poll the socket for input, feed rbio";
 *     WANT_WRITE cannot happen (the write BIO grows; we drain it in chunks).
 *   - A pipeline writes all commands, then reads the replies. Redis buffers
 *     replies for a client that is still writing, so write-then-read cannot
 *     deadlock; replies are small for writes and bounded for reads.
 *   - Bounds: a reply may not grow past max_reply_bytes while incomplete and
 *     an array may not have more than REDIS_CONN_MAX_ELEMENTS elements (a
 *     wrapper around the reader's createArray), so a broken or hostile peer
 *     cannot make us allocate without limit.
 * Owns: fd, SSL (and its BIOs), reader, a 16 KiB scratch buffer. One thread
 * at a time. Does not: reconnect, retry, log (callers decide what to say).
 */
#include "redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Bytes moved per recv and per TLS record batch. */
#define RC_IO_CHUNK 16384
/* Bytes of a plain recv given to the reader at a time: hiredis' reader
 * memmoves its unread rest each time it has consumed 1 KiB, so a whole
 * 16 KiB recv of short replies moved ~8 bytes per byte received; slices of
 * this size keep that rest under one reply. */
#define RC_FEED_SLICE 2048
/* Drain the TLS write BIO to the socket once it holds this much. */
#define RC_TLS_FLUSH_AT 65536

struct redis_conn {
	int fd;                  /* non-blocking, close-on-exec socket */
	SSL *ssl;                /* NULL for plain; owns rbio/wbio */
	BIO *rbio;               /* socket -> OpenSSL (borrowed from ssl) */
	BIO *wbio;               /* OpenSSL -> socket (borrowed from ssl) */
	redisReader *reader;     /* owned; fn points at fns below */
	redisReplyObjectFunctions fns; /* reader's functions, createArray bounded */
	void *(*orig_create_array)(const redisReadTask *, int);
	bool limit_hit;          /* createArray refused an oversized array */
	bool broken;             /* no further I/O: destroy and reconnect */
	size_t max_reply;        /* bytes an incomplete reply may occupy */
	int command_timeout_ms;  /* per pipeline */
	char peer[300];          /* "host:port" or "[v6]:port" */
	char io[RC_IO_CHUNK];    /* recv / SSL_read / BIO_read scratch */
	size_t io_pos, io_len;   /* plain: io[io_pos..io_len) received, not yet fed */
};

__attribute__((format(printf, 3, 4))) static void rc_err(char *errstr, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!errstr || n == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, n, fmt, ap);
	va_end(ap);
}

static int64_t rc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd has events or the deadline passes. WB_OK, WB_ERR_TIMEOUT,
 * or WB_ERR_IO (poll failed). POLLERR/POLLHUP count as ready: the following
 * send/recv reports the real error. */
static wb_err_t rc_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int64_t left = deadline - rc_now_ms();
		int rc;

		if (left <= 0)
			return WB_ERR_TIMEOUT;
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return WB_OK;
		if (rc < 0 && errno != EINTR)
			return WB_ERR_IO;
	}
}

static wb_err_t rc_fail(struct redis_conn *c, wb_err_t err)
{
	c->broken = true;
	return err;
}

/* Sends all len bytes to the socket before the deadline. */
static wb_err_t rc_send_all(struct redis_conn *c, const char *p, size_t len, int64_t deadline,
			    char *errstr, size_t n)
{
	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			wb_err_t err = rc_wait(c->fd, POLLOUT, deadline);

			if (err == WB_ERR_TIMEOUT) {
				rc_err(errstr, n, "redis %s: timed out sending", c->peer);
				return rc_fail(c, err);
			}
			if (err != WB_OK) {
				rc_err(errstr, n, "redis %s: poll: %s", c->peer, strerror(errno));
				return rc_fail(c, err);
			}
			continue;
		}
		rc_err(errstr, n, "redis %s: send: %s", c->peer, strerror(errno));
		return rc_fail(c, WB_ERR_IO);
	}
	return WB_OK;
}

/* Receives at least one byte into c->io before the deadline. *got = bytes. */
static wb_err_t rc_recv_some(struct redis_conn *c, size_t *got, int64_t deadline, char *errstr,
			     size_t n)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->io, sizeof c->io, 0);

		if (r > 0) {
			*got = (size_t)r;
			return WB_OK;
		}
		if (r == 0) {
			rc_err(errstr, n, "redis %s: connection closed by the server", c->peer);
			return rc_fail(c, WB_ERR_IO);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			wb_err_t err = rc_wait(c->fd, POLLIN, deadline);

			if (err == WB_ERR_TIMEOUT) {
				rc_err(errstr, n, "redis %s: no reply within %d ms", c->peer,
				       c->command_timeout_ms);
				return rc_fail(c, err);
			}
			if (err != WB_OK) {
				rc_err(errstr, n, "redis %s: poll: %s", c->peer, strerror(errno));
				return rc_fail(c, err);
			}
			continue;
		}
		rc_err(errstr, n, "redis %s: recv: %s", c->peer, strerror(errno));
		return rc_fail(c, WB_ERR_IO);
	}
}

/* The first queued OpenSSL error as text, or fallback. Clears the queue. */
static const char *rc_ssl_reason(char *buf, size_t n, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e == 0) {
		snprintf(buf, n, "%s", fallback);
	} else {
		ERR_error_string_n(e, buf, n);
	}
	ERR_clear_error();
	return buf;
}

/* Moves everything OpenSSL has produced to the socket. */
static wb_err_t rc_tls_flush(struct redis_conn *c, int64_t deadline, char *errstr, size_t n)
{
	while (BIO_ctrl_pending(c->wbio) > 0) {
		char out[RC_IO_CHUNK];
		int r = BIO_read(c->wbio, out, (int)sizeof out);
		wb_err_t err;

		if (r <= 0)
			break;
		err = rc_send_all(c, out, (size_t)r, deadline, errstr, n);
		if (err != WB_OK)
			return err;
	}
	return WB_OK;
}

/* Writes application bytes (plain or through TLS) before the deadline. */
static wb_err_t rc_write(struct redis_conn *c, const char *p, size_t len, int64_t deadline,
			 char *errstr, size_t n)
{
	if (!c->ssl)
		return rc_send_all(c, p, len, deadline, errstr, n);
	while (len > 0) {
		int chunk = len > RC_IO_CHUNK ? RC_IO_CHUNK : (int)len;
		int w;

		ERR_clear_error();
		w = SSL_write(c->ssl, p, chunk);
		if (w <= 0) {
			char why[160];

			rc_err(errstr, n, "redis %s: TLS write: %s", c->peer,
			       rc_ssl_reason(why, sizeof why, "failed"));
			return rc_fail(c, WB_ERR_TLS);
		}
		p += w;
		len -= (size_t)w;
		if (BIO_ctrl_pending(c->wbio) >= RC_TLS_FLUSH_AT || len == 0) {
			wb_err_t err = rc_tls_flush(c, deadline, errstr, n);

			if (err != WB_OK)
				return err;
		}
	}
	return WB_OK;
}

/* Reads at least one byte of application data and feeds it to the reader. */
static wb_err_t rc_read_some(struct redis_conn *c, int64_t deadline, char *errstr, size_t n)
{
	size_t got;
	wb_err_t err;

	if (!c->ssl) {
		if (c->io_pos == c->io_len) {
			err = rc_recv_some(c, &got, deadline, errstr, n);
			if (err != WB_OK)
				return err;
			c->io_pos = 0;
			c->io_len = got;
		}
		got = c->io_len - c->io_pos < RC_FEED_SLICE ? c->io_len - c->io_pos : RC_FEED_SLICE;
		if (redisReaderFeed(c->reader, c->io + c->io_pos, got) != REDIS_OK) {
			rc_err(errstr, n, "redis %s: out of memory buffering a reply", c->peer);
			return rc_fail(c, WB_ERR_NOMEM);
		}
		c->io_pos += got;
		return WB_OK;
	}
	for (;;) {
		int r, e;

		ERR_clear_error();
		r = SSL_read(c->ssl, c->io, (int)sizeof c->io);
		if (r > 0) {
			if (redisReaderFeed(c->reader, c->io, (size_t)r) != REDIS_OK) {
				rc_err(errstr, n, "redis %s: out of memory buffering a reply", c->peer);
				return rc_fail(c, WB_ERR_NOMEM);
			}
			/* A key update or similar may have queued a record. */
			return rc_tls_flush(c, deadline, errstr, n);
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			err = rc_tls_flush(c, deadline, errstr, n);
			if (err != WB_OK)
				return err;
			err = rc_recv_some(c, &got, deadline, errstr, n);
			if (err != WB_OK)
				return err;
			if (BIO_write(c->rbio, c->io, (int)got) != (int)got) {
				rc_err(errstr, n, "redis %s: out of memory in TLS buffer", c->peer);
				return rc_fail(c, WB_ERR_NOMEM);
			}
			continue;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			rc_err(errstr, n, "redis %s: connection closed by the server (TLS)", c->peer);
			return rc_fail(c, WB_ERR_IO);
		} else {
			char why[160];

			rc_err(errstr, n, "redis %s: TLS read: %s", c->peer,
			       rc_ssl_reason(why, sizeof why, "failed"));
			return rc_fail(c, WB_ERR_TLS);
		}
	}
}

static void rc_free_replies(redisReply **replies, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

/* The pipeline against an explicit deadline (connect reuses it). */
static wb_err_t rc_pipeline_until(struct redis_conn *c, const char *cmds, size_t len, size_t n_replies,
				  redisReply **replies, int64_t deadline, char *errstr, size_t n)
{
	wb_err_t err;
	size_t i;

	for (i = 0; i < n_replies; i++)
		replies[i] = NULL;
	if (c->broken) {
		rc_err(errstr, n, "redis %s: connection is broken", c->peer);
		return WB_ERR_IO;
	}
	if (n_replies == 0)
		return WB_OK;
	err = rc_write(c, cmds, len, deadline, errstr, n);
	if (err != WB_OK)
		return err;
	for (i = 0; i < n_replies;) {
		void *reply = NULL;

		if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
			if (c->limit_hit)
				rc_err(errstr, n, "redis %s: array reply over %d elements", c->peer,
				       REDIS_CONN_MAX_ELEMENTS);
			else
				rc_err(errstr, n, "redis %s: bad reply: %s", c->peer, c->reader->errstr);
			err = WB_ERR_PROTOCOL;
			goto out_fail;
		}
		if (reply) {
			replies[i++] = reply;
			continue;
		}
		if (c->reader->len - c->reader->pos > c->max_reply) {
			rc_err(errstr, n, "redis %s: reply larger than %zu bytes", c->peer, c->max_reply);
			err = WB_ERR_PROTOCOL;
			goto out_fail;
		}
		err = rc_read_some(c, deadline, errstr, n);
		if (err != WB_OK)
			goto out_fail;
	}
	return WB_OK;

out_fail:
	rc_free_replies(replies, i);
	return rc_fail(c, err);
}

wb_err_t redis_conn_pipeline(redis_conn_t *c, const char *cmds, size_t len, size_t n_replies,
			     redisReply **replies, char *errstr, size_t errstr_size)
{
	int64_t deadline = rc_now_ms() + c->command_timeout_ms;

	return rc_pipeline_until(c, cmds, len, n_replies, replies, deadline, errstr, errstr_size);
}

static void *rc_create_array(const redisReadTask *task, int elements)
{
	struct redis_conn *c = task->privdata;

	if (elements > REDIS_CONN_MAX_ELEMENTS) {
		c->limit_hit = true;
		return NULL; /* the reader turns this into an error */
	}
	return c->orig_create_array(task, elements);
}

/* Sets the socket options we want; failures only cost performance. */
static void rc_tune_socket(int fd)
{
	int one = 1, idle = 60, intvl = 15, cnt = 4;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* Tries each address until one connects. Sets c->fd on WB_OK. */
static wb_err_t rc_tcp_connect(struct redis_conn *c, const struct redis_conn_opts *o, int64_t deadline,
			       char *errstr, size_t n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char port[16];
	int gai, last_errno = 0;
	wb_err_t err = WB_ERR_IO;

	snprintf(port, sizeof port, "%d", o->port);
	gai = getaddrinfo(o->host, port, &hints, &res);
	if (gai != 0) {
		rc_err(errstr, n, "redis %s: cannot resolve host: %s", c->peer, gai_strerror(gai));
		return WB_ERR_IO;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		int soerr = 0;
		socklen_t slen = sizeof soerr;

		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto connected;
		if (errno != EINPROGRESS) {
			last_errno = errno;
			close(fd);
			continue;
		}
		err = rc_wait(fd, POLLOUT, deadline);
		if (err == WB_ERR_TIMEOUT) {
			close(fd);
			break;
		}
		if (err != WB_OK || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0) {
			last_errno = errno;
			close(fd);
			err = WB_ERR_IO;
			continue;
		}
		if (soerr != 0) {
			last_errno = soerr;
			close(fd);
			err = WB_ERR_IO;
			continue;
		}
connected:
		rc_tune_socket(fd);
		c->fd = fd;
		freeaddrinfo(res);
		return WB_OK;
	}
	freeaddrinfo(res);
	if (err == WB_ERR_TIMEOUT) {
		rc_err(errstr, n, "redis %s: connect timed out after %d ms", c->peer,
		       o->connect_timeout_ms);
		return WB_ERR_TIMEOUT;
	}
	rc_err(errstr, n, "redis %s: connect: %s", c->peer,
	       last_errno ? strerror(last_errno) : "no usable address");
	return WB_ERR_IO;
}

static bool rc_is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Sets up SSL for the connection and runs the handshake. */
static wb_err_t rc_tls_handshake(struct redis_conn *c, const struct redis_conn_opts *o, SSL_CTX *ctx,
				 int64_t deadline, char *errstr, size_t n)
{
	const char *name = o->tls_server_name && o->tls_server_name[0] ? o->tls_server_name : o->host;
	bool verify = (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) != 0;
	bool ip = rc_is_ip_literal(name);
	char why[200];

	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (!c->ssl) {
		rc_err(errstr, n, "redis %s: SSL_new: %s", c->peer, rc_ssl_reason(why, sizeof why, "failed"));
		return WB_ERR_NOMEM;
	}
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		rc_err(errstr, n, "redis %s: out of memory for TLS buffers", c->peer);
		return WB_ERR_NOMEM;
	}
	/* An empty read BIO means "no data yet", not end of stream. */
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	/* SNI carries host names only (RFC 6066 forbids IP literals). */
	if (!ip && !SSL_set_tlsext_host_name(c->ssl, name)) {
		rc_err(errstr, n, "redis %s: cannot set TLS server name", c->peer);
		return WB_ERR_TLS;
	}
	if (verify) {
		int ok;

		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (ip)
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name);
		else
			ok = SSL_set1_host(c->ssl, name);
		if (!ok) {
			rc_err(errstr, n, "redis %s: cannot set the name to verify", c->peer);
			return WB_ERR_TLS;
		}
	}
	for (;;) {
		int r, e;
		wb_err_t err;
		size_t got;
		long vr;

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		/* Send what the handshake produced, even on failure (an alert). */
		err = rc_tls_flush(c, deadline, r == 1 ? errstr : NULL, r == 1 ? n : 0);
		if (r == 1)
			return err;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ && err == WB_OK) {
			err = rc_recv_some(c, &got, deadline, NULL, 0);
			if (err == WB_ERR_TIMEOUT) {
				rc_err(errstr, n,
				       "redis %s: TLS handshake timed out after %d ms (a plain, non-TLS port?)",
				       c->peer, o->connect_timeout_ms);
				return err;
			}
			if (err != WB_OK) {
				rc_err(errstr, n,
				       "redis %s: connection closed during the TLS handshake "
				       "(is it a TLS port?)",
				       c->peer);
				return err;
			}
			if (BIO_write(c->rbio, c->io, (int)got) != (int)got) {
				rc_err(errstr, n, "redis %s: out of memory in TLS buffer", c->peer);
				return WB_ERR_NOMEM;
			}
			continue;
		}
		vr = SSL_get_verify_result(c->ssl);
		if (verify && vr != X509_V_OK) {
			ERR_clear_error();
			rc_err(errstr, n, "redis %s: TLS certificate verify failed: %s (name checked: %s)",
			       c->peer, X509_verify_cert_error_string(vr), name);
			return WB_ERR_TLS;
		}
		rc_err(errstr, n, "redis %s: TLS handshake failed: %s", c->peer,
		       rc_ssl_reason(why, sizeof why, err != WB_OK ? "connection lost" : "failed"));
		return WB_ERR_TLS;
	}
}

/* Copies at most 120 bytes of a server error into buf, leaving out the
 * password should a server ever echo it. */
static const char *rc_server_msg(const redisReply *r, const char *password, char *buf, size_t n)
{
	size_t len = r->len < 120 ? r->len : 120;

	snprintf(buf, n, "%.*s", (int)len, r->str ? r->str : "");
	if (password && password[0] && strstr(buf, password))
		snprintf(buf, n, "(server message withheld: it contains the password)");
	return buf;
}

/* AUTH, SELECT, PING in one round trip; classifies the refusals. */
static wb_err_t rc_hello(struct redis_conn *c, const struct redis_conn_opts *o, int64_t deadline,
			 char *errstr, size_t n)
{
	struct redis_cmdbuf b;
	redisReply *rep[3] = {NULL, NULL, NULL};
	size_t k = 0, i_auth = SIZE_MAX, i_select = SIZE_MAX, i_ping;
	const char *pw = o->password ? o->password : "";
	bool user = o->user && o->user[0];
	char dbs[16], msg[160];
	wb_err_t err;

	redis_cmdbuf_init(&b);
	if (user || pw[0]) {
		const char *argv[3] = {"AUTH", user ? o->user : pw, pw};
		size_t argl[3] = {4, strlen(argv[1]), strlen(pw)};

		err = redis_cmdbuf_append(&b, user ? 3 : 2, argv, argl);
		if (err != WB_OK)
			goto out_nomem;
		i_auth = k++;
	}
	if (o->db != 0) {
		const char *argv[2] = {"SELECT", dbs};
		size_t argl[2] = {6, 0};

		argl[1] = (size_t)snprintf(dbs, sizeof dbs, "%d", o->db);
		err = redis_cmdbuf_append(&b, 2, argv, argl);
		if (err != WB_OK)
			goto out_nomem;
		i_select = k++;
	}
	{
		const char *argv[1] = {"PING"};
		size_t argl[1] = {4};

		err = redis_cmdbuf_append(&b, 1, argv, argl);
		if (err != WB_OK)
			goto out_nomem;
		i_ping = k++;
	}
	err = rc_pipeline_until(c, b.buf, b.len, k, rep, deadline, errstr, n);
	redis_cmdbuf_fini(&b);
	if (err == WB_ERR_TIMEOUT) {
		rc_err(errstr, n, "redis %s: no answer to AUTH/PING within %d ms", c->peer,
		       o->connect_timeout_ms);
		return err;
	}
	if (err == WB_ERR_IO && !c->ssl && errstr && n) {
		/* A TLS-only server drops a client that speaks plain RESP. */
		size_t len = strlen(errstr);

		snprintf(errstr + len, n - len, " (a TLS port? use rediss://)");
	}
	if (err != WB_OK)
		return err;
	if (i_auth != SIZE_MAX && rep[i_auth]->type == REDIS_REPLY_ERROR) {
		rc_err(errstr, n, "redis %s: authentication failed for user '%s': %s", c->peer,
		       user ? o->user : "default", rc_server_msg(rep[i_auth], pw, msg, sizeof msg));
		err = WB_ERR_AUTH;
	} else if (rep[i_ping]->type == REDIS_REPLY_ERROR &&
		   strncmp(rep[i_ping]->str, "NOAUTH", 6) == 0) {
		rc_err(errstr, n, "redis %s: authentication required but no password configured",
		       c->peer);
		err = WB_ERR_AUTH;
	} else if (i_select != SIZE_MAX && rep[i_select]->type == REDIS_REPLY_ERROR) {
		rc_err(errstr, n, "redis %s: SELECT %d refused: %s", c->peer, o->db,
		       rc_server_msg(rep[i_select], pw, msg, sizeof msg));
		err = WB_ERR_CONFIG;
	} else if (rep[i_ping]->type != REDIS_REPLY_STATUS) {
		rc_err(errstr, n, "redis %s: unexpected answer to PING: %s", c->peer,
		       rc_server_msg(rep[i_ping], pw, msg, sizeof msg));
		err = WB_ERR_PROTOCOL;
	}
	rc_free_replies(rep, k);
	return err;

out_nomem:
	redis_cmdbuf_fini(&b);
	rc_err(errstr, n, "redis %s: out of memory", c->peer);
	return WB_ERR_NOMEM;
}

wb_err_t redis_conn_connect(const struct redis_conn_opts *opts, SSL_CTX *tls_ctx,
			    redis_conn_t **out, char *errstr, size_t errstr_size)
{
	struct redis_conn *c;
	int64_t deadline;
	wb_err_t err;

	if (!opts || !opts->host || !opts->host[0] || opts->port < 1 || opts->port > 65535 ||
	    (opts->tls && !tls_ctx) || opts->connect_timeout_ms <= 0 || opts->command_timeout_ms <= 0) {
		rc_err(errstr, errstr_size, "redis: invalid connection options");
		return WB_ERR_INVALID;
	}
	deadline = rc_now_ms() + opts->connect_timeout_ms;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_nomem;
	c->fd = -1;
	c->max_reply = opts->max_reply_bytes ? opts->max_reply_bytes : REDIS_CONN_DEFAULT_MAX_REPLY;
	c->command_timeout_ms = opts->command_timeout_ms;
	if (strchr(opts->host, ':'))
		snprintf(c->peer, sizeof c->peer, "[%.250s]:%d", opts->host, opts->port);
	else
		snprintf(c->peer, sizeof c->peer, "%.250s:%d", opts->host, opts->port);
	c->reader = redisReaderCreate();
	if (!c->reader)
		goto out_nomem;
	c->fns = *c->reader->fn;
	c->orig_create_array = c->fns.createArray;
	c->fns.createArray = rc_create_array;
	c->reader->fn = &c->fns;
	c->reader->privdata = c;

	err = rc_tcp_connect(c, opts, deadline, errstr, errstr_size);
	if (err == WB_OK && opts->tls)
		err = rc_tls_handshake(c, opts, tls_ctx, deadline, errstr, errstr_size);
	if (err == WB_OK)
		err = rc_hello(c, opts, deadline, errstr, errstr_size);
	if (err != WB_OK) {
		redis_conn_destroy(c);
		return err;
	}
	*out = c;
	return WB_OK;

out_nomem:
	redis_conn_destroy(c);
	rc_err(errstr, errstr_size, "redis: out of memory");
	return WB_ERR_NOMEM;
}

void redis_conn_destroy(redis_conn_t *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_free(c->ssl); /* frees rbio and wbio */
	else {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->reader)
		redisReaderFree(c->reader);
	free(c);
}

bool redis_conn_is_broken(redis_conn_t *c)
{
	struct pollfd pfd;

	if (c->broken)
		return true;
	if (c->io_pos < c->io_len) {
		c->broken = true; /* bytes beyond the last reply: unasked */
		return true;
	}
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	if (pfd.revents & (POLLERR | POLLNVAL)) {
		c->broken = true;
		return true;
	}
	/* Readable while idle: EOF, unsolicited data, or TLS tickets. */
	for (;;) {
		ssize_t r = recv(c->fd, c->io, sizeof c->io, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (r <= 0 || !c->ssl) {
			c->broken = true;
			return true;
		}
		if (BIO_write(c->rbio, c->io, (int)r) != (int)r) {
			c->broken = true;
			return true;
		}
		ERR_clear_error();
		r = SSL_read(c->ssl, c->io, (int)sizeof c->io);
		if (r > 0 || SSL_get_error(c->ssl, (int)r) != SSL_ERROR_WANT_READ) {
			/* application data nobody asked for, close_notify, or an error */
			ERR_clear_error();
			c->broken = true;
			return true;
		}
	}
}

const char *redis_conn_peer(const redis_conn_t *c)
{
	return c->peer;
}

SSL_CTX *redis_conn_tls_new(bool verify, const char *ca_file, char *errstr, size_t errstr_size)
{
	SSL_CTX *ctx;
	char why[200];

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		rc_err(errstr, errstr_size, "redis TLS: SSL_CTX_new: %s",
		       rc_ssl_reason(why, sizeof why, "failed"));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		rc_err(errstr, errstr_size, "redis TLS: cannot require TLS 1.2");
		goto out_free;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			rc_err(errstr, errstr_size, "redis TLS: cannot load CA file %s: %s", ca_file,
			       rc_ssl_reason(why, sizeof why, "failed"));
			goto out_free;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		rc_err(errstr, errstr_size, "redis TLS: cannot load the system CA store: %s",
		       rc_ssl_reason(why, sizeof why, "failed"));
		goto out_free;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ctx;

out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

void redis_conn_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

void redis_cmdbuf_init(struct redis_cmdbuf *b)
{
	b->buf = NULL;
	b->len = 0;
	b->cap = 0;
}

void redis_cmdbuf_reset(struct redis_cmdbuf *b)
{
	b->len = 0;
}

void redis_cmdbuf_fini(struct redis_cmdbuf *b)
{
	free(b->buf);
	redis_cmdbuf_init(b);
}

size_t redis_u64_text(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/* Writes "<c><v>\r\n" at p; returns the end. */
static char *rc_resp_len(char *p, char c, uint64_t v)
{
	*p++ = c;
	p += redis_u64_text(p, v);
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/*
 * RESP framing written here rather than by redisFormatCommandArgv, which
 * allocates a string per command and sprintf()s every length: the printf
 * family was 8% of the worker's samples with Redis (bench_kafka --perf).
 */
wb_err_t redis_cmdbuf_append(struct redis_cmdbuf *b, int argc, const char **argv,
			     const size_t *argvlen)
{
	size_t need = 1 + 20 + 2;
	char *p;

	if (argc < 1)
		return WB_ERR_INVALID;
	for (int i = 0; i < argc; i++)
		need += 1 + 20 + 2 + argvlen[i] + 2;
	if (b->cap - b->len < need) {
		size_t cap = b->cap ? b->cap : 4096;
		char *nb;

		while (cap - b->len < need)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb)
			return WB_ERR_NOMEM;
		b->buf = nb;
		b->cap = cap;
	}
	p = rc_resp_len(b->buf + b->len, '*', (uint64_t)argc);
	for (int i = 0; i < argc; i++) {
		p = rc_resp_len(p, '$', argvlen[i]);
		memcpy(p, argv[i], argvlen[i]);
		p += argvlen[i];
		*p++ = '\r';
		*p++ = '\n';
	}
	b->len = (size_t)(p - b->buf);
	return WB_OK;
}
