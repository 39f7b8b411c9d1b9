/* Owned objects: kernel objects this process created with `owned: true`,
 * removed when the process exits. src/core/owned.ts decides what goes in and
 * when the list is acted on early (a fatal signal); here are only the list
 * and the removal system calls.
 *
 * This is the addon's one process-wide state (everything else lives in
 * per-environment instance data), for two reasons: the main thread and every
 * worker load their own copy of the exports yet must share one list (objects
 * belong to the process, not to the thread that made them), and the list is
 * acted on by an atexit handler, which runs at exit(3) after the last
 * JavaScript has run. JavaScript 'exit' listeners would not do: a worker that
 * is terminated, or still running when the process exits, runs none. The
 * -z nodelete link flag keeps this code loaded until then. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_common.h"

/* Kinds, as src/core/owned.ts numbers them. */
enum owned_kind {
  OWNED_POSIX_SHM = 1, /* shm_unlink(name) */
  OWNED_POSIX_SEM = 2, /* sem_unlink(name) */
  OWNED_POSIX_MQ = 3,  /* mq_unlink(name) */
  OWNED_FILE = 4,      /* unlink(name): a FIFO, a socket file, a mapped file */
  OWNED_SYSV_SHM = 5,  /* shmctl(id, IPC_RMID) */
  OWNED_SYSV_SEM = 6,  /* semctl(id, 0, IPC_RMID) */
  OWNED_SYSV_MSG = 7,  /* msgctl(id, IPC_RMID) */
};

struct owned {
  int kind;
  char *name;   /* POSIX name or file path; NULL for System V */
  char *check;  /* a path whose lstat must still show dev/ino (and type) before a removal by name; NULL: none */
  int64_t dev;
  int64_t ino;
  uint32_t type; /* S_IFMT bits the checked file must have; 0: any */
  int32_t id;    /* System V identifier */
  struct owned *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct owned *list = NULL;
static pthread_once_t at_exit_once = PTHREAD_ONCE_INIT;
/* A child made by fork() without exec inherits the list and the handler: it must not remove its parent's objects. */
static pid_t owner_pid = 0;

static void release(struct owned *o) {
  free(o->name);
  free(o->check);
  free(o);
}

/* Is the name still the object we created? (Someone may have removed it and made another.) */
static bool still_ours(const struct owned *o) {
  if (o->check == NULL) return true;
  struct stat st;
  if (lstat(o->check, &st) != 0) return false;
  if (o->type != 0 && (st.st_mode & S_IFMT) != o->type) return false;
  return (int64_t)st.st_dev == o->dev && (int64_t)st.st_ino == o->ino;
}

static bool remove_one(const struct owned *o) {
  switch (o->kind) {
    case OWNED_POSIX_SHM: return still_ours(o) && shm_unlink(o->name) == 0;
    case OWNED_POSIX_SEM: return still_ours(o) && sem_unlink(o->name) == 0;
    case OWNED_POSIX_MQ: return still_ours(o) && mq_unlink(o->name) == 0;
    case OWNED_FILE: return still_ours(o) && unlink(o->name) == 0;
    case OWNED_SYSV_SHM: return shmctl(o->id, IPC_RMID, NULL) == 0;
    case OWNED_SYSV_SEM: return semctl(o->id, 0, IPC_RMID) == 0;
    case OWNED_SYSV_MSG: return msgctl(o->id, IPC_RMID, NULL) == 0;
    default: return false;
  }
}

/* Removes every listed object and empties the list; returns how many were removed. */
static int remove_all(void) {
  pthread_mutex_lock(&lock);
  struct owned *o = getpid() == owner_pid ? list : NULL;
  if (o == NULL) {
    pthread_mutex_unlock(&lock);
    return 0;
  }
  list = NULL;
  pthread_mutex_unlock(&lock);
  int removed = 0;
  while (o != NULL) {
    struct owned *next = o->next;
    int saved = errno;
    if (remove_one(o)) removed++;
    errno = saved;
    release(o);
    o = next;
  }
  return removed;
}

static void at_exit(void) { (void)remove_all(); }

static void install_at_exit(void) {
  owner_pid = getpid();
  atexit(at_exit);
}

static bool same_target(const struct owned *o, int kind, const char *name, int32_t id) {
  if (o->kind != kind) return false;
  if (kind >= OWNED_SYSV_SHM) return o->id == id;
  return o->name != NULL && strcmp(o->name, name) == 0;
}

static char *copy_string(napi_env env, napi_value v, bool *ok) {
  napi_valuetype t;
  *ok = true;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return NULL;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len >= PATH_MAX) {
    *ok = false;
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL || napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    *ok = false;
    return NULL;
  }
  return s;
}

