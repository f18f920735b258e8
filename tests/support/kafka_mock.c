/*
 * kafka_mock.c - spawns wb-mock-kafka and reads its bootstrap line (see
 * kafka_mock.h).
 *
 * Start: two pipes made close-on-exec (so no other child we spawn, such as
 * the worker under test, holds them open), fork, exec the tool with stdin on
 * one and stdout on the other, read "bootstrap=..." (10 s at most), then
 * close our end of its stdout: the tool writes nothing more there and
 * ignores SIGPIPE. Our end of its stdin stays open until stop; its closing,
 * by us or by the kernel when this process dies, tells the tool to exit.
 * Owns: the child (by PID) and that one pipe end.
 */
#include "kafka_mock.h"
#include "test_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WB_MOCK_KAFKA_BIN
#error "WB_MOCK_KAFKA_BIN must name the wb-mock-kafka binary (set by CMakeLists.txt)"
#endif

#define KM_READY_TIMEOUT_MS 10000
#define KM_STOP_GRACE_MS 3000
#define KM_MAX_TOPICS 64
#define KM_LINE_MAX 1024 /* 8 brokers of "127.0.0.1:65535," fit with room to spare */

struct kafka_mock {
	pid_t pid;             /* 0 once reaped */
	int stdin_fd;          /* write end of the child's stdin, -1 when closed */
	char bootstrap[KM_LINE_MAX];
};

const char *kafka_mock_binary(void)
{
	/* A ThreadSanitizer build cannot run librdkafka's mock (it crashes in
	 * TSan's allocator on the mock thread): tests/run.sh points this at
	 * the plain build's program. */
	const char *bin = getenv("WB_MOCK_KAFKA");

	return bin && bin[0] ? bin : WB_MOCK_KAFKA_BIN;
}

/* Reaps the child if it exited; its exit code in *code (-1: by a signal).
 * true when it is gone. */
static bool km_reap(struct kafka_mock *km, int *code, bool block)
{
	int st;
	pid_t r;

	if (km->pid <= 0)
		return true;
	do
		r = waitpid(km->pid, &st, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != km->pid)
		return false;
	km->pid = 0;
	if (code)
		*code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return true;
}

/* fd as target in a child about to exec, without close-on-exec. */
static int km_move_fd(int fd, int target)
{
	if (fd != target)
		return dup2(fd, target);
	return fcntl(fd, F_SETFD, 0); /* dup2 onto itself would keep FD_CLOEXEC */
}

enum km_read {
	KM_READ_LINE,    /* a whole line is in buf */
	KM_READ_EOF,     /* the writer closed its end (or a read failed) first */
	KM_READ_TIMEOUT, /* the deadline passed first */
};

/*
 * Reads one line from fd into buf (NUL-terminated, without the newline)
 * until deadline (ms on test_now_ms()). A line that does not fit counts as
 * EOF: the tool never prints one.
 */
static enum km_read km_read_line(int fd, char *buf, size_t size, int64_t deadline)
{
	size_t len = 0;

	while (len + 1 < size) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - test_now_ms();
		ssize_t n;

		if (left <= 0)
			return KM_READ_TIMEOUT;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return KM_READ_EOF;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fd, buf + len, 1); /* byte by byte: nothing past the line is taken */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return KM_READ_EOF;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return KM_READ_LINE;
		}
		len++;
	}
	return KM_READ_EOF;
}

/* argv for the tool from topics_spec (copied into spec_buf, which argv then
 * points into). Returns false when the spec has too many topics. */
static bool km_build_argv(const char *topics_spec, int brokers, char *spec_buf, char *brokers_buf,
			  size_t brokers_size, char **argv, size_t argv_size)
{
	size_t k = 0;

	snprintf(brokers_buf, brokers_size, "%d", brokers);
	argv[k++] = (char *)kafka_mock_binary();
	argv[k++] = "--exit-on-stdin-eof";
	argv[k++] = "--quiet";
	argv[k++] = "--brokers";
	argv[k++] = brokers_buf;
	if (topics_spec) {
		/* Empty pieces are passed on, so the tool reports them (",," or ""). */
		for (char *p = spec_buf, *t; (t = strsep(&p, ",")) != NULL;) {
			if (k + 3 > argv_size)
				return false;
			argv[k++] = "--topic";
			argv[k++] = t;
		}
	}
	argv[k] = NULL;
	return true;
}

