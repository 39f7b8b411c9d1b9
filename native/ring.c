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
 *   ringYield()   sched_yield(), see below. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "common.h"

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

/* ringYield(): sched_yield() between spin slices. On an oversubscribed
 * machine the peer we wait for may be runnable on our own core: spinning
 * without yielding would keep it off the CPU for our whole spin budget
 * (measured: round trip = 2 x budget). With a free core it returns at once. */
static napi_value js_ring_yield(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  return ipck_undefined(env);
}

bool ipck_init_ring(napi_env env, napi_value exports) {
  return ipck_export(env, exports, "ringCopy", js_ring_copy) &&
         ipck_export(env, exports, "ringYield", js_ring_yield);
}
