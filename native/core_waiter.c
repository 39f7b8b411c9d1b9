/* Waiter threads: see core_waiter.h for the contract.
 *
 * Threading: the job list, the pending count and tsfn ref/unref belong to the
 * JS thread. The pool (idle list, thread list, job<->thread assignment) is
 * guarded by state->lock, which the waiter threads also take. A job is owned
 * by its thread from assignment until the thread hands it to the tsfn; after
 * that only the JS thread touches it. */
#include "core_waiter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Idle threads kept for reuse; more than this exit after their wait. */
#define MAX_IDLE 4

typedef struct waiter_thread waiter_thread;
typedef struct waiter_state waiter_state;

struct ipck_waiter_job {
  uint32_t id;
  ipck_block_fn block;
  void *ctx;
  ipck_free_fn free_ctx;
  const char *syscall;
  bool has_deadline;
  struct timespec deadline; /* CLOCK_MONOTONIC, absolute */
  atomic_int cancelled;
  int64_t result;
  napi_deferred deferred;
  napi_ref keep;
  waiter_thread *thread;      /* under state->lock; NULL once finished */
  ipck_waiter_job *next;      /* JS thread: list of unsettled jobs */
};

struct waiter_thread {
  pthread_t handle;
  pthread_cond_t wake;
  ipck_waiter_job *job; /* under state->lock */
  bool exit;
  waiter_state *state;
  waiter_thread *next_idle;
  waiter_thread *next_all, *prev_all;
};

struct waiter_state {
  pthread_mutex_t lock;
  pthread_cond_t gone; /* signalled when live drops to 0 */
  int live;
  waiter_thread *idle;
  int idle_count;
  waiter_thread *all;
  bool shutting_down;
  napi_threadsafe_function tsfn;
  /* JS thread only */
  ipck_waiter_job *jobs;
  uint32_t pending;
  uint32_t next_id;
};

static void wake_handler(int sig) { (void)sig; }

static void install_wake_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = wake_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: the blocking call must return EINTR */
  sigaction(IPCK_WAKE_SIGNAL, &sa, NULL);
}
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static waiter_state *state_of(napi_env env) {
  ipck_env *e = NULL;
  if (napi_get_instance_data(env, (void **)&e) != napi_ok || e == NULL) return NULL;
  return e->waiter;
}

/* ---- deadline helpers ---- */

static void add_ns(struct timespec *ts, int64_t ns) {
  ts->tv_sec += ns / 1000000000;
  ts->tv_nsec += ns % 1000000000;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

static void set_deadline(ipck_waiter_job *job, int64_t timeout_ns) {
  job->has_deadline = timeout_ns >= 0;
  if (job->has_deadline) {
    clock_gettime(CLOCK_MONOTONIC, &job->deadline);
    add_ns(&job->deadline, timeout_ns);
  }
}

bool ipck_waiter_cancelled(const ipck_waiter_job *job) {
  return atomic_load(&((ipck_waiter_job *)job)->cancelled) != 0;
}

const struct timespec *ipck_waiter_deadline(const ipck_waiter_job *job) {
  return job->has_deadline ? &job->deadline : NULL;
}

int ipck_waiter_remaining(const ipck_waiter_job *job, struct timespec *rel) {
  if (!job->has_deadline) return 0;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t left = (int64_t)(job->deadline.tv_sec - now.tv_sec) * 1000000000 +
                 (job->deadline.tv_nsec - now.tv_nsec);
  if (left <= 0) return -1;
  rel->tv_sec = left / 1000000000;
  rel->tv_nsec = left % 1000000000;
  return 1;
}

int64_t ipck_waiter_run_sync(ipck_block_fn block, void *ctx, int64_t timeout_ns) {
  ipck_waiter_job job;
  memset(&job, 0, sizeof job);
  atomic_init(&job.cancelled, 0);
  set_deadline(&job, timeout_ns);
  return block(&job, ctx);
}

static napi_value errno_error(napi_env env, int err, const char *syscall) {
  napi_value message, error, sc;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  ipck_set_i64(env, error, "errno", err);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  ipck_set_value(env, error, "syscall", sc);
  return error;
}

napi_value ipck_waiter_sync_result(napi_env env, int64_t result, const char *syscall) {
  if (result < 0) return ipck_throw_errno(env, (int)-result, syscall);
  return ipck_i64(env, result);
}

/* ---- threads ---- */

static void *thread_main(void *arg) {
  waiter_thread *t = arg;
  waiter_state *s = t->state;
  /* Only the wake signal may interrupt this thread; everything else is for
   * Node's own threads (and keeps process-directed signals away from here). */
  sigset_t mask;
  sigfillset(&mask);
  sigdelset(&mask, IPCK_WAKE_SIGNAL);
  pthread_sigmask(SIG_SETMASK, &mask, NULL);

  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (t->job == NULL && !t->exit) pthread_cond_wait(&t->wake, &s->lock);
    if (t->exit) break;
    ipck_waiter_job *job = t->job;
    pthread_mutex_unlock(&s->lock);

    job->result = job->block(job, job->ctx);

    pthread_mutex_lock(&s->lock);
    t->job = NULL;
    job->thread = NULL;
    /* During teardown the JS side is gone; the cleanup hook frees the jobs. */
    if (!s->shutting_down) napi_call_threadsafe_function(s->tsfn, job, napi_tsfn_nonblocking);
    if (s->shutting_down || s->idle_count >= MAX_IDLE) break;
    t->next_idle = s->idle;
    s->idle = t;
    s->idle_count++;
  }
  /* unlink and go */
  if (t->prev_all) t->prev_all->next_all = t->next_all;
  else s->all = t->next_all;
  if (t->next_all) t->next_all->prev_all = t->prev_all;
  if (--s->live == 0) pthread_cond_broadcast(&s->gone);
  pthread_mutex_unlock(&s->lock);
  pthread_cond_destroy(&t->wake);
  free(t);
  return NULL;
}

