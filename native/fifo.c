/* Named pipes: mkfifo. Opening goes through fs.openSync with O_NONBLOCK
 * (never blocks) or, when the caller wants the seeds' rule "wait for the
 * other side", through a blocking open on a waiter thread (see src/fifo.ts). */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "common.h"

/* mkfifo(path, mode) */
static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  char path[PATH_MAX];
  uint32_t mode = 0;
  if (!ipck_get_string(env, argv[0], path, sizeof path) || !ipck_get_u32(env, argv[1], &mode))
    return ipck_throw_errno(env, ENAMETOOLONG, "mkfifo");
  if (mkfifo(path, (mode_t)mode) != 0) return ipck_throw_errno(env, errno, "mkfifo");
  return ipck_undefined(env);
}

bool ipck_init_fifo(napi_env env, napi_value exports) {
  return ipck_export(env, exports, "mkfifo", js_mkfifo);
}
