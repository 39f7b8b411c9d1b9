/* Doorbells for the shm: channel transport: how one process wakes another
 * process's event loop after writing to a shared ring, and learns that the
 * other process is gone.
 *
 * The doorbell is the connection's control socket itself: the connected Unix
 * stream socket the two sides met on. Ringing sends one byte with
 * MSG_DONTWAIT | MSG_NOSIGNAL, so it never blocks and never raises SIGPIPE
 * whatever the descriptor's file status flags are; the receiving side
 * watches its own end with uv_poll and drains it with MSG_DONTWAIT. End of
 * file on the socket is the peer closing or dying. Each side owns its end of
 * the socket (made by its own socket() or accept()), so a peer cannot change
 * the flags of the descriptor we read or write, as it could with a pipe or
 * eventfd it handed over.
 *
 * JS API (used by src/channel/control.ts):
 *   doorbellRing(fd) -> bool              send 1 byte; false when the socket
 *                                          buffer is full (EAGAIN): the bell
 *                                          is ringing anyway
 *   doorbellDrain(fd) -> count            recv until EAGAIN, at most 64 KiB
 *                                          per call (a peer that floods the
 *                                          socket costs bounded work per
 *                                          wake-up); -1 at end of file
 *   doorbellWait(fd, timeoutNs) -> 1      readable (a ring, or end of file),
 *                                    -1   timeout (timeoutNs < 0: none).
 *                                          Blocks the calling thread: for
 *                                          synchronous receive in workers. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "core_common.h"

#define DRAIN_MAX (64 * 1024)

static napi_value js_doorbell_ring(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "send");
  const char one = 1;
  ssize_t n;
  do n = send(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) return ipck_throw_errno(env, errno, "send");
  napi_value result;
  IPCK_CALL(env, napi_get_boolean(env, n > 0, &result));
  return result;
}

static napi_value js_doorbell_drain(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "recv");
  char buf[4096];
  int64_t total = 0;
  while (total < DRAIN_MAX) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      total += n;
      continue;
    }
    if (n == 0) return ipck_i64(env, -1);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    /* ECONNRESET: the peer is gone, as at end of file. */
    if (errno == ECONNRESET) return ipck_i64(env, -1);
    return ipck_throw_errno(env, errno, "recv");
  }
  return ipck_i64(env, total);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static napi_value js_doorbell_wait(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  int64_t timeout_ns = -1;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i64(env, argv[1], &timeout_ns))
    return ipck_throw_errno(env, EINVAL, "ppoll");
  int64_t deadline = timeout_ns >= 0 ? now_ns() + timeout_ns : -1;
  for (;;) {
    struct timespec rel, *p = NULL;
    if (deadline >= 0) {
      int64_t left = deadline - now_ns();
      if (left < 0) left = 0;
      rel.tv_sec = left / 1000000000;
      rel.tv_nsec = left % 1000000000;
      p = &rel;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
    int r = ppoll(&pfd, 1, p, NULL);
    if (r > 0) {
      if (pfd.revents & POLLNVAL) return ipck_throw_errno(env, EBADF, "ppoll");
      return ipck_i64(env, 1);
    }
    if (r == 0) return ipck_i64(env, -1);
    if (errno != EINTR) return ipck_throw_errno(env, errno, "ppoll");
  }
}

bool ipck_init_doorbell(napi_env env, napi_value exports) {
  static const ipck_function functions[] = {
    {"doorbellRing", js_doorbell_ring},
    {"doorbellDrain", js_doorbell_drain},
    {"doorbellWait", js_doorbell_wait},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
