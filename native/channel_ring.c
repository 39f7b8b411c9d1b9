/* Byte copies in and out of the shm: channel rings.
 *
 * Why native: V8 copies into or out of a SharedArrayBuffer-backed typed
 * array with a relaxed-atomic element loop (it must not tear under
 * concurrent access), measured at ~3 GB/s here (64 KiB in ~20 us); plain
 * memcpy is several times faster. The ring protocol already orders these
 * bytes with the Atomics head/tail stores, so a plain copy is correct.
 * Used for large frames only: for small ones the N-API call costs more than
 * the JS copy.
 *
 *   ringCopy(dst, dstOffset, src, srcOffset, length)   both TypedArray/Buffer;
 *   offsets are relative to each view; bounds are checked here too.
 *   ringTake(src, srcOffset, length) -> ArrayBuffer   a copy in reused memory, see below;
 *   ringYield()   sched_yield(), see below;
 *   ringCpu() -> number   the CPU the calling thread runs on (sched_getcpu), -1 if unknown;
 *   ringLeaveCpu(cpu) -> boolean   moves the calling thread off `cpu`, see below. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "core_common.h"
#include "core_sab.h"

static napi_value js_ring_copy(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  void *dst = NULL, *src = NULL;
  size_t dst_len = 0, src_len = 0;
  int64_t dst_off = 0, src_off = 0, len = 0;
  if (!ipck_get_bytes(env, argv[0], &dst, &dst_len) || !ipck_get_i64(env, argv[1], &dst_off) ||
      !ipck_get_bytes(env, argv[2], &src, &src_len) || !ipck_get_i64(env, argv[3], &src_off) ||
      !ipck_get_i64(env, argv[4], &len))
    return ipck_throw_errno(env, EINVAL, "memcpy");
  if (dst_off < 0 || src_off < 0 || len < 0 || (uint64_t)dst_off + (uint64_t)len > dst_len ||
      (uint64_t)src_off + (uint64_t)len > src_len)
    return ipck_throw_errno(env, ERANGE, "memcpy");
  memcpy((char *)dst + dst_off, (const char *)src + src_off, (size_t)len);
  return ipck_undefined(env);
}

/* ringTake(src, srcOffset, length): an ArrayBuffer holding a copy of the
 * bytes, in a block that earlier ArrayBuffers of its size class gave back
 * when the GC collected them (their V8 deleter: no weak handle and no
 * finalizer on the JS thread, unlike an external Buffer of N-API, whose
 * per-Buffer cost made small frames slower than a plain allocation).
 *
 * Why: a fresh Buffer of tens of KiB or more comes from malloc, whose memory
 * glibc gives back to the kernel once enough is free at the top of the heap
 * (or always, for blocks it maps itself: 128 KiB and up by default). Each
 * message then faults its pages in again, and the kernel zeroes each one:
 * measured, a 64 KiB round trip took 260 us that way against 21-29 us in
 * memory that stays mapped. Blocks kept here stay faulted in.
 *
 * Size classes: 2 KiB, then four per power of two (1, 1.25, 1.5, 1.75 times
 * it), so a block is at most 25% larger than what it holds. A collected
 * Buffer's block goes back to its class's free list unless TAKE_KEEP_MAX
 * bytes are kept already; then it is freed. The lists are shared by every
 * environment (main thread and workers) under one mutex, since a block
 * holds no JS state. */
#define TAKE_MIN_SHIFT 11
#define TAKE_MAX_SHIFT 31
#define TAKE_CLASSES (1 + 4 * (TAKE_MAX_SHIFT - TAKE_MIN_SHIFT))
#define TAKE_KEEP_MAX ((size_t)64 << 20)

typedef struct take_block {
  struct take_block *next;
} take_block;

static pthread_mutex_t take_lock = PTHREAD_MUTEX_INITIALIZER;
static take_block *take_free[TAKE_CLASSES];
static size_t take_kept;

/* The class of a block holding len bytes (1 <= len <= 2^TAKE_MAX_SHIFT). */
static int take_class(size_t len) {
  if (len <= ((size_t)1 << TAKE_MIN_SHIFT)) return 0;
  int k = TAKE_MIN_SHIFT;
  while (((size_t)2 << k) < len) k++;
  size_t step = ((size_t)1 << k) / 4;
  size_t quarters = (len - ((size_t)1 << k) + step - 1) / step; /* 1..4 */
  return 4 * (k - TAKE_MIN_SHIFT) + (int)quarters;
}

static size_t take_class_size(int c) {
  if (c == 0) return (size_t)1 << TAKE_MIN_SHIFT;
  int k = TAKE_MIN_SHIFT + (c - 1) / 4;
  size_t quarters = (size_t)((c - 1) % 4 + 1);
  return ((size_t)1 << k) + quarters * (((size_t)1 << k) / 4);
}

static void *take_block_get(int c) {
  pthread_mutex_lock(&take_lock);
  take_block *b = take_free[c];
  if (b != NULL) {
    take_free[c] = b->next;
    take_kept -= take_class_size(c);
  }
  pthread_mutex_unlock(&take_lock);
  return b != NULL ? (void *)b : malloc(take_class_size(c));
}

