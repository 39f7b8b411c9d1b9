/* futex(2) wait/wake on an Int32Array over shared memory (any ipckit
 * SharedArrayBuffer), across processes. Validation is in src/sync/futex.ts; the
 * bounds are checked again here because a wrong address would be a crash. */
#include <errno.h>
#include <stdatomic.h>

#include "core_common.h"
#include "sync_futex.h"
#include "core_waiter.h"

enum { FUTEX_OK = 0, FUTEX_NOT_EQUAL = 1, FUTEX_TIMED_OUT = 2 };

typedef struct futex_ctx {
  int32_t *addr;
  int32_t expected;
} futex_ctx;

/* The int32 element `index` of an Int32Array, or NULL (exception pending). */
static int32_t *word_at(napi_env env, napi_value array, napi_value index_value, const char *syscall) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  uint32_t index = 0;
  if (napi_get_typedarray_info(env, array, &type, &length, &data, &ab, &offset) != napi_ok ||
      type != napi_int32_array || !ipck_get_u32(env, index_value, &index) || index >= length) {
    ipck_throw_errno(env, EINVAL, syscall);
    return NULL;
  }
  return (int32_t *)data + index;
}

static int64_t futex_block(ipck_waiter_job *job, void *arg) {
  futex_ctx *c = arg;
  for (;;) {
    struct timespec rel;
    int r = ipck_waiter_remaining(job, &rel);
    if (r < 0) return atomic_load((_Atomic int32_t *)c->addr) != c->expected ? FUTEX_NOT_EQUAL : FUTEX_TIMED_OUT;
    if (ipck_waiter_cancelled(job)) return -ECANCELED;
    if (ipck_futex_wait(c->addr, c->expected, r ? &rel : NULL) == 0) return FUTEX_OK;
    switch (errno) {
      case EAGAIN: return FUTEX_NOT_EQUAL;
      case ETIMEDOUT: return FUTEX_TIMED_OUT;
      case EINTR:
        if (ipck_waiter_cancelled(job)) return -ECANCELED;
        /* Retry with the time left, as long as the word still holds the
         * value the caller expected (otherwise report not-equal). */
        continue;
      default: return -errno;
    }
  }
}

/* futexWait(int32Array, index, expected, timeoutNs) -> 0 ok | 1 not-equal | 2 timed-out */
static napi_value js_futex_wait(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  futex_ctx c;
  int64_t timeout = -1;
  if ((c.addr = word_at(env, argv[0], argv[1], "futex")) == NULL) return NULL;
  if (!ipck_get_i32(env, argv[2], &c.expected) || !ipck_get_i64(env, argv[3], &timeout))
    return ipck_throw_errno(env, EINVAL, "futex");
  return ipck_waiter_sync_result(env, ipck_waiter_run_sync(futex_block, &c, timeout), "futex");
}

/* futexWaitAsync(int32Array, index, expected, timeoutNs) -> { promise, id } */
static napi_value js_futex_wait_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t *addr = word_at(env, argv[0], argv[1], "futex");
  int32_t expected = 0;
  int64_t timeout = -1;
  if (addr == NULL) return NULL;
  if (!ipck_get_i32(env, argv[2], &expected) || !ipck_get_i64(env, argv[3], &timeout))
    return ipck_throw_errno(env, EINVAL, "futex");
  /* Same answer as the kernel would give, without a thread round trip. */
  if (atomic_load((_Atomic int32_t *)addr) != expected) {
    napi_value promise, out;
    napi_deferred deferred;
    IPCK_CALL(env, napi_create_promise(env, &deferred, &promise));
    IPCK_CALL(env, napi_resolve_deferred(env, deferred, ipck_i64(env, FUTEX_NOT_EQUAL)));
    IPCK_CALL(env, napi_create_object(env, &out));
    ipck_set_value(env, out, "promise", promise);
    ipck_set_i64(env, out, "id", 0);
    return out;
  }
  futex_ctx *c = malloc(sizeof *c);
  if (c == NULL) return ipck_throw_errno(env, ENOMEM, "futex");
  c->addr = addr;
  c->expected = expected;
  ipck_wait_spec spec = {futex_block, c, free, timeout, argv[0], "futex"};
  return ipck_waiter_submit(env, &spec);
}

/* futexNotify(int32Array, index, count) -> woken */
static napi_value js_futex_notify(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t *addr = word_at(env, argv[0], argv[1], "futex");
  int32_t count = 0;
  if (addr == NULL) return NULL;
  if (!ipck_get_i32(env, argv[2], &count) || count < 0) return ipck_throw_errno(env, EINVAL, "futex");
  int n = ipck_futex_wake(addr, count);
  if (n < 0) return ipck_throw_errno(env, errno, "futex");
  return ipck_i64(env, n);
}

bool ipck_init_futex(napi_env env, napi_value exports) {
  static const ipck_function functions[] = {
    {"futexWait", js_futex_wait},
    {"futexWaitAsync", js_futex_wait_async},
    {"futexNotify", js_futex_notify},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
