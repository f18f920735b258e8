/*
 * redis_server.h - a real redis-server for tests: started on a free loopback
 * port in its own temporary directory, stopped by its PID.
 *
 * Modes: plain; with a password (requirepass); with an ACL user (the default
 * user disabled); TLS only (port 0 for plain), with a CA and a server
 * certificate for "localhost"/127.0.0.1 generated with the openssl command.
 * Owns: the child process, its temporary directory (removed on stop).
 * Not thread-safe: one thread starts and stops a server.
 */
#ifndef WB_TEST_REDIS_SERVER_H
#define WB_TEST_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

enum redis_server_mode {
	REDIS_SERVER_PLAIN,
	REDIS_SERVER_PASSWORD, /* requirepass REDIS_SERVER_PASSWORD_VALUE */
	REDIS_SERVER_ACL,      /* user REDIS_SERVER_ACL_USER / REDIS_SERVER_ACL_PASSWORD */
	REDIS_SERVER_TLS,      /* TLS only; requirepass as PASSWORD mode */
};

#define REDIS_SERVER_PASSWORD_VALUE "s3cret-pass"
#define REDIS_SERVER_ACL_USER "wabot"
#define REDIS_SERVER_ACL_PASSWORD "acl-s3cret"

struct redis_server;

/* Starts redis-server and waits until it answers PING (up to 10 s).
 * Returns NULL with a reason on stderr when it cannot. */
struct redis_server *redis_server_start(enum redis_server_mode mode);

/* SIGTERM, then SIGKILL after 2 s; waits for the child; removes the temp
 * directory. NULL ok. */
void redis_server_stop(struct redis_server *rs);

/* Kill -STOP / -CONT the server (to provoke timeouts), and kill it for good
 * (SIGKILL) or start it again on the same port (to test reconnects). */
void redis_server_pause(struct redis_server *rs);
void redis_server_resume(struct redis_server *rs);
void redis_server_kill(struct redis_server *rs);
bool redis_server_restart(struct redis_server *rs);

int redis_server_port(const struct redis_server *rs);
pid_t redis_server_pid(const struct redis_server *rs);
/* "redis://127.0.0.1:<port>/0", with credentials for the mode, and
 * "rediss://localhost:<port>/0" for TLS. Valid until stop. */
const char *redis_server_url(const struct redis_server *rs);
/* PEM CA that signed the server certificate (TLS mode), else NULL. */
const char *redis_server_ca_file(const struct redis_server *rs);
/* Directory of the server's files (certs, logs). */
const char *redis_server_dir(const struct redis_server *rs);

/* Runs one command through redis-cli against the server (with its
 * credentials and TLS options) and returns its stdout (malloc'd, trailing
 * newline removed) or NULL. For tests that plant values behind the store's
 * back: redis_server_cli(rs, "SET", "wabot:ctx:{+57}", "not json", NULL). */
char *redis_server_cli(const struct redis_server *rs, ...);

#endif /* WB_TEST_REDIS_SERVER_H */