struct kafka_mock *kafka_mock_start(const char *topics_spec, int brokers)
{
	struct kafka_mock *km = calloc(1, sizeof(*km));
	char *argv[5 + 2 * KM_MAX_TOPICS + 1];
	char brokers_buf[16], line[KM_LINE_MAX];
	char *spec_buf = NULL;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, code = 0;
	enum km_read rd;

	if (!km)
		return NULL;
	km->stdin_fd = -1;
	if (topics_spec && !(spec_buf = strdup(topics_spec)))
		goto out_fail;
	if (!km_build_argv(topics_spec, brokers, spec_buf, brokers_buf, sizeof brokers_buf, argv,
			   sizeof argv / sizeof argv[0])) {
		fprintf(stderr, "kafka_mock: more than %d topics in \"%s\"\n", KM_MAX_TOPICS, topics_spec);
		goto out_fail;
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		fprintf(stderr, "kafka_mock: pipe: %s\n", strerror(errno));
		goto out_fail;
	}
	km->pid = fork();
	if (km->pid < 0) {
		fprintf(stderr, "kafka_mock: fork: %s\n", strerror(errno));
		km->pid = 0;
		goto out_fail;
	}
	if (km->pid == 0) {
		/* dup2 clears close-on-exec on 0 and 1; the originals close at exec. */
		if (km_move_fd(in[0], STDIN_FILENO) < 0 || km_move_fd(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		setpgid(0, 0); /* a ^C to the test run reaches it through our exit */
		/* Hold nothing else of ours open: another mock's stdin pipe kept
		 * open here would stop that mock from seeing EOF. */
		close_range(3, ~0U, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	km->stdin_fd = in[1];
	in[1] = -1;
	rd = km_read_line(out[0], line, sizeof line, test_now_ms() + KM_READY_TIMEOUT_MS);
	if (rd != KM_READ_LINE || strncmp(line, "bootstrap=", 10) != 0 || line[10] == '\0') {
		if (rd == KM_READ_TIMEOUT) {
			fprintf(stderr, "kafka_mock: no bootstrap line from %s within %d ms\n", kafka_mock_binary(),
				KM_READY_TIMEOUT_MS);
		} else {
			/* It closed stdout, so it is exiting: wait for its code, briefly. */
			int64_t deadline = test_now_ms() + 1000;

			while (!km_reap(km, &code, false) && test_now_ms() < deadline)
				test_sleep_ms(5);
			if (km->pid == 0)
				fprintf(stderr, "kafka_mock: %s exited with %d before it was ready\n",
					kafka_mock_binary(), code);
			else
				fprintf(stderr, "kafka_mock: %s printed no bootstrap line\n", kafka_mock_binary());
		}
		goto out_fail;
	}
	snprintf(km->bootstrap, sizeof km->bootstrap, "%s", line + 10);
	close(out[0]);
	free(spec_buf);
	return km;
out_fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	free(spec_buf);
	kafka_mock_stop(km);
	return NULL;
}

int kafka_mock_stop(struct kafka_mock *km)
{
	int code = -1;

	if (!km)
		return -1;
	/* SIGTERM first, stdin open: a mock that ignored the signal shows as
	 * a kill (and -1) rather than slipping out through stdin's EOF. */
	if (km->pid > 0) {
		int64_t deadline = test_now_ms() + KM_STOP_GRACE_MS;

		kill(km->pid, SIGCONT); /* a stopped child would not see SIGTERM */
		kill(km->pid, SIGTERM);
		while (!km_reap(km, &code, false) && test_now_ms() < deadline)
			test_sleep_ms(5);
		if (km->pid > 0) {
			fprintf(stderr, "kafka_mock: pid %ld ignored SIGTERM for %d ms, killing it\n", (long)km->pid,
				KM_STOP_GRACE_MS);
			kill(km->pid, SIGKILL);
			km_reap(km, NULL, true);
			code = -1;
		}
	}
	if (km->stdin_fd >= 0)
		close(km->stdin_fd);
	free(km);
	return code;
}

int kafka_mock_set_rtt(struct kafka_mock *km, int ms)
{
	char cmd[32];
	int n = snprintf(cmd, sizeof cmd, "rtt %d\n", ms);

	if (km->stdin_fd < 0 || write(km->stdin_fd, cmd, (size_t)n) != n)
		return -1;
	test_sleep_ms(200);
	return 0;
}

const char *kafka_mock_bootstrap(const struct kafka_mock *km)
{
	return km->bootstrap;
}

pid_t kafka_mock_pid(const struct kafka_mock *km)
{
	return km->pid;
}
