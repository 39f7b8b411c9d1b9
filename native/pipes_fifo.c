/* Named pipes: mkfifo. Opening goes through fs.openSync with O_NONBLOCK
 * (never blocks) or, when the caller wants open(2)'s rule "wait for the
 * other side", through a blocking open on a waiter thread (see src/pipes/fifo.ts). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_common.h"
#include "core_waiter.h"

/* fifoCreate(path, mode) */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  char path[PATH_MAX];
  uint32_t mode = 0;
  if (!ipck_get_string(env, argv[0], path, sizeof path) || !ipck_get_u32(env, argv[1], &mode))
    return ipck_throw_errno(env, ENAMETOOLONG, "mkfifo");
  if (mkfifo(path, (mode_t)mode) != 0) return ipck_throw_errno(env, errno, "mkfifo");
  return ipck_undefined(env);
}

typedef struct fifo_open_ctx {
  int flags;
  char path[PATH_MAX];
} fifo_open_ctx;

/* Runs on a waiter thread: open(2) of a FIFO sleeps in the kernel until the
 * other side opens it. Cancellation (abort, timeout
 * decided in JS, process exit) arrives as IPCK_WAKE_SIGNAL, which makes open
 * fail with EINTR. An open that succeeded is always returned, even if a
 * cancel raced with it, so JS can close the descriptor instead of leaking it. */
static int64_t fifo_open_block(ipck_waiter_job *job, void *arg) {
  fifo_open_ctx *c = arg;
  for (;;) {
    if (ipck_waiter_cancelled(job)) return -ECANCELED;
    int fd = open(c->path, c->flags | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != EINTR) return -errno;
  }
}

/* fifoOpenAsync(path, flags) -> { promise, id }: blocking open on a waiter thread */
static napi_value js_fifo_open_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  fifo_open_ctx *c = malloc(sizeof *c);
  if (c == NULL) return ipck_throw_errno(env, ENOMEM, "open");
  if (!ipck_get_string(env, argv[0], c->path, sizeof c->path) || !ipck_get_i32(env, argv[1], &c->flags)) {
    free(c);
    return ipck_throw_errno(env, ENAMETOOLONG, "open");
  }
  c->flags &= ~O_NONBLOCK;
  ipck_wait_spec spec = {fifo_open_block, c, free, -1, NULL, "open"};
  return ipck_waiter_submit(env, &spec);
}

bool ipck_init_fifo(napi_env env, napi_value exports) {
  static const ipck_function functions[] = {
    {"fifoCreate", js_mkfifo},
    {"fifoOpenAsync", js_fifo_open_async},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
