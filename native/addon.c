/* Module entry. Each mechanism group registers its functions here; any state
 * must live in per-environment instance data (ipck_env), never in globals,
 * because every worker thread loads its own copy of the exports. The one
 * exception is core_owned.c's list, which belongs to the process (see there).
 *
 * Exported names follow one rule: <mechanism>[Sysv]<Verb> (shmOpen,
 * shmSysvGet, semSysvOp..., mqSysvSend...), and <mechanism>[Sysv]Constants
 * for constants (mqSysvConstants); sysvConstants holds what every System V
 * mechanism shares. File names follow binding.gyp's rule. */
#include "core_common.h"
#include "shm_mapping.h"

static void env_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value init(napi_env env, napi_value exports) {
  ipck_env *state = calloc(1, sizeof *state);
  if (state == NULL || napi_set_instance_data(env, state, env_finalize, NULL) != napi_ok) {
    free(state);
    napi_throw_error(env, "ERR_IPCKIT_NATIVE", "ipckit: cannot allocate per-environment state");
    return NULL;
  }
  if (!ipck_init_mapping(env, exports) || !ipck_init_shm(env, exports) ||
      !ipck_init_sysv(env, exports) ||
      !ipck_init_shm_sysv(env, exports) ||
      !ipck_init_waiter(env, exports) ||
      !ipck_init_futex(env, exports) ||
      !ipck_init_sem(env, exports) ||
      !ipck_init_sem_sysv(env, exports) ||
      !ipck_init_mutex(env, exports) ||
      !ipck_init_futex_uring(env, exports) ||
      !ipck_init_mq_posix(env, exports) ||
      !ipck_init_mq_sysv(env, exports)) {
    ipck_throw_napi_failure(env, "module registration");
    return NULL;
  }
  if (!ipck_init_pipe(env, exports) ||
      !ipck_init_fifo(env, exports) ||
      !ipck_init_unix(env, exports)) {
    ipck_throw_napi_failure(env, "module registration");
    return NULL;
  }
  if (!ipck_init_poller(env, exports) || !ipck_init_signals(env, exports)) {
    ipck_throw_napi_failure(env, "module registration");
    return NULL;
  }
  if (!ipck_init_doorbell(env, exports) || !ipck_init_ring(env, exports) || !ipck_init_owned(env, exports)) {
    ipck_throw_napi_failure(env, "module registration");
    return NULL;
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
