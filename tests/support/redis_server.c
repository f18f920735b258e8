/*
 * redis_server.c - a real redis-server for tests (see redis_server.h).
 *
 * Start: pick a free loopback port (bind 127.0.0.1:0, read it, close), make
 * a temporary directory, write redis.conf there (and for TLS a CA plus a
 * server certificate generated with the openssl command), fork/exec
 * redis-server, and wait until it answers PING. Should another process grab
 * the port first, the server exits at once and we retry with a new port.
 * Owns: the child (killed by PID; it also gets SIGKILL should the thread that
 * started it die, PR_SET_PDEATHSIG) and the directory (flat; removed on
 * stop). Independent of the code under test: readiness and redis_server_cli
 * use raw sockets and redis-cli, never redis_conn.
 * Not thread-safe: one thread starts and stops a server.
 */
#include "redis_server.h"
#include "free_port.h"
#include "test_clock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RS_START_ATTEMPTS 5
#define RS_READY_TIMEOUT_MS 10000
#define RS_STOP_GRACE_MS 2000
#define RS_MAX_ARGS 64

struct redis_server {
	enum redis_server_mode mode;
	int port;
	pid_t pid;          /* 0 when not running */
	char dir[256];      /* temporary directory, flat */
	char conf[300];     /* dir/redis.conf */
	char ca_file[300];  /* dir/ca.crt (TLS), else "" */
	char url[512];
};

/* fork + exec argv with stdin from /dev/null, stdout to out_fd (or
 * /dev/null when -1) and stderr to /dev/null. Returns the pid or -1. */
static pid_t rs_spawn(char *const argv[], int out_fd, bool die_with_parent)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	{
		int null = open("/dev/null", O_RDWR);

		if (die_with_parent)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null >= 0) {
			dup2(null, 0);
			dup2(out_fd >= 0 ? out_fd : null, 1);
			dup2(null, 2);
		}
		setpgid(0, 0); /* a ^C to the test run reaches us through the parent */
		execvp(argv[0], argv);
		_exit(127);
	}
}

/* Runs argv to completion; true when it exits with status 0. */
static bool rs_run(char *const argv[])
{
	int st;
	pid_t pid = rs_spawn(argv, -1, true);

	if (pid < 0)
		return false;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool rs_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	return ok;
}

/* dir/name into buf. */
static const char *rs_path(const struct redis_server *rs, const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", rs->dir, name);
	return buf;
}

/* A CA and a server certificate for localhost / 127.0.0.1 signed by it
 * (P-256 keys: fast to generate). */
static bool rs_make_certs(struct redis_server *rs)
{
	char ca_key[300], ca_crt[300], srv_key[300], srv_csr[300], srv_crt[300], ext[300];

	rs_path(rs, "ca.key", ca_key, sizeof ca_key);
	rs_path(rs, "ca.crt", ca_crt, sizeof ca_crt);
	rs_path(rs, "server.key", srv_key, sizeof srv_key);
	rs_path(rs, "server.csr", srv_csr, sizeof srv_csr);
	rs_path(rs, "server.crt", srv_crt, sizeof srv_crt);
	rs_path(rs, "server.ext", ext, sizeof ext);
	if (!rs_write_file(ext, "basicConstraints=critical,CA:FALSE\n"
				"keyUsage=critical,digitalSignature,keyEncipherment\n"
				"extendedKeyUsage=serverAuth\n"
				"subjectAltName=DNS:localhost,IP:127.0.0.1\n"))
		return false;
	{
		char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
				"ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key, "-out", ca_crt,
				"-days", "2", "-subj", "/CN=wabot test CA", "-addext",
				"basicConstraints=critical,CA:TRUE", "-addext",
				"keyUsage=critical,keyCertSign,cRLSign", NULL};

		if (!rs_run(argv))
			return false;
	}
	{
		char *argv[] = {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
				"ec_paramgen_curve:prime256v1", "-nodes", "-keyout", srv_key, "-out", srv_csr,
				"-subj", "/CN=localhost", NULL};

		if (!rs_run(argv))
			return false;
	}
	{
		char *argv[] = {"openssl", "x509", "-req", "-in", srv_csr, "-CA", ca_crt, "-CAkey", ca_key,
				"-CAcreateserial", "-out", srv_crt, "-days", "2", "-extfile", ext, NULL};

		if (!rs_run(argv))
			return false;
	}
	snprintf(rs->ca_file, sizeof rs->ca_file, "%s", ca_crt);
	return true;
}

