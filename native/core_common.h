/* Shared helpers for every mechanism group.
 *
 * Contract with the TypeScript layer: arguments arrive already validated, so
 * these helpers only convert types. A failing system call throws a plain Error
 * carrying `errno` (positive) and `syscall`; src/core/errors.ts turns it into an
 * IpcError with the errno name and the object's name. */
#ifndef IPCKIT_COMMON_H
#define IPCKIT_COMMON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Abort-free status check: a failed napi_* call means a bug in this addon,
 * so it becomes a thrown JS error rather than a crash. */
#define IPCK_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      ipck_throw_napi_failure((env), #call);                                   \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

#define IPCK_ARGS(env, info, n)                                                \
  size_t argc = (n);                                                           \
  napi_value argv[(n) > 0 ? (n) : 1];                                          \
  IPCK_CALL((env), napi_get_cb_info((env), (info), &argc, argv, NULL, NULL))

void ipck_throw_napi_failure(napi_env env, const char *what);

/* Throws Error{ errno, syscall } and returns NULL for the caller to return. */
napi_value ipck_throw_errno(napi_env env, int err, const char *syscall);

bool ipck_get_i64(napi_env env, napi_value v, int64_t *out);
bool ipck_get_i32(napi_env env, napi_value v, int32_t *out);
bool ipck_get_u32(napi_env env, napi_value v, uint32_t *out);
bool ipck_get_bool(napi_env env, napi_value v, bool *out);
/* Copies a UTF-8 string into buf (NUL-terminated). Fails if it does not fit. */
bool ipck_get_string(napi_env env, napi_value v, char *buf, size_t cap);
/* Pointer and length of a TypedArray or Buffer argument. */
bool ipck_get_bytes(napi_env env, napi_value v, void **data, size_t *len);

napi_value ipck_i64(napi_env env, int64_t v);
napi_value ipck_undefined(napi_env env);
void ipck_set_i64(napi_env env, napi_value obj, const char *key, int64_t v);
void ipck_set_value(napi_env env, napi_value obj, const char *key, napi_value v);

/* Sets key, uid, gid, cuid, cgid, mode, seq from a System V ipc_perm (the
 * part every *_ds structure of shm, sem and msg shares). */
struct ipc_perm;
void ipck_set_ipc_perm(napi_env env, napi_value obj, const struct ipc_perm *perm);

/* The body of a JS function (name) -> undefined over a POSIX unlink by name
 * (mq_unlink, shm_unlink, sem_unlink). */
napi_value ipck_unlink_name(napi_env env, napi_callback_info info, int (*unlink_name)(const char *),
                            const char *syscall);

/* A mechanism's addon functions and constants, as tables its init function
 * hands to the two calls below. */
typedef struct ipck_function {
  const char *name;
  napi_callback fn;
} ipck_function;
typedef struct ipck_constant {
  const char *name;
  int64_t value;
} ipck_constant;
#define IPCK_COUNT(table) (sizeof(table) / sizeof((table)[0]))

/* Registers each function as exports[name]; false at the first that fails. */
bool ipck_export_functions(napi_env env, napi_value exports, const ipck_function *functions,
                           size_t count);
/* exports[name] = an object of the constants (<mechanism>Constants). */
bool ipck_export_constants(napi_env env, napi_value exports, const char *name,
                           const ipck_constant *constants, size_t count);

/* Per-environment (main thread or worker) state: napi_get_instance_data.
 * Mechanisms that need state (pollers, waiters) add their fields here. */
typedef struct ipck_env {
  int reserved;
  struct waiter_state *waiter; /* core_waiter.c: waiter thread pool */
  struct uring_state *uring;   /* sync_futex_uring.c: io_uring futex waits, opened on first use */
} ipck_env;

/* Per-mechanism registration, called from addon.c. */
bool ipck_init_shm(napi_env env, napi_value exports);
bool ipck_init_shm_sysv(napi_env env, napi_value exports);
bool ipck_init_sysv(napi_env env, napi_value exports);
bool ipck_init_pipe(napi_env env, napi_value exports);
bool ipck_init_fifo(napi_env env, napi_value exports);
bool ipck_init_unix(napi_env env, napi_value exports);
bool ipck_init_waiter(napi_env env, napi_value exports);
bool ipck_init_futex(napi_env env, napi_value exports);
bool ipck_init_sem(napi_env env, napi_value exports);
bool ipck_init_sem_sysv(napi_env env, napi_value exports);
bool ipck_init_mutex(napi_env env, napi_value exports);
bool ipck_init_futex_uring(napi_env env, napi_value exports);
bool ipck_init_mq_posix(napi_env env, napi_value exports);
bool ipck_init_mq_sysv(napi_env env, napi_value exports);
bool ipck_init_poller(napi_env env, napi_value exports);
bool ipck_init_signals(napi_env env, napi_value exports);
bool ipck_init_doorbell(napi_env env, napi_value exports);
bool ipck_init_ring(napi_env env, napi_value exports);
bool ipck_init_owned(napi_env env, napi_value exports);

#ifdef __cplusplus
}
#endif

#endif
