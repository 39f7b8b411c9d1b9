/* System V shared memory: shmget, shmat, shmctl (what every System V
 * mechanism shares is in core_sysv.c). Validation lives in src/shm/shm-sysv.ts. */
#include <errno.h>
#include <limits.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "core_common.h"
#include "shm_mapping.h"

/* shmSysvGet(key, size, flags) -> id */
static napi_value js_shmget(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t key = 0, flags = 0;
  int64_t size = 0;
  if (!ipck_get_i32(env, argv[0], &key) || !ipck_get_i64(env, argv[1], &size) ||
      !ipck_get_i32(env, argv[2], &flags) || size < 0)
    return ipck_throw_errno(env, EINVAL, "shmget");
  int id = shmget((key_t)key, (size_t)size, flags);
  if (id < 0) return ipck_throw_errno(env, errno, "shmget");
  return ipck_i64(env, id);
}

/* shmSysvAttach(id, readOnly) -> { buffer, handle }; the length is the segment size. */
static napi_value js_shmat(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t id = -1;
  bool read_only = false;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_bool(env, argv[1], &read_only))
    return ipck_throw_errno(env, EINVAL, "shmat");
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return ipck_throw_errno(env, errno, "shmctl");
  void *p = shmat(id, NULL, read_only ? SHM_RDONLY : 0);
  if (p == (void *)-1) return ipck_throw_errno(env, errno, "shmat");
  /* munmap of an attached segment is equivalent to shmdt for the whole
   * segment, so the generic mapping record can own it. */
  return ipck_mapping_expose(env, p, ds.shm_segsz);
}

/* shmSysvStat(id) -> every shmid_ds field, times in seconds */
static napi_value js_shm_stat(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "shmctl");
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return ipck_throw_errno(env, errno, "shmctl");
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_ipc_perm(env, out, &ds.shm_perm);
  ipck_set_i64(env, out, "size", (int64_t)ds.shm_segsz);
  ipck_set_i64(env, out, "atime", ds.shm_atime);
  ipck_set_i64(env, out, "dtime", ds.shm_dtime);
  ipck_set_i64(env, out, "ctime", ds.shm_ctime);
  ipck_set_i64(env, out, "cpid", ds.shm_cpid);
  ipck_set_i64(env, out, "lpid", ds.shm_lpid);
  ipck_set_i64(env, out, "nattch", (int64_t)ds.shm_nattch);
  return out;
}

/* shmSysvSet(id, uid, gid, mode): IPC_SET of the permission fields. */
static napi_value js_shm_set(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t id = -1;
  uint32_t uid = 0, gid = 0, mode = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_u32(env, argv[1], &uid) ||
      !ipck_get_u32(env, argv[2], &gid) || !ipck_get_u32(env, argv[3], &mode))
    return ipck_throw_errno(env, EINVAL, "shmctl");
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return ipck_throw_errno(env, errno, "shmctl");
  ds.shm_perm.uid = uid;
  ds.shm_perm.gid = gid;
  ds.shm_perm.mode = (unsigned short)mode;
  if (shmctl(id, IPC_SET, &ds) != 0) return ipck_throw_errno(env, errno, "shmctl");
  return ipck_undefined(env);
}

/* shmSysvRemove(id): IPC_RMID; the segment goes once the last attachment does. */
static napi_value js_shm_remove(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "shmctl");
  if (shmctl(id, IPC_RMID, NULL) != 0) return ipck_throw_errno(env, errno, "shmctl");
  return ipck_undefined(env);
}

bool ipck_init_shm_sysv(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SHM_DEST", SHM_DEST},
    {"SHM_LOCKED", SHM_LOCKED},
  };
  static const ipck_function functions[] = {
    {"shmSysvGet", js_shmget},
    {"shmSysvAttach", js_shmat},
    {"shmSysvStat", js_shm_stat},
    {"shmSysvSet", js_shm_set},
    {"shmSysvRemove", js_shm_remove},
  };
  return ipck_export_constants(env, exports, "shmSysvConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
