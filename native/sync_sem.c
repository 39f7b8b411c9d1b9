/* POSIX semaphores: named (sem_open) and unnamed process-shared (sem_init on
 * a sem_t inside shared memory). Waits use sem_clockwait on CLOCK_MONOTONIC so
 * a wall-clock change cannot stretch or cut a timeout. Validation is in
 * src/sync/sem.ts.
 *
 * Lifetime: a handle is an External owning a sem_t *. Each pending async wait
 * is counted and keeps the External alive, so sem_close never unmaps a sem_t
 * a waiter thread is sleeping on: close() only marks the handle, and the last
 * pending wait does the sem_close (see settle()). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <semaphore.h>

#include "core_common.h"
#include "core_waiter.h"

typedef struct sem_handle {
  sem_t *sem;   /* NULL once released */
  bool named;
  bool open;    /* close() not yet called */
  bool wrapped; /* the External has not been finalized */
  int waits;    /* pending async waits (JS thread only) */
} sem_handle;

/* Releases the sem_t once closed and idle, and the record once nothing can
 * reach it any more (no External, no pending wait). */
static void settle(sem_handle *h) {
  if (!h->open && h->waits == 0 && h->sem != NULL) {
    if (h->named) sem_close(h->sem);
    h->sem = NULL;
  }
  if (!h->wrapped && h->waits == 0) free(h);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sem_handle *h = data;
  h->wrapped = false;
  h->open = false;
  settle(h);
}

static napi_value wrap(napi_env env, sem_handle *h) {
  napi_value out;
  if (napi_create_external(env, h, finalize, NULL, &out) != napi_ok) {
    if (h->named) sem_close(h->sem);
    free(h);
    ipck_throw_napi_failure(env, "sem handle");
    return NULL;
  }
  return out;
}

static sem_handle *unwrap(napi_env env, napi_value v) {
  sem_handle *h = NULL;
  if (napi_get_value_external(env, v, (void **)&h) != napi_ok || h == NULL || !h->open) return NULL;
  return h;
}

/* semOpen(name, oflag, mode, value) -> handle */
static napi_value js_sem_open(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  char name[NAME_MAX + 2];
  int32_t oflag = 0;
  uint32_t mode = 0, value = 0;
  if (!ipck_get_string(env, argv[0], name, sizeof name) || !ipck_get_i32(env, argv[1], &oflag) ||
      !ipck_get_u32(env, argv[2], &mode) || !ipck_get_u32(env, argv[3], &value))
    return ipck_throw_errno(env, EINVAL, "sem_open");
  sem_t *s = sem_open(name, oflag, (mode_t)mode, value);
  if (s == SEM_FAILED) return ipck_throw_errno(env, errno, "sem_open");
  sem_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    sem_close(s);
    return ipck_throw_errno(env, ENOMEM, "sem_open");
  }
  h->sem = s;
  h->named = true;
  h->open = h->wrapped = true;
  return wrap(env, h);
}

/* semInMemory(view: Uint8Array of sizeof(sem_t) bytes, init: value or -1) -> handle.
 * The caller keeps the view (and so the SharedArrayBuffer) alive with the handle. */
static napi_value js_sem_in_memory(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  void *data = NULL;
  size_t len = 0;
  int64_t init = -1;
  if (!ipck_get_bytes(env, argv[0], &data, &len) || len < sizeof(sem_t) ||
      ((uintptr_t)data % _Alignof(sem_t)) != 0 || !ipck_get_i64(env, argv[1], &init))
    return ipck_throw_errno(env, EINVAL, "sem_init");
  if (init >= 0 && sem_init((sem_t *)data, 1 /* shared between processes */, (unsigned)init) != 0)
    return ipck_throw_errno(env, errno, "sem_init");
  sem_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return ipck_throw_errno(env, ENOMEM, "sem_init");
  h->sem = data;
  h->open = h->wrapped = true;
  return wrap(env, h);
}

/* semClose(handle): the last pending wait, if any, does the sem_close. */
static napi_value js_sem_close(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  sem_handle *h = unwrap(env, argv[0]);
  if (h != NULL) {
    h->open = false;
    settle(h);
  }
  return ipck_undefined(env);
}

