/* Robust mutex in shared memory (src/sync/mutex.ts), built on a futex lock word
 * and the kernel's robust-futex list.
 *
 * Why not pthread_mutex_t with PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST:
 * a pthread robust mutex belongs to the *thread* that locked it. An async
 * lock() may sleep on a waiter thread; had that thread taken the pthread mutex,
 * the JS thread could not unlock it (EPERM), and the waiter thread exiting
 * would make the kernel declare the owner dead. So an async lock() only
 * sleeps on the word (futex.waitAsync's path, src/sync/mutex.ts) until it looks
 * free, and the JS thread itself takes the lock: the owner recorded in the word is the JS thread's TID (each worker
 * thread is a different TID, so a worker is a different owner).
 *
 * Lock word (the kernel's robust-futex format, see futex(2)):
 *   bits 0-29  TID of the owner (0: free)
 *   bit 30     FUTEX_OWNER_DIED: set by the kernel when the owner exited
 *   bit 31     FUTEX_WAITERS: someone sleeps; unlock must FUTEX_WAKE
 *
 * Robustness: while held, the mutex is linked into the owning thread's robust
 * list — the list glibc registers for every thread with set_robust_list and
 * uses for its own robust mutexes. On thread exit (including kill -9) the
 * kernel walks that list, and for each word still holding the dead TID sets
 * FUTEX_OWNER_DIED, clears the TID and wakes one waiter. The list links the
 * *node* of an entry and finds the word at node + futex_offset, an offset
 * fixed per thread by glibc (-32 on x86_64); so the node sits at
 * -futex_offset bytes into our 64-byte mutex, where glibc's own list code can
 * walk across it. list_op_pending covers the instants between taking the word
 * and linking the node (and unlinking and releasing). We only touch the list
 * on the thread that owns it, as glibc does.
 *
 * Layout (64 bytes, 8-aligned): [0] lock word, [-futex_offset] list node,
 * the rest reserved (zero). All zeros is an unlocked mutex. */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core_common.h"
#include "sync_futex.h"
#include "core_waiter.h"

#define MUTEX_SIZE 64
#define TID_MASK FUTEX_TID_MASK

enum { ACQUIRED = 0, ACQUIRED_OWNER_DIED = 1, BUSY = 2 };

struct rlist {
  struct rlist *next;
};
struct rlist_head {
  struct rlist list;
  long futex_offset;
  struct rlist *list_op_pending;
};

static __thread struct rlist_head *tls_head;
static __thread struct rlist_head own_head; /* only if libc registered none */
static __thread int32_t tls_tid;

static struct rlist_head *robust_head(void) {
  if (tls_head) return tls_head;
  struct rlist_head *head = NULL;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || head == NULL) {
    own_head.list.next = &own_head.list;
    own_head.futex_offset = -32;
    own_head.list_op_pending = NULL;
    if (syscall(SYS_set_robust_list, &own_head, sizeof own_head) != 0) return NULL;
    head = &own_head;
  }
  tls_head = head;
  return head;
}

static int32_t my_tid(void) {
  if (tls_tid == 0) tls_tid = (int32_t)syscall(SYS_gettid);
  return tls_tid;
}

/* Bytes from the lock word to the list node, or -1 if the layout cannot hold it. */
static long node_offset(void) {
  struct rlist_head *h = robust_head();
  if (h == NULL) return -1;
  long off = -h->futex_offset;
  return off >= 8 && off + 8 <= MUTEX_SIZE && off % 8 == 0 ? off : -1;
}

typedef struct mutex_ref {
  _Atomic int32_t *word;
  struct rlist *node;
} mutex_ref;

/* The 64-byte mutex from an Int32Array view over it; exception pending on failure. */
static bool get_mutex(napi_env env, napi_value v, mutex_ref *m) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  long off = node_offset();
  if (off < 0) {
    ipck_throw_errno(env, ENOTSUP, "set_robust_list");
    return false;
  }
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok ||
      type != napi_int32_array || length * 4 < MUTEX_SIZE || (uintptr_t)data % 8 != 0) {
    ipck_throw_errno(env, EINVAL, "futex");
    return false;
  }
  m->word = data;
  m->node = (struct rlist *)((char *)data + off);
  return true;
}

/* Tries to take the lock for this thread. `waited`: we slept, so others may
 * still sleep — keep FUTEX_WAITERS set so our unlock wakes the next one. */
static int try_acquire(mutex_ref *m, bool waited) {
  struct rlist_head *head = robust_head();
  int32_t tid = my_tid();
  head->list_op_pending = m->node;
  int32_t old = atomic_load(m->word);
  for (;;) {
    int32_t owner = old & TID_MASK;
    if (owner == tid) {
      head->list_op_pending = NULL;
      return -EDEADLK;
    }
    if (owner != 0) {
      head->list_op_pending = NULL;
      return BUSY;
    }
    int32_t desired = tid | (old & FUTEX_WAITERS) | (waited ? FUTEX_WAITERS : 0);
    if (atomic_compare_exchange_weak(m->word, &old, desired)) break;
  }
  m->node->next = head->list.next;
  head->list.next = m->node;
  head->list_op_pending = NULL;
  return (old & FUTEX_OWNER_DIED) ? ACQUIRED_OWNER_DIED : ACQUIRED;
}

