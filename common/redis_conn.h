/*
 * redis_conn.h - one connection to Redis: TCP socket, optional TLS, and
 * hiredis used only as the protocol layer (redisReader to parse replies,
 * redisFormatCommandArgv to format commands).
 *
 * We do the socket and OpenSSL I/O ourselves so plain and TLS share one
 * deadline-aware path: the socket is non-blocking and every wait is a poll()
 * bounded by the connect or command timeout. TLS runs over memory BIOs, so
 * OpenSSL never touches the socket (no SIGPIPE from its write(2), one send
 * path with MSG_NOSIGNAL for both modes).
 * Owns: the socket, the SSL object, the reader. A redis_conn_t is used by one
 * thread at a time (the caller serialises; ctx_redis.c keeps a pool).
 * Does not: retry, reconnect, pick connections, or know about contexts. After
 * any I/O error, timeout or protocol error the connection is broken for good
 * (hiredis' rule for blocking contexts): destroy it and connect again.
 */
#ifndef WB_REDIS_CONN_H
#define WB_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <openssl/types.h>

#include "err.h"

/* Default bound on the bytes of one reply (2 MiB): a reply still growing past
 * it breaks the connection with WB_ERR_PROTOCOL. Callers that read values
 * bound the value size with the command itself (GETRANGE), so this is a
 * safety net against a misbehaving server, not a value limit. */
#define REDIS_CONN_DEFAULT_MAX_REPLY (2u * 1024u * 1024u)

/* Largest array reply accepted (elements). Our replies have at most 2. */
#define REDIS_CONN_MAX_ELEMENTS 1024

/* Where and how to connect. Strings are borrowed for the call only. */
struct redis_conn_opts {
	const char *host;            /* name or IP literal (IPv6 without brackets) */
	int port;                    /* 1..65535 */
	const char *user;            /* ACL user; NULL: AUTH with password only */
	const char *password;        /* NULL or "": no AUTH. A secret: never logged */
	int db;                      /* SELECT when != 0 */
	bool tls;                    /* needs tls_ctx */
	bool tls_verify;             /* check certificate chain and name */
	const char *tls_server_name; /* SNI and name to verify; NULL: host */
	int connect_timeout_ms;      /* TCP + TLS handshake + AUTH/SELECT/PING */
	int command_timeout_ms;      /* one whole round trip of redis_conn_pipeline */
	size_t max_reply_bytes;      /* 0: REDIS_CONN_DEFAULT_MAX_REPLY */
};

typedef struct redis_conn redis_conn_t;

/*
 * Creates the TLS context shared by all connections of one store: TLS 1.2 or
 * newer, peer verification on unless verify is false, CAs from ca_file (PEM;
 * NULL: OpenSSL's default paths, the system store). Returns it (free with
 * redis_conn_tls_free) or NULL with errstr (may be NULL) filled.
 * Thread: any. The result may be used by many connections at once.
 */
SSL_CTX *redis_conn_tls_new(bool verify, const char *ca_file, char *errstr, size_t errstr_size);

/* Drops the caller's reference to ctx. NULL ok. */
void redis_conn_tls_free(SSL_CTX *ctx);

/*
 * Connects to opts->host:port (every address getaddrinfo returns, in order,
 * until one answers), does the TLS handshake when opts->tls (tls_ctx is then
 * required and borrowed for the connection's life), then AUTH, SELECT and
 * PING in one round trip, all within connect_timeout_ms (name resolution is
 * not bounded by it: getaddrinfo has no timeout).
 * On WB_OK *out is the connection (caller owns it: redis_conn_destroy).
 * Errors (errstr filled, never with the password; *out untouched):
 *   WB_ERR_INVALID   bad opts (no host, port out of range, TLS without ctx)
 *   WB_ERR_IO        name not resolved, refused, reset, closed by the server
 *   WB_ERR_TIMEOUT   no answer within connect_timeout_ms
 *   WB_ERR_TLS       handshake failed; certificate errors carry OpenSSL's
 *                    verify reason ("certificate verify failed: ...")
 *   WB_ERR_AUTH      wrong user/password, or the server wants one we lack
 *   WB_ERR_CONFIG    SELECT refused (db out of range)
 *   WB_ERR_PROTOCOL  unexpected reply; WB_ERR_NOMEM
 * Thread: any; blocks up to connect_timeout_ms.
 */
wb_err_t redis_conn_connect(const struct redis_conn_opts *opts, SSL_CTX *tls_ctx,
			    redis_conn_t **out, char *errstr, size_t errstr_size);

/* Closes the socket (TLS close_notify is not sent: we never wait for it) and
 * frees everything. NULL ok. */
void redis_conn_destroy(redis_conn_t *c);

/*
 * One round trip: writes cmds (len bytes of already formatted commands, e.g.
 * from redis_cmdbuf) in one go, then reads exactly n_replies replies into
 * replies[0..n_replies-1], all within command_timeout_ms.
 * On WB_OK the caller owns every replies[i] (freeReplyObject each). A Redis
 * error reply (REDIS_REPLY_ERROR) is a reply, not a failure.
 * On failure no reply is returned (all freed, replies[] set to NULL), errstr
 * (may be NULL) says why, and the connection is broken: WB_ERR_IO,
 * WB_ERR_TIMEOUT, WB_ERR_PROTOCOL (unparsable or oversized reply),
 * WB_ERR_NOMEM. A broken connection fails every later call with WB_ERR_IO.
 * n_replies may be 0 (nothing is sent).
 */
wb_err_t redis_conn_pipeline(redis_conn_t *c, const char *cmds, size_t len, size_t n_replies,
			     redisReply **replies, char *errstr, size_t errstr_size);

/*
 * Cheap health check before a call on an idle connection (one poll(2), no
 * wait): true when the connection is known broken, or the server closed it
 * or sent something unasked while idle (then it is marked broken too).
 * TLS session tickets that arrive while idle are consumed and are fine.
 */
bool redis_conn_is_broken(redis_conn_t *c);

/* "host:port" of the connection, for messages. Valid until destroy. */
const char *redis_conn_peer(const redis_conn_t *c);

/*
 * A growable buffer of formatted commands for one round trip. Caller-owned
 * (stack or struct): redis_cmdbuf_init, append, use .buf/.len, reset to
 * reuse (keeps the memory), fini to free.
 */
struct redis_cmdbuf {
	char *buf;  /* formatted commands, not NUL-terminated */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

void redis_cmdbuf_init(struct redis_cmdbuf *b);
void redis_cmdbuf_reset(struct redis_cmdbuf *b);
void redis_cmdbuf_fini(struct redis_cmdbuf *b);

/* Appends one command (argc arguments of argvlen[i] bytes, binary-safe).
 * WB_OK or WB_ERR_NOMEM (b unchanged). */
wb_err_t redis_cmdbuf_append(struct redis_cmdbuf *b, int argc, const char **argv,
			     const size_t *argvlen);

/* Writes v in decimal at buf (room for 20 bytes, no NUL); returns the length. */
size_t redis_u64_text(char *buf, uint64_t v);

#endif /* WB_REDIS_CONN_H */
