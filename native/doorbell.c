/* Doorbells for the shm: channel transport: a way for one process to wake
 * another process's event loop after writing to a shared ring.
 *
 * Why a pipe and not an eventfd: the two processes of a shm: channel are
 * unrelated (they meet by name), and an eventfd can only be shared by fork or
 * SCM_RIGHTS; open("/proc/PID/fd/N") on an eventfd fails with ENXIO. The read
 * end of a pipe is watched with uv_poll (src/poller.ts) and the peer reaches
 * the write end with open("/proc/PID/fd/N", O_WRONLY) — no name in any
 * filesystem, so nothing can leak when a process is killed. eventfd is kept
 * for same-process / inherited use. Wake-up cost measured equal (~6 us RTT).
 *
 * JS API (wrapped by src/channel/doorbell.ts):
 *   doorbellPipe() -> [readFd, writeFd]   pipe2(O_NONBLOCK | O_CLOEXEC)
 *   eventfdCreate(initval) -> fd          eventfd(EFD_NONBLOCK | EFD_CLOEXEC)
 *   doorbellRing(fd, isEventfd) -> bool   write 1 byte (8 for eventfd);
 *                                          false when already full (EAGAIN):
 *                                          the bell is ringing anyway
 *   doorbellDrain(fd) -> count            read until EAGAIN; -1 at EOF
 *   doorbellWait(bellFd, hangupFd, timeoutNs) -> 0 bell readable,
 *                                          1 hangupFd readable or hung up,
 *                                          -1 timeout (timeoutNs < 0: none).
 *                                          Blocks the calling thread: for
 *                                          synchronous receive in workers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common.h"

static napi_value js_doorbell_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return ipck_throw_errno(env, errno, "pipe2");
  napi_value arr;
  IPCK_CALL(env, napi_create_array_with_length(env, 2, &arr));
  IPCK_CALL(env, napi_set_element(env, arr, 0, ipck_i64(env, fds[0])));
  IPCK_CALL(env, napi_set_element(env, arr, 1, ipck_i64(env, fds[1])));
  return arr;
}

static napi_value js_eventfd_create(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  uint32_t initval = 0;
  if (!ipck_get_u32(env, argv[0], &initval)) return ipck_throw_errno(env, EINVAL, "eventfd");
  int fd = eventfd(initval, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return ipck_throw_errno(env, errno, "eventfd");
  return ipck_i64(env, fd);
}

static napi_value js_doorbell_ring(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  bool is_eventfd = false;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bool(env, argv[1], &is_eventfd))
    return ipck_throw_errno(env, EINVAL, "write");
  uint64_t one = 1;
  ssize_t n;
  do n = write(fd, &one, is_eventfd ? 8 : 1);
  while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0 && errno != EAGAIN) return ipck_throw_errno(env, errno, "write");
  IPCK_CALL(env, napi_get_boolean(env, n > 0, &result));
  return result;
}

static napi_value js_doorbell_drain(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "read");
  char buf[256];
  int64_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      total += n;
      continue;
    }
    if (n == 0) return ipck_i64(env, total > 0 ? total : -1);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    return ipck_throw_errno(env, errno, "read");
  }
  return ipck_i64(env, total);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The control socket (hangupFd) carries nothing after the handshake, so any
 * readiness on it means the peer closed or died: that ends a synchronous
 * wait as surely as the bell, where the event loop would see 'close'. */
static napi_value js_doorbell_wait(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t bell = -1, hangup = -1;
  int64_t timeout_ns = -1;
  if (!ipck_get_i32(env, argv[0], &bell) || !ipck_get_i32(env, argv[1], &hangup) ||
      !ipck_get_i64(env, argv[2], &timeout_ns))
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
    struct pollfd pfd[2] = {{.fd = bell, .events = POLLIN, .revents = 0},
                            {.fd = hangup, .events = POLLIN | POLLRDHUP, .revents = 0}};
    int r = ppoll(pfd, hangup >= 0 ? 2 : 1, p, NULL);
    if (r > 0) {
      if ((pfd[0].revents | pfd[1].revents) & POLLNVAL) return ipck_throw_errno(env, EBADF, "ppoll");
      return ipck_i64(env, pfd[1].revents ? 1 : 0);
    }
    if (r == 0) return ipck_i64(env, -1);
    if (errno != EINTR) return ipck_throw_errno(env, errno, "ppoll");
  }
}

bool ipck_init_doorbell(napi_env env, napi_value exports) {
  return ipck_export(env, exports, "doorbellPipe", js_doorbell_pipe) &&
         ipck_export(env, exports, "eventfdCreate", js_eventfd_create) &&
         ipck_export(env, exports, "doorbellRing", js_doorbell_ring) &&
         ipck_export(env, exports, "doorbellDrain", js_doorbell_drain) &&
         ipck_export(env, exports, "doorbellWait", js_doorbell_wait);
}
