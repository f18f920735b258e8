/*
 * worker_proc.c - background worker processes for tests (worker_proc.h).
 */
#include "worker_proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct worker_proc {
	pid_t pid;
	bool exited;
	int status; /* as worker_proc_wait returns it */
};

struct worker_proc *worker_proc_start(const char *binary, const char *const *args, const char *const *env,
				      const char *log_path)
{
	struct worker_proc *w = calloc(1, sizeof(*w));
	size_t na = 0, ne = 0, i;
	char **argv, **envp;
	const char *path = getenv("PATH");
	char *path_var;

	if (!w)
		return NULL;
	while (args && args[na])
		na++;
	while (env && env[ne])
		ne++;
	argv = calloc(na + 2, sizeof(*argv));
	envp = calloc(ne + 2, sizeof(*envp));
	path_var = malloc(strlen(path ? path : "/usr/bin:/bin") + 6);
	if (!argv || !envp || !path_var) {
		free(argv);
		free(envp);
		free(path_var);
		free(w);
		return NULL;
	}
	strcpy(path_var, "PATH=");
	strcat(path_var, path ? path : "/usr/bin:/bin");
	argv[0] = (char *)binary;
	for (i = 0; i < na; i++)
		argv[i + 1] = (char *)args[i];
	envp[0] = path_var;
	for (i = 0; i < ne; i++)
		envp[i + 1] = (char *)env[i];
	w->pid = fork();
	if (w->pid == 0) {
		int in = open("/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY),
		    err = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : open("/dev/null", O_WRONLY);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execve(binary, argv, envp);
		_exit(127);
	}
	free(argv);
	free(envp);
	free(path_var);
	if (w->pid < 0) {
		free(w);
		return NULL;
	}
	return w;
}

pid_t worker_proc_pid(const struct worker_proc *w)
{
	return w->pid;
}

void worker_proc_signal(struct worker_proc *w, int sig)
{
	if (!w->exited)
		kill(w->pid, sig);
}

static bool reap(struct worker_proc *w, int flags)
{
	int st;

	if (w->exited)
		return true;
	if (waitpid(w->pid, &st, flags) != w->pid)
		return false;
	w->exited = true;
	w->status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
	return true;
}

int worker_proc_wait(struct worker_proc *w, int timeout_ms)
{
	struct timespec ts = {0, 10 * 1000000L};
	int waited;

	for (waited = 0; !reap(w, WNOHANG); waited += 10) {
		if (waited >= timeout_ms)
			return -1;
		nanosleep(&ts, NULL);
	}
	return w->status;
}

bool worker_proc_running(struct worker_proc *w)
{
	return !reap(w, WNOHANG);
}

void worker_proc_destroy(struct worker_proc *w)
{
	if (!w)
		return;
	if (!reap(w, WNOHANG)) {
		kill(w->pid, SIGKILL);
		reap(w, 0);
	}
	free(w);
}