static napi_value js_sem_unlink(napi_env env, napi_callback_info info) {
  return ipck_unlink_name(env, info, sem_unlink, "sem_unlink");
}

#define HANDLE_OR_THROW(syscall)                                   \
  IPCK_ARGS(env, info, 2);                                         \
  sem_handle *h = unwrap(env, argv[0]);                            \
  if (h == NULL) return ipck_throw_errno(env, EBADF, syscall)

static napi_value js_sem_post(napi_env env, napi_callback_info info) {
  HANDLE_OR_THROW("sem_post");
  if (sem_post(h->sem) != 0) return ipck_throw_errno(env, errno, "sem_post");
  return ipck_undefined(env);
}

static napi_value js_sem_try_wait(napi_env env, napi_callback_info info) {
  HANDLE_OR_THROW("sem_trywait");
  int r;
  while ((r = sem_trywait(h->sem)) != 0 && errno == EINTR) {
  }
  if (r != 0 && errno != EAGAIN) return ipck_throw_errno(env, errno, "sem_trywait");
  napi_value out;
  napi_get_boolean(env, r == 0, &out);
  return out;
}

static napi_value js_sem_get_value(napi_env env, napi_callback_info info) {
  HANDLE_OR_THROW("sem_getvalue");
  int v = 0;
  if (sem_getvalue(h->sem, &v) != 0) return ipck_throw_errno(env, errno, "sem_getvalue");
  return ipck_i64(env, v);
}

/* sem_wait / sem_clockwait until the deadline; EINTR retried unless cancelled. */
static int64_t sem_block(ipck_waiter_job *job, void *arg) {
  sem_handle *h = arg;
  const struct timespec *deadline = ipck_waiter_deadline(job);
  for (;;) {
    if (ipck_waiter_cancelled(job)) return -ECANCELED;
    int r = deadline ? sem_clockwait(h->sem, CLOCK_MONOTONIC, deadline) : sem_wait(h->sem);
    if (r == 0) return 0;
    if (errno != EINTR) return -errno; /* ETIMEDOUT included */
  }
}

static napi_value js_sem_wait_sync(napi_env env, napi_callback_info info) {
  HANDLE_OR_THROW("sem_wait");
  int64_t timeout = -1;
  if (!ipck_get_i64(env, argv[1], &timeout)) return ipck_throw_errno(env, EINVAL, "sem_wait");
  return ipck_waiter_sync_result(env, ipck_waiter_run_sync(sem_block, h, timeout),
                                 timeout >= 0 ? "sem_clockwait" : "sem_wait");
}

static void wait_done(void *arg) {
  sem_handle *h = arg;
  h->waits--;
  settle(h);
}

/* semWaitAsync(handle, timeoutNs, keepAlive): keepAlive is the JS object that
 * owns both the handle and, for in-memory semaphores, the SharedArrayBuffer. */
static napi_value js_sem_wait_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  sem_handle *h = unwrap(env, argv[0]);
  if (h == NULL) return ipck_throw_errno(env, EBADF, "sem_wait");
  int64_t timeout = -1;
  if (!ipck_get_i64(env, argv[1], &timeout)) return ipck_throw_errno(env, EINVAL, "sem_wait");
  h->waits++;
  ipck_wait_spec spec = {sem_block, h, wait_done, timeout, argv[2],
                         timeout >= 0 ? "sem_clockwait" : "sem_wait"};
  return ipck_waiter_submit(env, &spec);
}

bool ipck_init_sem(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SEM_VALUE_MAX", SEM_VALUE_MAX},
    {"SIZEOF_SEM_T", sizeof(sem_t)},
    {"ALIGNOF_SEM_T", _Alignof(sem_t)},
    {"O_CREAT", O_CREAT},
    {"O_EXCL", O_EXCL},
  };
  static const ipck_function functions[] = {
    {"semOpen", js_sem_open},
    {"semInMemory", js_sem_in_memory},
    {"semClose", js_sem_close},
    {"semUnlink", js_sem_unlink},
    {"semPost", js_sem_post},
    {"semTryWait", js_sem_try_wait},
    {"semGetValue", js_sem_get_value},
    {"semWaitSync", js_sem_wait_sync},
    {"semWaitAsync", js_sem_wait_async},
  };
  return ipck_export_constants(env, exports, "semConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
