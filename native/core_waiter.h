/* Waiter threads: run a blocking system call off the event loop and settle a
 * Promise with its result, without touching the libuv threadpool.
 *
 * Why: a blocking wait (futex, sem_wait, semop, msgrcv, a FIFO open) parked on
 * the threadpool starves fs/dns/crypto/zlib and keeps process.exit() from
 * finishing (libuv joins its threads at exit, so an endless wait there hangs
 * it forever). Instead each pending wait gets a thread
 * of its own, taken from a small per-environment pool that grows on demand
 * (idle threads are kept for reuse so the next wait does not pay for
 * pthread_create). The result comes back to the loop through one
 * threadsafe function per environment (measured ~10 µs round trip).
 *
 * Using it from another mechanism (C side):
 *
 *   static int64_t my_block(ipck_waiter_job *job, void *ctx) {
 *     for (;;) {
 *       struct timespec rel;
 *       int r = ipck_waiter_remaining(job, &rel);      // 1: rel set, 0: no deadline
 *       if (r < 0) return -ETIMEDOUT;                   // deadline passed
 *       if (syscall_that_blocks(ctx, r ? &rel : NULL) == 0) return 0;
 *       if (errno != EINTR) return -errno;
 *       if (ipck_waiter_cancelled(job)) return -ECANCELED;
 *     }                                                 // EINTR: retry, remaining time
 *   }
 *   ...
 *   ipck_wait_spec spec = { my_block, ctx, free, timeout_ns, keep_alive_value, "msgrcv" };
 *   return ipck_waiter_submit(env, &spec);              // JS gets { promise, id }
 *
 * Contract of a block function:
 * - It runs on a waiter thread (or, for Sync variants via ipck_waiter_run_sync,
 *   on the calling JS thread). It must not call napi_*.
 * - It blocks at most until the deadline, and must return soon after a
 *   cancellation: cancel sets a flag and sends IPCK_WAKE_SIGNAL to the thread,
 *   whose no-op handler is installed without SA_RESTART, so the system call
 *   fails with EINTR; the function then sees ipck_waiter_cancelled() and
 *   returns -ECANCELED. EINTR for any other reason must be retried with the
 *   remaining time (EINTR never reaches the user).
 * - It returns a value >= 0 (the Promise resolves with that number) or a
 *   negative errno (the Promise rejects with Error{ errno, syscall }, which
 *   src/core/waiter.ts turns into an IpcError, or into the AbortSignal's reason for
 *   ECANCELED).
 * - The ctx is freed with free_ctx on the JS thread after the Promise settles
 *   (never while the block function may still run); keep_alive (a JS value such
 *   as the SharedArrayBuffer holding the futex word or the sem_t) is referenced
 *   until then so its memory cannot be unmapped under a sleeping thread.
 *
 * JS side: native.waiterCancel(id) cancels one wait (call it again if it has
 * not settled shortly after: a signal that lands just before the thread enters
 * the system call is lost; src/core/waiter.ts re-sends it), native.waiterCancelAll()
 * wakes every wait (process 'exit' hook), native.waiterStats() reports the
 * pool for tests. Environment teardown (worker exit) cancels and joins every
 * thread before the instance data goes. */
#ifndef IPCKIT_WAITER_H
#define IPCKIT_WAITER_H
#include <signal.h>
#include <time.h>

#include "core_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Chosen because its default action is "ignore": giving it a no-op handler
 * changes nothing visible for code that never uses it. See docs/sync.md. */
#define IPCK_WAKE_SIGNAL SIGURG

typedef struct ipck_waiter_job ipck_waiter_job;
typedef int64_t (*ipck_block_fn)(ipck_waiter_job *job, void *ctx);
typedef void (*ipck_free_fn)(void *ctx);

typedef struct ipck_wait_spec {
  ipck_block_fn block;
  void *ctx;
  ipck_free_fn free_ctx;  /* may be NULL */
  int64_t timeout_ns;     /* < 0: no deadline */
  napi_value keep_alive;  /* may be NULL */
  const char *syscall;    /* named in the rejection error */
} ipck_wait_spec;

/* Starts the wait on a waiter thread; returns { promise, id }. On failure an
 * exception is pending, ctx has been freed, and NULL is returned. */
napi_value ipck_waiter_submit(napi_env env, const ipck_wait_spec *spec);

/* Runs the block function on the calling thread (Sync variants, workers).
 * Not cancellable; the deadline still applies. */
int64_t ipck_waiter_run_sync(ipck_block_fn block, void *ctx, int64_t timeout_ns);

/* For block functions. */
bool ipck_waiter_cancelled(const ipck_waiter_job *job);
/* 1: *rel holds the time left; 0: no deadline; -1: the deadline has passed. */
int ipck_waiter_remaining(const ipck_waiter_job *job, struct timespec *rel);
/* The absolute CLOCK_MONOTONIC deadline, or NULL when there is none. */
const struct timespec *ipck_waiter_deadline(const ipck_waiter_job *job);

/* Turns a negative-errno result into a thrown Error{ errno, syscall }. */
napi_value ipck_waiter_sync_result(napi_env env, int64_t result, const char *syscall);

bool ipck_init_waiter(napi_env env, napi_value exports);

#ifdef __cplusplus
}
#endif
#endif