/* The ArrayBuffer over a block was collected (any thread: ipck_ab_create). */
static void take_block_put(void *data, size_t len, void *hint) {
  (void)len;
  int c = (int)(intptr_t)hint;
  size_t size = take_class_size(c);
  pthread_mutex_lock(&take_lock);
  if (take_kept + size <= TAKE_KEEP_MAX) {
    take_block *b = data;
    b->next = take_free[c];
    take_free[c] = b;
    take_kept += size;
    data = NULL;
  }
  pthread_mutex_unlock(&take_lock);
  free(data);
}

static napi_value js_ring_take(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  void *src = NULL;
  size_t src_len = 0;
  int64_t src_off = 0, len = 0;
  if (!ipck_get_bytes(env, argv[0], &src, &src_len) || !ipck_get_i64(env, argv[1], &src_off) ||
      !ipck_get_i64(env, argv[2], &len))
    return ipck_throw_errno(env, EINVAL, "memcpy");
  if (src_off < 0 || len <= 0 || len > ((int64_t)1 << TAKE_MAX_SHIFT) || (uint64_t)src_off + (uint64_t)len > src_len)
    return ipck_throw_errno(env, ERANGE, "memcpy");
  const char *from = (const char *)src + src_off;
  int c = take_class((size_t)len);
  void *block = take_block_get(c);
  if (block == NULL) return ipck_throw_errno(env, ENOMEM, "malloc");
  memcpy(block, from, (size_t)len);
  napi_value result;
  if (ipck_ab_create(env, block, (size_t)len, take_block_put, (void *)(intptr_t)c, &result) == napi_ok) return result;
  /* A runtime that allows no external ArrayBuffers (a V8 sandbox): a plain copy. */
  take_block_put(block, (size_t)len, (void *)(intptr_t)c);
  void *copy = NULL;
  IPCK_CALL(env, napi_create_arraybuffer(env, (size_t)len, &copy, &result));
  memcpy(copy, from, (size_t)len);
  return result;
}

/* ringGive(arrayBuffer): detaches an ArrayBuffer of ringTake whose message
 * its owner is done with (release()), or whose frame was decoded into other
 * memory: V8 drops the backing store at once and its deleter puts the block
 * back now, not at the next collection, so the next frame is copied into
 * memory the caches still hold. */
static napi_value js_ring_give(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  bool is_buffer = false;
  if (napi_is_arraybuffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer)
    return ipck_throw_errno(env, EINVAL, "free");
  IPCK_CALL(env, napi_detach_arraybuffer(env, argv[0]));
  return ipck_undefined(env);
}

/* ringYield(): sched_yield() between spin slices. On an oversubscribed
 * machine the peer we wait for may be runnable on our own core: spinning
 * without yielding would keep it off the CPU for our whole spin budget
 * (measured: round trip = 2 x budget). With a free core it returns at once. */
static napi_value js_ring_yield(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  return ipck_undefined(env);
}

static napi_value js_ring_cpu(napi_env env, napi_callback_info info) {
  (void)info;
  return ipck_i64(env, sched_getcpu());
}

/* ringLeaveCpu(cpu): narrows the calling thread's affinity to what it
 * allows minus `cpu` (the kernel moves the thread before
 * sched_setaffinity returns) and at once restores the mask it had, so the
 * thread stays free to run anywhere it could and only its position
 * changed. Used when the two spinning peers of an shm: connection share one
 * CPU: a wake-up places the woken peer on its waker's CPU, and two spinning
 * processes on one CPU then hand it to each other with sched_yield (a 4 KiB
 * round trip measured 21 us that way, 7.7 us with the peers on two CPUs).
 * false (nothing changed) when the mask holds no other CPU or a call fails. */
static napi_value js_ring_leave_cpu(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int64_t cpu = -1;
  if (!ipck_get_i64(env, argv[0], &cpu)) return ipck_throw_errno(env, EINVAL, "sched_setaffinity");
  cpu_set_t allowed, others;
  bool moved = false;
  if (cpu >= 0 && cpu < CPU_SETSIZE && sched_getaffinity(0, sizeof allowed, &allowed) == 0 &&
      CPU_ISSET((int)cpu, &allowed) && CPU_COUNT(&allowed) >= 2) {
    others = allowed;
    CPU_CLR((int)cpu, &others);
    moved = sched_setaffinity(0, sizeof others, &others) == 0;
    /* Restoring can only fail if the allowed CPUs changed meanwhile (a cpuset): then the kernel's mask stands. */
    if (moved) (void)sched_setaffinity(0, sizeof allowed, &allowed);
  }
  napi_value result;
  IPCK_CALL(env, napi_get_boolean(env, moved, &result));
  return result;
}

bool ipck_init_ring(napi_env env, napi_value exports) {
  static const ipck_function functions[] = {
    {"ringCopy", js_ring_copy},
    {"ringTake", js_ring_take},
    {"ringGive", js_ring_give},
    {"ringYield", js_ring_yield},
    {"ringCpu", js_ring_cpu},
    {"ringLeaveCpu", js_ring_leave_cpu},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