static bool rs_write_conf(struct redis_server *rs)
{
	char buf[4096], p1[300], p2[300];
	int n;

	n = snprintf(buf, sizeof buf,
		     "bind 127.0.0.1\n"
		     "daemonize no\n"
		     "save \"\"\n"
		     "appendonly no\n"
		     "dir %s\n"
		     "logfile %s\n"
		     "pidfile %s\n",
		     rs->dir, rs_path(rs, "redis.log", p1, sizeof p1), rs_path(rs, "redis.pid", p2, sizeof p2));
	if (rs->mode == REDIS_SERVER_TLS) {
		char crt[300], key[300];

		n += snprintf(buf + n, sizeof buf - (size_t)n,
			      "port 0\n"
			      "tls-port %d\n"
			      "tls-cert-file %s\n"
			      "tls-key-file %s\n"
			      "tls-ca-cert-file %s\n"
			      "tls-auth-clients no\n"
			      "requirepass %s\n",
			      rs->port, rs_path(rs, "server.crt", crt, sizeof crt),
			      rs_path(rs, "server.key", key, sizeof key), rs->ca_file,
			      REDIS_SERVER_PASSWORD_VALUE);
	} else {
		n += snprintf(buf + n, sizeof buf - (size_t)n, "port %d\n", rs->port);
	}
	if (rs->mode == REDIS_SERVER_PASSWORD)
		n += snprintf(buf + n, sizeof buf - (size_t)n, "requirepass %s\n", REDIS_SERVER_PASSWORD_VALUE);
	if (rs->mode == REDIS_SERVER_ACL)
		n += snprintf(buf + n, sizeof buf - (size_t)n,
			      "user default off\n"
			      "user %s on >%s ~* &* +@all\n",
			      REDIS_SERVER_ACL_USER, REDIS_SERVER_ACL_PASSWORD);
	if (n <= 0 || (size_t)n >= sizeof buf)
		return false;
	return rs_write_file(rs->conf, buf);
}

/* PING over a raw socket: true on +PONG, or -NOAUTH (up, wants a password). */
static bool rs_ping_plain(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct pollfd pfd;
	char buf[128];
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    send(fd, "PING\r\n", 6, MSG_NOSIGNAL) != 6)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 500) != 1)
		goto out;
	r = recv(fd, buf, sizeof buf - 1, 0);
	if (r > 0) {
		buf[r] = '\0';
		ok = strncmp(buf, "+PONG", 5) == 0 || strncmp(buf, "-NOAUTH", 7) == 0;
	}
out:
	close(fd);
	return ok;
}

/* Collects the redis-cli prefix (connection, credentials, TLS) into argv. */
static int rs_cli_argv(const struct redis_server *rs, char **argv, char *port, size_t port_size)
{
	int k = 0;

	snprintf(port, port_size, "%d", rs->port);
	argv[k++] = "redis-cli";
	argv[k++] = "-h";
	argv[k++] = "127.0.0.1";
	argv[k++] = "-p";
	argv[k++] = port;
	argv[k++] = "--no-auth-warning";
	switch (rs->mode) {
	case REDIS_SERVER_PLAIN:
		break;
	case REDIS_SERVER_PASSWORD:
		argv[k++] = "-a";
		argv[k++] = REDIS_SERVER_PASSWORD_VALUE;
		break;
	case REDIS_SERVER_ACL:
		argv[k++] = "--user";
		argv[k++] = REDIS_SERVER_ACL_USER;
		argv[k++] = "--pass";
		argv[k++] = REDIS_SERVER_ACL_PASSWORD;
		break;
	case REDIS_SERVER_TLS:
		argv[k++] = "-a";
		argv[k++] = REDIS_SERVER_PASSWORD_VALUE;
		argv[k++] = "--tls";
		argv[k++] = "--cacert";
		argv[k++] = (char *)rs->ca_file;
		break;
	}
	return k;
}

