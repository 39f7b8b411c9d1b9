/* What every System V mechanism (shm_sysv.c, sync_sem_sysv.c, mq_sysv.c)
 * shares: the IPC_* flags and ftok. Keys are checked in src/core/sysv-key.ts. */
#include <errno.h>
#include <limits.h>
#include <sys/ipc.h>

#include "core_common.h"

/* sysvFtok(path, projId) -> key, computed by libc so it matches C programs. */
static napi_value js_ftok(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  char path[PATH_MAX];
  int32_t proj = 0;
  if (!ipck_get_string(env, argv[0], path, sizeof path) ||
      !ipck_get_i32(env, argv[1], &proj))
    return ipck_throw_errno(env, ENAMETOOLONG, "ftok");
  errno = 0;
  key_t key = ftok(path, proj);
  if (key == (key_t)-1) return ipck_throw_errno(env, errno ? errno : EINVAL, "ftok");
  return ipck_i64(env, (int32_t)key);
}

bool ipck_init_sysv(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"IPC_PRIVATE", IPC_PRIVATE},
    {"IPC_CREAT", IPC_CREAT},
    {"IPC_EXCL", IPC_EXCL},
  };
  static const ipck_function functions[] = {
    {"sysvFtok", js_ftok},
  };
  return ipck_export_constants(env, exports, "sysvConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