/* Sleeps until the word has no owner (free, or its owner died). On giving up
 * (timeout, cancel) it passes on a wake it may have consumed: an unlock wakes
 * exactly one sleeper, and that one must not leave the others asleep. */
static int64_t wait_free(ipck_waiter_job *job, void *arg) {
  mutex_ref *m = arg;
  int64_t result;
  for (;;) {
    int32_t old = atomic_load(m->word);
    if ((old & TID_MASK) == 0) return 0;
    if (!(old & FUTEX_WAITERS)) {
      if (!atomic_compare_exchange_strong(m->word, &old, old | FUTEX_WAITERS)) continue;
      old |= FUTEX_WAITERS;
    }
    struct timespec rel;
    int r = ipck_waiter_remaining(job, &rel);
    if (r < 0) { result = -ETIMEDOUT; break; }
    if (ipck_waiter_cancelled(job)) { result = -ECANCELED; break; }
    if (ipck_futex_wait((int32_t *)m->word, old, r ? &rel : NULL) != 0) {
      if (errno == ETIMEDOUT) { result = -ETIMEDOUT; break; }
      if (errno == EINTR && ipck_waiter_cancelled(job)) { result = -ECANCELED; break; }
      if (errno != EAGAIN && errno != EINTR) { result = -errno; break; }
    }
  }
  ipck_futex_wake((int32_t *)m->word, 1);
  return result;
}

/* mutexTryLock(words, waited) -> 0 acquired | 1 acquired, previous owner died | 2 busy */
static napi_value js_try_lock(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  mutex_ref m;
  bool waited = false;
  if (!get_mutex(env, argv[0], &m)) return NULL;
  ipck_get_bool(env, argv[1], &waited);
  int r = try_acquire(&m, waited);
  if (r < 0) return ipck_throw_errno(env, -r, "futex");
  return ipck_i64(env, r);
}

/* mutexLockSync(words, timeoutNs) -> 0 | 1 (owner died); throws ETIMEDOUT */
static napi_value js_lock_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  mutex_ref m;
  int64_t timeout = -1;
  if (!get_mutex(env, argv[0], &m)) return NULL;
  if (!ipck_get_i64(env, argv[1], &timeout)) return ipck_throw_errno(env, EINVAL, "futex");
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool waited = false;
  for (;;) {
    int r = try_acquire(&m, waited);
    if (r < 0) return ipck_throw_errno(env, -r, "futex");
    if (r != BUSY) return ipck_i64(env, r);
    int64_t left = -1;
    if (timeout >= 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      left = timeout - ((int64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec));
      if (left < 0) left = 0;
    }
    int64_t w = ipck_waiter_run_sync(wait_free, &m, left);
    if (w < 0) return ipck_throw_errno(env, (int)-w, "futex");
    waited = true;
  }
}

/* mutexUnlock(words): EPERM unless this thread owns it. */
static napi_value js_unlock(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  mutex_ref m;
  if (!get_mutex(env, argv[0], &m)) return NULL;
  if ((atomic_load(m.word) & TID_MASK) != my_tid()) return ipck_throw_errno(env, EPERM, "futex");
  struct rlist_head *head = robust_head();
  head->list_op_pending = m.node;
  /* Unlink the node; the walk ignores glibc's PI tag in bit 0. */
  struct rlist *prev = &head->list;
  for (int guard = 0; guard < 1 << 20; guard++) {
    struct rlist *next = (struct rlist *)((uintptr_t)prev->next & ~(uintptr_t)1);
    if (next == NULL || next == &head->list) break;
    if (next == m.node) {
      prev->next = m.node->next;
      break;
    }
    prev = next;
  }
  m.node->next = NULL;
  int32_t old = atomic_exchange(m.word, 0);
  head->list_op_pending = NULL;
  if (old & FUTEX_WAITERS) ipck_futex_wake((int32_t *)m.word, 1);
  return ipck_undefined(env);
}

/* mutexState(words) -> { owner, ownerDied, waiters } */
static napi_value js_state(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  mutex_ref m;
  if (!get_mutex(env, argv[0], &m)) return NULL;
  int32_t w = atomic_load(m.word);
  napi_value out, died, waiters;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "owner", w & TID_MASK);
  napi_get_boolean(env, (w & FUTEX_OWNER_DIED) != 0, &died);
  napi_get_boolean(env, (w & FUTEX_WAITERS) != 0, &waiters);
  ipck_set_value(env, out, "ownerDied", died);
  ipck_set_value(env, out, "waiters", waiters);
  return out;
}

static napi_value js_gettid(napi_env env, napi_callback_info info) {
  (void)info;
  return ipck_i64(env, my_tid());
}

bool ipck_init_mutex(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SIZE", MUTEX_SIZE},
    {"ALIGN", 8},
    {"robustOffset", node_offset()},
  };
  static const ipck_function functions[] = {
    {"mutexTryLock", js_try_lock},
    {"mutexLockSync", js_lock_sync},
    {"mutexUnlock", js_unlock},
    {"mutexState", js_state},
    {"mutexThreadId", js_gettid},
  };
  return ipck_export_constants(env, exports, "mutexConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
