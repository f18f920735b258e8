/*
 * tsan_thrd.c - linked into ThreadSanitizer builds of programs that run
 * librdkafka. Debian's librdkafka uses glibc's C11 threads (thrd_create,
 * mtx_lock, cnd_wait ...), which gcc 12's TSan runtime does not intercept:
 * its threads get no TSan state and crash in TSan's allocator on their
 * first malloc, and its locks are invisible, so every hand-off through its
 * queues looks like a race. These definitions, in the executable, take
 * precedence over glibc's for librdkafka too, and map each call onto the
 * pthread function TSan does intercept (glibc's C11 types are the pthread
 * ones underneath: thrd_t is pthread_t, mtx_t and cnd_t wrap
 * pthread_mutex_t and pthread_cond_t).
 * Owns: one small block per thread start, freed by the thread.
 * Only for TSan builds: CMakeLists.txt adds it to the stress programs then.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct tsan_thrd_start {
	thrd_start_t func;
	void *arg;
};

static void *tsan_thrd_trampoline(void *p)
{
	struct tsan_thrd_start s = *(struct tsan_thrd_start *)p;

	free(p);
	return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
	struct tsan_thrd_start *s = malloc(sizeof(*s));
	int err;

	if (!s)
		return thrd_nomem;
	s->func = func;
	s->arg = arg;
	err = pthread_create(thr, NULL, tsan_thrd_trampoline, s);
	if (err) {
		free(s);
		return thrd_error;
	}
	return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
	void *r;

	if (pthread_join(thr, &r) != 0)
		return thrd_error;
	if (res)
		*res = (int)(intptr_t)r;
	return thrd_success;
}

int thrd_detach(thrd_t thr)
{
	return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}

int mtx_init(mtx_t *m, int type)
{
	pthread_mutexattr_t a;
	int err;

	pthread_mutexattr_init(&a);
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	err = pthread_mutex_init((pthread_mutex_t *)m, &a);
	pthread_mutexattr_destroy(&a);
	return err ? thrd_error : thrd_success;
}

int mtx_lock(mtx_t *m)
{
	return pthread_mutex_lock((pthread_mutex_t *)m) ? thrd_error : thrd_success;
}

int mtx_trylock(mtx_t *m)
{
	int err = pthread_mutex_trylock((pthread_mutex_t *)m);

	return err == 0 ? thrd_success : err == EBUSY ? thrd_busy : thrd_error;
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
	int err = pthread_mutex_timedlock((pthread_mutex_t *)m, ts);

	return err == 0 ? thrd_success : err == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int mtx_unlock(mtx_t *m)
{
	return pthread_mutex_unlock((pthread_mutex_t *)m) ? thrd_error : thrd_success;
}

void mtx_destroy(mtx_t *m)
{
	pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
	return pthread_cond_init((pthread_cond_t *)c, NULL) ? thrd_error : thrd_success;
}

int cnd_signal(cnd_t *c)
{
	return pthread_cond_signal((pthread_cond_t *)c) ? thrd_error : thrd_success;
}

int cnd_broadcast(cnd_t *c)
{
	return pthread_cond_broadcast((pthread_cond_t *)c) ? thrd_error : thrd_success;
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
	return pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m) ? thrd_error : thrd_success;
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
	int err = pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts);

	return err == 0 ? thrd_success : err == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t *c)
{
	pthread_cond_destroy((pthread_cond_t *)c);
}