/* ownedAdd(kind, name | null, check | null, dev, ino, type, id) */
static napi_value js_owned_add(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 7);
  struct owned *o = calloc(1, sizeof *o);
  if (o == NULL) return ipck_throw_errno(env, ENOMEM, "malloc");
  bool name_ok, check_ok;
  o->name = copy_string(env, argv[1], &name_ok);
  o->check = copy_string(env, argv[2], &check_ok);
  if (!name_ok || !check_ok || !ipck_get_i32(env, argv[0], &o->kind) || !ipck_get_i64(env, argv[3], &o->dev) ||
      !ipck_get_i64(env, argv[4], &o->ino) || !ipck_get_u32(env, argv[5], &o->type) ||
      !ipck_get_i32(env, argv[6], &o->id) || o->kind < OWNED_POSIX_SHM || o->kind > OWNED_SYSV_MSG ||
      (o->kind < OWNED_SYSV_SHM && o->name == NULL)) {
    release(o);
    return ipck_throw_errno(env, EINVAL, "owned");
  }
  pthread_once(&at_exit_once, install_at_exit);
  pthread_mutex_lock(&lock);
  o->next = list;
  list = o;
  pthread_mutex_unlock(&lock);
  return ipck_undefined(env);
}

/* ownedForget(kind, name | null, id): the object was removed early; returns how many entries went. */
static napi_value js_owned_forget(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t kind = 0, id = -1;
  char name[PATH_MAX] = "";
  napi_valuetype t;
  if (!ipck_get_i32(env, argv[0], &kind) || !ipck_get_i32(env, argv[2], &id) ||
      napi_typeof(env, argv[1], &t) != napi_ok ||
      (t == napi_string && !ipck_get_string(env, argv[1], name, sizeof name)))
    return ipck_throw_errno(env, EINVAL, "owned");
  int dropped = 0;
  pthread_mutex_lock(&lock);
  for (struct owned **p = &list; *p != NULL;) {
    if (same_target(*p, kind, name, id)) {
      struct owned *gone = *p;
      *p = gone->next;
      release(gone);
      dropped++;
    } else {
      p = &(*p)->next;
    }
  }
  pthread_mutex_unlock(&lock);
  return ipck_i64(env, dropped);
}

/* ownedRemoveAll() -> count: removes every owned object now (before a fatal signal is re-raised). */
static napi_value js_owned_remove_all(napi_env env, napi_callback_info info) {
  (void)info;
  return ipck_i64(env, remove_all());
}

/* ownedCount() -> entries listed now (for tests and diagnostics). */
static napi_value js_owned_count(napi_env env, napi_callback_info info) {
  (void)info;
  int n = 0;
  pthread_mutex_lock(&lock);
  for (struct owned *o = list; o != NULL; o = o->next) n++;
  pthread_mutex_unlock(&lock);
  return ipck_i64(env, n);
}

bool ipck_init_owned(napi_env env, napi_value exports) {
  static const ipck_function functions[] = {
    {"ownedAdd", js_owned_add},
    {"ownedForget", js_owned_forget},
    {"ownedRemoveAll", js_owned_remove_all},
    {"ownedCount", js_owned_count},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