/* Runs redis-cli with the prefix and args; returns its stdout (malloc'd,
 * trailing newline removed) or NULL when it could not run or failed. */
static char *rs_cli_argv_run(const struct redis_server *rs, char **args, int nargs)
{
	char *argv[RS_MAX_ARGS + 16];
	char port[16];
	int k = rs_cli_argv(rs, argv, port, sizeof port), fds[2], st;
	char *out = NULL;
	size_t len = 0, cap = 0;
	pid_t pid;

	if (nargs > RS_MAX_ARGS)
		return NULL;
	for (int i = 0; i < nargs; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	if (pipe(fds) != 0)
		return NULL;
	fcntl(fds[0], F_SETFD, FD_CLOEXEC); /* the write end is dup2'd to stdout */
	pid = rs_spawn(argv, fds[1], true);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *p = realloc(out, cap ? cap * 2 : 8192);

			if (!p)
				break;
			out = p;
			cap = cap ? cap * 2 : 8192;
		}
		r = read(fds[0], out + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			break;
	if (!out || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	if (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	return out;
}

static bool rs_ping(const struct redis_server *rs)
{
	char *args[] = {"PING"};
	char *out;
	bool ok;

	if (rs->mode != REDIS_SERVER_TLS)
		return rs_ping_plain(rs->port);
	out = rs_cli_argv_run(rs, args, 1);
	ok = out && strcmp(out, "PONG") == 0;
	free(out);
	return ok;
}

/* Reaps the child if it exited. true when it is gone. */
static bool rs_reap(struct redis_server *rs)
{
	int st;

	if (rs->pid <= 0)
		return true;
	if (waitpid(rs->pid, &st, WNOHANG) == rs->pid) {
		rs->pid = 0;
		return true;
	}
	return false;
}

/* Starts the process with the current conf and waits for PING. */
static bool rs_launch(struct redis_server *rs)
{
	char *argv[] = {"redis-server", rs->conf, NULL};
	int64_t deadline = test_now_ms() + RS_READY_TIMEOUT_MS;

	rs->pid = rs_spawn(argv, -1, true);
	if (rs->pid < 0) {
		rs->pid = 0;
		return false;
	}
	while (test_now_ms() < deadline) {
		if (rs_reap(rs))
			return false; /* exited: port taken, bad conf */
		if (rs_ping(rs))
			return true;
		test_sleep_ms(10);
	}
	redis_server_kill(rs);
	return false;
}

static void rs_build_url(struct redis_server *rs)
{
	switch (rs->mode) {
	case REDIS_SERVER_PLAIN:
		snprintf(rs->url, sizeof rs->url, "redis://127.0.0.1:%d/0", rs->port);
		break;
	case REDIS_SERVER_PASSWORD:
		snprintf(rs->url, sizeof rs->url, "redis://:%s@127.0.0.1:%d/0", REDIS_SERVER_PASSWORD_VALUE,
			 rs->port);
		break;
	case REDIS_SERVER_ACL:
		snprintf(rs->url, sizeof rs->url, "redis://%s:%s@127.0.0.1:%d/0", REDIS_SERVER_ACL_USER,
			 REDIS_SERVER_ACL_PASSWORD, rs->port);
		break;
	case REDIS_SERVER_TLS:
		snprintf(rs->url, sizeof rs->url, "rediss://:%s@localhost:%d/0", REDIS_SERVER_PASSWORD_VALUE,
			 rs->port);
		break;
	}
}

/* Removes the flat temporary directory and everything in it. */
static void rs_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL) {
			char p[600];

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

struct redis_server *redis_server_start(enum redis_server_mode mode)
{
	struct redis_server *rs = calloc(1, sizeof(*rs));
	const char *tmp = getenv("TMPDIR");

	if (!rs)
		return NULL;
	rs->mode = mode;
	snprintf(rs->dir, sizeof rs->dir, "%s/wb-redis-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(rs->dir)) {
		fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
		free(rs);
		return NULL;
	}
	rs_path(rs, "redis.conf", rs->conf, sizeof rs->conf);
	if (mode == REDIS_SERVER_TLS && !rs_make_certs(rs)) {
		fprintf(stderr, "redis_server: generating certificates with openssl failed\n");
		goto out_fail;
	}
	for (int attempt = 0; attempt < RS_START_ATTEMPTS; attempt++) {
		rs->port = free_port();
		if (rs->port <= 0 || !rs_write_conf(rs)) {
			fprintf(stderr, "redis_server: cannot prepare port or config\n");
			goto out_fail;
		}
		if (rs_launch(rs)) {
			rs_build_url(rs);
			return rs;
		}
	}
	fprintf(stderr, "redis_server: redis-server did not start (see %s/redis.log)\n", rs->dir);
out_fail:
	redis_server_stop(rs);
	return NULL;
}

void redis_server_stop(struct redis_server *rs)
{
	if (!rs)
		return;
	if (rs->pid > 0) {
		int64_t deadline = test_now_ms() + RS_STOP_GRACE_MS;

		kill(rs->pid, SIGCONT); /* a paused server would not see SIGTERM */
		kill(rs->pid, SIGTERM);
		while (!rs_reap(rs) && test_now_ms() < deadline)
			test_sleep_ms(5);
		redis_server_kill(rs);
	}
	rs_rmdir(rs->dir);
	free(rs);
}

void redis_server_pause(struct redis_server *rs)
{
	if (rs && rs->pid > 0)
		kill(rs->pid, SIGSTOP);
}

void redis_server_resume(struct redis_server *rs)
{
	if (rs && rs->pid > 0)
		kill(rs->pid, SIGCONT);
}

void redis_server_kill(struct redis_server *rs)
{
	int st;

	if (!rs || rs->pid <= 0)
		return;
	kill(rs->pid, SIGKILL);
	while (waitpid(rs->pid, &st, 0) < 0 && errno == EINTR)
		;
	rs->pid = 0;
}

bool redis_server_restart(struct redis_server *rs)
{
	int64_t deadline = test_now_ms() + RS_READY_TIMEOUT_MS;

	if (!rs)
		return false;
	redis_server_kill(rs);
	/* The port is ours (SO_REUSEADDR on the server side); retry briefly in
	 * case the old socket is still closing. */
	while (test_now_ms() < deadline) {
		if (rs_launch(rs))
			return true;
		test_sleep_ms(50);
	}
	fprintf(stderr, "redis_server: restart on port %d failed\n", rs->port);
	return false;
}

int redis_server_port(const struct redis_server *rs)
{
	return rs->port;
}

pid_t redis_server_pid(const struct redis_server *rs)
{
	return rs->pid;
}

const char *redis_server_url(const struct redis_server *rs)
{
	return rs->url;
}

const char *redis_server_ca_file(const struct redis_server *rs)
{
	return rs->ca_file[0] ? rs->ca_file : NULL;
}

const char *redis_server_dir(const struct redis_server *rs)
{
	return rs->dir;
}

char *redis_server_cli(const struct redis_server *rs, ...)
{
	char *args[RS_MAX_ARGS];
	int n = 0;
	va_list ap;
	const char *a;

	va_start(ap, rs);
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (n == RS_MAX_ARGS) {
			va_end(ap);
			return NULL;
		}
		args[n++] = (char *)a;
	}
	va_end(ap);
	return rs_cli_argv_run(rs, args, n);
}
