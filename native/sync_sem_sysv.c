/* System V semaphore sets: semget, semop/semtimedop, semctl. Validation is in
 * src/sync/sem-sysv.ts. Blocking semops run on a waiter thread (core_waiter.h); SEM_UNDO
 * adjustments belong to the process (NPTL threads share one undo list through
 * CLONE_SYSVSEM), so a waiter thread's semop is undone when the process dies
 * exactly as the JS thread's would be. */
#include <errno.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#include "core_common.h"
#include "core_waiter.h"

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *__buf;
};

typedef struct semop_ctx {
  int id;
  size_t count;
  struct sembuf ops[]; /* flexible: count entries */
} semop_ctx;

/* ops arrive as an Int32Array of (index, delta, flags) triples. */
static semop_ctx *read_ops(napi_env env, napi_value id_value, napi_value ops_value) {
  int32_t id = -1;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, id_value, &id) || !ipck_get_bytes(env, ops_value, &data, &len) ||
      len == 0 || len % (3 * sizeof(int32_t)) != 0) {
    ipck_throw_errno(env, EINVAL, "semop");
    return NULL;
  }
  size_t count = len / (3 * sizeof(int32_t));
  semop_ctx *c = malloc(sizeof *c + count * sizeof(struct sembuf));
  if (c == NULL) {
    ipck_throw_errno(env, ENOMEM, "semop");
    return NULL;
  }
  c->id = id;
  c->count = count;
  const int32_t *w = data;
  for (size_t i = 0; i < count; i++) {
    c->ops[i].sem_num = (unsigned short)w[3 * i];
    c->ops[i].sem_op = (short)w[3 * i + 1];
    c->ops[i].sem_flg = (short)w[3 * i + 2];
  }
  return c;
}

/* 0: applied; 1: an IPC_NOWAIT operation would have blocked (nothing
 * changed); -ETIMEDOUT when the deadline passed. A deadline already passed
 * still gets one non-blocking attempt, so timeout 0 means "try once". */
static int64_t semop_block(ipck_waiter_job *job, void *arg) {
  semop_ctx *c = arg;
  for (;;) {
    struct timespec rel;
    int r = ipck_waiter_remaining(job, &rel);
    if (r < 0) rel.tv_sec = rel.tv_nsec = 0;
    if (ipck_waiter_cancelled(job)) return -ECANCELED;
    if (semtimedop(c->id, c->ops, c->count, r == 0 ? NULL : &rel) == 0) return 0;
    if (errno == EAGAIN) {
      struct timespec left;
      return ipck_waiter_deadline(job) && ipck_waiter_remaining(job, &left) < 0 ? -ETIMEDOUT : 1;
    }
    if (errno != EINTR) return -errno;
  }
}

/* semSysvGet(key, nsems, flags) -> id */
static napi_value js_semget(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t key = 0, nsems = 0, flags = 0;
  if (!ipck_get_i32(env, argv[0], &key) || !ipck_get_i32(env, argv[1], &nsems) ||
      !ipck_get_i32(env, argv[2], &flags))
    return ipck_throw_errno(env, EINVAL, "semget");
  int id = semget((key_t)key, nsems, flags);
  if (id < 0) return ipck_throw_errno(env, errno, "semget");
  return ipck_i64(env, id);
}

/* semSysvOpSync(id, ops, timeoutNs) -> 0 | 1 */
static napi_value js_semop_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int64_t timeout = -1;
  if (!ipck_get_i64(env, argv[2], &timeout)) return ipck_throw_errno(env, EINVAL, "semop");
  semop_ctx *c = read_ops(env, argv[0], argv[1]);
  if (c == NULL) return NULL;
  int64_t r = ipck_waiter_run_sync(semop_block, c, timeout);
  free(c);
  return ipck_waiter_sync_result(env, r, "semtimedop");
}

/* semSysvOpAsync(id, ops, timeoutNs) -> { promise, id } */
static napi_value js_semop_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int64_t timeout = -1;
  if (!ipck_get_i64(env, argv[2], &timeout)) return ipck_throw_errno(env, EINVAL, "semop");
  semop_ctx *c = read_ops(env, argv[0], argv[1]);
  if (c == NULL) return NULL;
  ipck_wait_spec spec = {semop_block, c, free, timeout, NULL, "semtimedop"};
  return ipck_waiter_submit(env, &spec);
}

static bool id_index(napi_env env, napi_callback_info info, size_t n, napi_value *argv, int32_t *id, int32_t *index) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  return ipck_get_i32(env, argv[0], id) && (n < 2 || ipck_get_i32(env, argv[1], index));
}

/* semctl commands that take (id, index) and return an int. */
static napi_value semctl_query(napi_env env, napi_callback_info info, int cmd) {
  napi_value argv[2];
  int32_t id = -1, index = 0;
  if (!id_index(env, info, 2, argv, &id, &index)) return ipck_throw_errno(env, EINVAL, "semctl");
  int r = semctl(id, index, cmd);
  if (r < 0) return ipck_throw_errno(env, errno, "semctl");
  return ipck_i64(env, r);
}
static napi_value js_getval(napi_env env, napi_callback_info info) { return semctl_query(env, info, GETVAL); }
static napi_value js_getpid(napi_env env, napi_callback_info info) { return semctl_query(env, info, GETPID); }
static napi_value js_getncnt(napi_env env, napi_callback_info info) { return semctl_query(env, info, GETNCNT); }
static napi_value js_getzcnt(napi_env env, napi_callback_info info) { return semctl_query(env, info, GETZCNT); }