/* Under s->lock: hands the job to an idle thread or starts a new one. */
static int assign(waiter_state *s, ipck_waiter_job *job) {
  waiter_thread *t = s->idle;
  if (t != NULL) {
    s->idle = t->next_idle;
    s->idle_count--;
    t->job = job;
    job->thread = t;
    pthread_cond_signal(&t->wake);
    return 0;
  }
  t = calloc(1, sizeof *t);
  if (t == NULL) return ENOMEM;
  pthread_cond_init(&t->wake, NULL);
  t->state = s;
  t->job = job;
  job->thread = t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* The block functions are small: a modest stack saves address space when
   * many waits are pending. */
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int err = pthread_create(&t->handle, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    job->thread = NULL;
    pthread_cond_destroy(&t->wake);
    free(t);
    return err;
  }
  t->next_all = s->all;
  if (s->all) s->all->prev_all = t;
  s->all = t;
  s->live++;
  return 0;
}

/* Under s->lock. */
static void cancel_locked(ipck_waiter_job *job) {
  atomic_store(&job->cancelled, 1);
  if (job->thread != NULL) pthread_kill(job->thread->handle, IPCK_WAKE_SIGNAL);
}

/* ---- settling on the JS thread ---- */

static void unlink_job(waiter_state *s, ipck_waiter_job *job) {
  for (ipck_waiter_job **p = &s->jobs; *p; p = &(*p)->next) {
    if (*p == job) {
      *p = job->next;
      return;
    }
  }
}

static void free_job(napi_env env, ipck_waiter_job *job) {
  if (job->keep && env) napi_delete_reference(env, job->keep);
  if (job->free_ctx) job->free_ctx(job->ctx);
  free(job);
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  waiter_state *s = context;
  ipck_waiter_job *job = data;
  if (env == NULL) return; /* tsfn torn down; teardown freed the job */
  unlink_job(s, job);
  if (--s->pending == 0) napi_unref_threadsafe_function(env, s->tsfn);
  if (job->result >= 0) {
    napi_resolve_deferred(env, job->deferred, ipck_i64(env, job->result));
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, (int)-job->result, job->syscall));
  }
  free_job(env, job);
}

napi_value ipck_waiter_submit(napi_env env, const ipck_wait_spec *spec) {
  waiter_state *s = state_of(env);
  ipck_waiter_job *job = s ? calloc(1, sizeof *job) : NULL;
  if (job == NULL) {
    if (spec->free_ctx) spec->free_ctx(spec->ctx);
    return ipck_throw_errno(env, ENOMEM, spec->syscall);
  }
  job->block = spec->block;
  job->ctx = spec->ctx;
  job->free_ctx = spec->free_ctx;
  job->syscall = spec->syscall;
  atomic_init(&job->cancelled, 0);
  job->id = ++s->next_id;
  if (job->id == 0) job->id = ++s->next_id;
  set_deadline(job, spec->timeout_ns);

  napi_value promise, out;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      (spec->keep_alive && napi_create_reference(env, spec->keep_alive, 1, &job->keep) != napi_ok)) {
    free_job(env, job);
    ipck_throw_napi_failure(env, "waiter promise");
    return NULL;
  }
  pthread_mutex_lock(&s->lock);
  int err = assign(s, job);
  pthread_mutex_unlock(&s->lock);
  if (err != 0) {
    /* The deferred is dropped unsettled; the caller sees the thrown error. */
    free_job(env, job);
    return ipck_throw_errno(env, err, "pthread_create");
  }
  job->next = s->jobs;
  s->jobs = job;
  if (s->pending++ == 0) napi_ref_threadsafe_function(env, s->tsfn);

  napi_create_object(env, &out);
  ipck_set_value(env, out, "promise", promise);
  ipck_set_i64(env, out, "id", job->id);
  return out;
}