static napi_value js_setval(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t id = -1, index = 0, value = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_i32(env, argv[1], &index) ||
      !ipck_get_i32(env, argv[2], &value))
    return ipck_throw_errno(env, EINVAL, "semctl");
  union semun arg = {.val = value};
  if (semctl(id, index, SETVAL, arg) < 0) return ipck_throw_errno(env, errno, "semctl");
  return ipck_undefined(env);
}

static int nsems_of(int id) {
  struct semid_ds ds;
  union semun arg = {.buf = &ds};
  if (semctl(id, 0, IPC_STAT, arg) < 0) return -1;
  return (int)ds.sem_nsems;
}

static napi_value js_getall(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "semctl");
  int n = nsems_of(id);
  if (n < 0) return ipck_throw_errno(env, errno, "semctl");
  unsigned short *values = calloc((size_t)n + 1, sizeof *values);
  if (values == NULL) return ipck_throw_errno(env, ENOMEM, "semctl");
  union semun arg = {.array = values};
  if (semctl(id, 0, GETALL, arg) < 0) {
    int err = errno;
    free(values);
    return ipck_throw_errno(env, err, "semctl");
  }
  napi_value out;
  napi_create_array_with_length(env, (size_t)n, &out);
  for (int i = 0; i < n; i++) napi_set_element(env, out, (uint32_t)i, ipck_i64(env, values[i]));
  free(values);
  return out;
}

/* semSysvSetAll(id, values): the array length has been checked against nsems. */
static napi_value js_setall(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t id = -1;
  uint32_t n = 0;
  if (!ipck_get_i32(env, argv[0], &id) || napi_get_array_length(env, argv[1], &n) != napi_ok)
    return ipck_throw_errno(env, EINVAL, "semctl");
  unsigned short *values = calloc((size_t)n + 1, sizeof *values);
  if (values == NULL) return ipck_throw_errno(env, ENOMEM, "semctl");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    uint32_t x = 0;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || !ipck_get_u32(env, v, &x)) {
      free(values);
      return ipck_throw_errno(env, EINVAL, "semctl");
    }
    values[i] = (unsigned short)x;
  }
  union semun arg = {.array = values};
  int r = semctl(id, 0, SETALL, arg);
  int err = errno;
  free(values);
  if (r < 0) return ipck_throw_errno(env, err, "semctl");
  return ipck_undefined(env);
}

/* semSysvStat(id) -> every semid_ds field, times in seconds */
static napi_value js_sem_stat(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "semctl");
  struct semid_ds ds;
  union semun arg = {.buf = &ds};
  if (semctl(id, 0, IPC_STAT, arg) < 0) return ipck_throw_errno(env, errno, "semctl");
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_ipc_perm(env, out, &ds.sem_perm);
  ipck_set_i64(env, out, "nsems", (int64_t)ds.sem_nsems);
  ipck_set_i64(env, out, "otime", ds.sem_otime);
  ipck_set_i64(env, out, "ctime", ds.sem_ctime);
  return out;
}

/* semSysvSet(id, uid, gid, mode): IPC_SET of the permission fields. */
static napi_value js_sem_set(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t id = -1;
  uint32_t uid = 0, gid = 0, mode = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_u32(env, argv[1], &uid) ||
      !ipck_get_u32(env, argv[2], &gid) || !ipck_get_u32(env, argv[3], &mode))
    return ipck_throw_errno(env, EINVAL, "semctl");
  struct semid_ds ds;
  union semun arg = {.buf = &ds};
  if (semctl(id, 0, IPC_STAT, arg) < 0) return ipck_throw_errno(env, errno, "semctl");
  ds.sem_perm.uid = uid;
  ds.sem_perm.gid = gid;
  ds.sem_perm.mode = (unsigned short)mode;
  if (semctl(id, 0, IPC_SET, arg) < 0) return ipck_throw_errno(env, errno, "semctl");
  return ipck_undefined(env);
}

static napi_value js_sem_remove(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "semctl");
  if (semctl(id, 0, IPC_RMID) < 0) return ipck_throw_errno(env, errno, "semctl");
  return ipck_undefined(env);
}

bool ipck_init_sem_sysv(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SEM_UNDO", SEM_UNDO},
    {"IPC_NOWAIT", IPC_NOWAIT},
    {"SEMVMX", 32767}, /* kernel's SEMVMX (linux/sem.h) */
  };
  static const ipck_function functions[] = {
    {"semSysvGet", js_semget},
    {"semSysvOpSync", js_semop_sync},
    {"semSysvOpAsync", js_semop_async},
    {"semSysvGetVal", js_getval},
    {"semSysvSetVal", js_setval},
    {"semSysvGetAll", js_getall},
    {"semSysvSetAll", js_setall},
    {"semSysvGetPid", js_getpid},
    {"semSysvGetNcnt", js_getncnt},
    {"semSysvGetZcnt", js_getzcnt},
    {"semSysvStat", js_sem_stat},
    {"semSysvSet", js_sem_set},
    {"semSysvRemove", js_sem_remove},
  };
  return ipck_export_constants(env, exports, "semSysvConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