/* waiterCancel(id) -> true if the wait was still running */
static napi_value js_cancel(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  uint32_t id = 0;
  waiter_state *s = state_of(env);
  if (!ipck_get_u32(env, argv[0], &id) || s == NULL) return ipck_throw_errno(env, EINVAL, "waiter");
  bool running = false;
  for (ipck_waiter_job *job = s->jobs; job; job = job->next) {
    if (job->id != id) continue;
    pthread_mutex_lock(&s->lock);
    running = job->thread != NULL;
    cancel_locked(job);
    pthread_mutex_unlock(&s->lock);
    break;
  }
  napi_value out;
  napi_get_boolean(env, running, &out);
  return out;
}

/* waiterCancelAll() -> number of waits signalled */
static napi_value js_cancel_all(napi_env env, napi_callback_info info) {
  (void)info;
  waiter_state *s = state_of(env);
  int64_t n = 0;
  if (s == NULL) return ipck_i64(env, 0);
  pthread_mutex_lock(&s->lock);
  for (ipck_waiter_job *job = s->jobs; job; job = job->next) {
    if (job->thread) n++;
    cancel_locked(job);
  }
  pthread_mutex_unlock(&s->lock);
  return ipck_i64(env, n);
}

/* waiterStats() -> { threads, idle, pending } */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  waiter_state *s = state_of(env);
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  if (s == NULL) return out;
  pthread_mutex_lock(&s->lock);
  ipck_set_i64(env, out, "threads", s->live);
  ipck_set_i64(env, out, "idle", s->idle_count);
  pthread_mutex_unlock(&s->lock);
  ipck_set_i64(env, out, "pending", s->pending);
  return out;
}

/* Environment teardown (worker exit, or the main environment when Node frees
 * it): wake every wait, let every thread leave, then free what the JS side
 * can no longer settle. A thread may miss one signal (sent just before it
 * entered its system call), so the signal is repeated until all are gone. */
static void teardown(void *arg) {
  waiter_state *s = arg;
  pthread_mutex_lock(&s->lock);
  s->shutting_down = true;
  for (waiter_thread *t = s->all; t; t = t->next_all) {
    t->exit = true;
    pthread_cond_signal(&t->wake);
  }
  while (s->live > 0) {
    for (waiter_thread *t = s->all; t; t = t->next_all) {
      if (t->job) cancel_locked(t->job);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    add_ns(&until, 2000000);
    pthread_cond_timedwait(&s->gone, &s->lock, &until);
  }
  pthread_mutex_unlock(&s->lock);
  for (ipck_waiter_job *job = s->jobs, *next; job; job = next) {
    next = job->next;
    free_job(NULL, job); /* references die with the environment */
  }
  s->jobs = NULL;
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->gone);
  free(s);
}

bool ipck_init_waiter(napi_env env, napi_value exports) {
  pthread_once(&handler_once, install_wake_handler);
  ipck_env *e = NULL;
  if (napi_get_instance_data(env, (void **)&e) != napi_ok || e == NULL) return false;
  waiter_state *s = calloc(1, sizeof *s);
  if (s == NULL) return false;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->gone, NULL);
  napi_value name;
  napi_create_string_utf8(env, "ipckit.waiter", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, s, call_js,
                                      &s->tsfn) != napi_ok) {
    free(s);
    return false;
  }
  napi_unref_threadsafe_function(env, s->tsfn);
  /* Registered after the tsfn so it runs before the tsfn's own cleanup
   * (hooks run in reverse order of registration). */
  if (napi_add_env_cleanup_hook(env, teardown, s) != napi_ok) return false;
  e->waiter = s;
  static const ipck_function functions[] = {
    {"waiterCancel", js_cancel},
    {"waiterCancelAll", js_cancel_all},
    {"waiterStats", js_stats},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
