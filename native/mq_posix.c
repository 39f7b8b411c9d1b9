/* POSIX message queues: mq_open, mq_close, mq_unlink, mq_getattr,
 * mq_setattr, mq_timedsend, mq_timedreceive, mq_notify.
 *
 * ipckit always opens queues O_NONBLOCK: the asynchronous path retries a
 * non-blocking send/receive whenever the poller (native/core_poller.c) reports the
 * descriptor ready, and libuv's uv_poll_init would make it non-blocking
 * anyway. The synchronous variants (for worker threads) wait with ppoll on the
 * same descriptor and a CLOCK_MONOTONIC deadline, then retry.
 *
 * mq_notify is done with the raw system call and SIGEV_THREAD, which is the
 * kernel's own interface behind glibc's thread notification: the kernel
 * writes a 32-byte cookie to a netlink socket we own. That socket is pollable,
 * so a notification reaches JS on the event loop without signals or threads.
 * Validation lives in src/mq/mq-posix.ts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core_common.h"

/* Messages up to this size are received into a stack buffer. */
#define STACK_MSG 65536
/* From the kernel's ipc/mqueue.c: size of the mq_notify cookie and the code
 * it leaves in the cookie's last byte. */
#define NOTIFY_COOKIE_LEN 32
#define NOTIFY_WOKENUP 1
#define NOTIFY_REMOVED 2

static void deadline_from(int64_t timeout_ns, struct timespec *deadline) {
  clock_gettime(CLOCK_MONOTONIC, deadline);
  deadline->tv_sec += timeout_ns / 1000000000;
  deadline->tv_nsec += timeout_ns % 1000000000;
  if (deadline->tv_nsec >= 1000000000) {
    deadline->tv_sec++;
    deadline->tv_nsec -= 1000000000;
  }
}

/* Sleeps until fd is ready for `events` or the deadline (NULL: none) passes.
 * Returns 0 when ready, or an errno (ETIMEDOUT). */
static int wait_ready(int fd, short events, const struct timespec *deadline) {
  for (;;) {
    struct timespec rel, *p = NULL;
    if (deadline) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t left = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 +
                     (deadline->tv_nsec - now.tv_nsec);
      if (left <= 0) return ETIMEDOUT;
      rel.tv_sec = left / 1000000000;
      rel.tv_nsec = left % 1000000000;
      p = &rel;
    }
    struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
    int r = ppoll(&pfd, 1, p, NULL);
    if (r > 0) return (pfd.revents & POLLNVAL) ? EBADF : 0;
    if (r == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

/* mqOpen(name, oflag, mode, maxMessages, messageSize) -> fd.
 * maxMessages 0 means "no attributes": the system defaults apply. */
static napi_value js_mq_open(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  char name[NAME_MAX + 2];
  int32_t oflag = 0;
  uint32_t mode = 0;
  int64_t maxmsg = 0, msgsize = 0;
  if (!ipck_get_string(env, argv[0], name, sizeof name) || !ipck_get_i32(env, argv[1], &oflag) ||
      !ipck_get_u32(env, argv[2], &mode) || !ipck_get_i64(env, argv[3], &maxmsg) ||
      !ipck_get_i64(env, argv[4], &msgsize))
    return ipck_throw_errno(env, EINVAL, "mq_open");
  struct mq_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.mq_maxmsg = maxmsg;
  attr.mq_msgsize = msgsize;
  mqd_t q = mq_open(name, oflag, (mode_t)mode, maxmsg > 0 ? &attr : NULL);
  if (q == (mqd_t)-1) return ipck_throw_errno(env, errno, "mq_open");
  return ipck_i64(env, q);
}

/* mqClose(fd) */
static napi_value js_mq_close(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "mq_close");
  if (mq_close(fd) != 0) return ipck_throw_errno(env, errno, "mq_close");
  return ipck_undefined(env);
}

/* mqUnlink(name) */
static napi_value js_mq_unlink(napi_env env, napi_callback_info info) {
  return ipck_unlink_name(env, info, mq_unlink, "mq_unlink");
}

static napi_value attr_object(napi_env env, const struct mq_attr *a) {
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "flags", a->mq_flags);
  ipck_set_i64(env, out, "maxmsg", a->mq_maxmsg);
  ipck_set_i64(env, out, "msgsize", a->mq_msgsize);
  ipck_set_i64(env, out, "curmsgs", a->mq_curmsgs);
  return out;
}

/* mqGetattr(fd) -> { flags, maxmsg, msgsize, curmsgs } */
static napi_value js_mq_getattr(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "mq_getattr");
  struct mq_attr a;
  if (mq_getattr(fd, &a) != 0) return ipck_throw_errno(env, errno, "mq_getattr");
  return attr_object(env, &a);
}

/* One non-blocking send. 0: sent; EAGAIN: full; other errno: failure. */
/* The deadline of every "try" operation: long past. O_NONBLOCK belongs to
 * the open file description, which a descriptor received from another
 * process shares with it, so that process could clear it; with an expired
 * absolute timeout mq_timedsend/mq_timedreceive return at once either way
 * (EAGAIN with O_NONBLOCK, ETIMEDOUT without), so a try never blocks. */
static const struct timespec EXPIRED = {0, 0};

static int send_once(int fd, const void *data, size_t len, unsigned prio) {
  for (;;) {
    if (mq_timedsend(fd, data, len, prio, &EXPIRED) == 0) return 0;
    if (errno == ETIMEDOUT) return EAGAIN;
    if (errno != EINTR) return errno;
  }
}

/* mqTrySend(fd, data, priority) -> true, or false when the queue is full. */
static napi_value js_mq_try_send(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t fd = -1;
  uint32_t prio = 0;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bytes(env, argv[1], &data, &len) ||
      !ipck_get_u32(env, argv[2], &prio))
    return ipck_throw_errno(env, EINVAL, "mq_send");
  int err = send_once(fd, data, len, prio);
  if (err != 0 && err != EAGAIN) return ipck_throw_errno(env, err, "mq_send");
  napi_value out;
  napi_get_boolean(env, err == 0, &out);
  return out;
}

/* mqSendMany(fd, [data...], priority, start) -> how many were sent from
 * `start` on before the queue was full. One N-API call for a whole batch. */
static napi_value js_mq_send_many(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t fd = -1;
  uint32_t prio = 0, start = 0, n = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_u32(env, argv[2], &prio) ||
      !ipck_get_u32(env, argv[3], &start) || napi_get_array_length(env, argv[1], &n) != napi_ok)
    return ipck_throw_errno(env, EINVAL, "mq_send");
  uint32_t i = start;
  for (; i < n; i++) {
    napi_value item;
    void *data = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &item) != napi_ok || !ipck_get_bytes(env, item, &data, &len))
      return ipck_throw_errno(env, EINVAL, "mq_send");
    int err = send_once(fd, data, len, prio);
    if (err == EAGAIN) break;
    if (err != 0) return ipck_throw_errno(env, err, "mq_send");
  }
  return ipck_i64(env, i - start);
}

/* Receives one message into buf (cap >= the queue's mq_msgsize).
 * Returns its length, or -errno (-EAGAIN when empty). */
static ssize_t receive_once(int fd, char *buf, size_t cap, unsigned *prio) {
  for (;;) {
    ssize_t n = mq_timedreceive(fd, buf, cap, prio, &EXPIRED);
    if (n >= 0) return n;
    if (errno == ETIMEDOUT) return -EAGAIN;
    if (errno != EINTR) return -errno;
  }
}

static napi_value message_object(napi_env env, const char *buf, size_t len, unsigned prio) {
  napi_value out, data;
  IPCK_CALL(env, napi_create_object(env, &out));
  IPCK_CALL(env, napi_create_buffer_copy(env, len, buf, NULL, &data));
  ipck_set_value(env, out, "data", data);
  ipck_set_i64(env, out, "priority", prio);
  return out;
}

typedef struct {
  char stack[STACK_MSG];
  char *heap;
} msgbuf_t;

static char *msgbuf_get(msgbuf_t *b, size_t cap) {
  b->heap = NULL;
  if (cap <= STACK_MSG) return b->stack;
  b->heap = malloc(cap);
  return b->heap;
}

/* mqTryReceive(fd, messageSize) -> { data, priority } or null when empty. */
static napi_value js_mq_try_receive(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  int64_t cap = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i64(env, argv[1], &cap) || cap <= 0)
    return ipck_throw_errno(env, EINVAL, "mq_receive");
  msgbuf_t b;
  char *buf = msgbuf_get(&b, (size_t)cap);
  if (buf == NULL) return ipck_throw_errno(env, ENOMEM, "mq_receive");
  unsigned prio = 0;
  ssize_t n = receive_once(fd, buf, (size_t)cap, &prio);
  napi_value out;
  if (n >= 0) {
    out = message_object(env, buf, (size_t)n, prio);
  } else if (n == -EAGAIN) {
    napi_get_null(env, &out);
  } else {
    free(b.heap);
    return ipck_throw_errno(env, (int)-n, "mq_receive");
  }
  free(b.heap);
  return out;
}

/* mqReceiveMany(fd, messageSize, max) -> [{ data, priority }...], possibly
 * empty: everything available up to `max`, in the kernel's order. */
static napi_value js_mq_receive_many(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t fd = -1;
  int64_t cap = 0;
  uint32_t max = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i64(env, argv[1], &cap) ||
      !ipck_get_u32(env, argv[2], &max) || cap <= 0)
    return ipck_throw_errno(env, EINVAL, "mq_receive");
  msgbuf_t b;
  char *buf = msgbuf_get(&b, (size_t)cap);
  if (buf == NULL) return ipck_throw_errno(env, ENOMEM, "mq_receive");
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) {
    free(b.heap);
    ipck_throw_napi_failure(env, "napi_create_array");
    return NULL;
  }
  for (uint32_t i = 0; i < max; i++) {
    unsigned prio = 0;
    ssize_t n = receive_once(fd, buf, (size_t)cap, &prio);
    if (n == -EAGAIN) break;
    if (n < 0) {
      /* Messages already taken must not be lost: return them, and let the
       * next call report the error. */
      if (i > 0) break;
      free(b.heap);
      return ipck_throw_errno(env, (int)-n, "mq_receive");
    }
    napi_value m = message_object(env, buf, (size_t)n, prio);
    if (m == NULL || napi_set_element(env, out, i, m) != napi_ok) break;
  }
  free(b.heap);
  return out;
}

/* mqSendSync(fd, data, priority, timeoutNs): blocks this thread (workers).
 * timeoutNs < 0: no deadline. Throws ETIMEDOUT when the deadline passes. */
static napi_value js_mq_send_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t fd = -1;
  uint32_t prio = 0;
  int64_t timeout_ns = -1;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bytes(env, argv[1], &data, &len) ||
      !ipck_get_u32(env, argv[2], &prio) || !ipck_get_i64(env, argv[3], &timeout_ns))
    return ipck_throw_errno(env, EINVAL, "mq_timedsend");
  struct timespec deadline;
  if (timeout_ns >= 0) deadline_from(timeout_ns, &deadline);
  for (;;) {
    int err = send_once(fd, data, len, prio);
    if (err == 0) return ipck_undefined(env);
    if (err != EAGAIN) return ipck_throw_errno(env, err, "mq_timedsend");
    err = wait_ready(fd, POLLOUT, timeout_ns >= 0 ? &deadline : NULL);
    if (err != 0) return ipck_throw_errno(env, err, "mq_timedsend");
  }
}

/* mqReceiveSync(fd, messageSize, timeoutNs) -> { data, priority } */
static napi_value js_mq_receive_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t fd = -1;
  int64_t cap = 0, timeout_ns = -1;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i64(env, argv[1], &cap) ||
      !ipck_get_i64(env, argv[2], &timeout_ns) || cap <= 0)
    return ipck_throw_errno(env, EINVAL, "mq_timedreceive");
  msgbuf_t b;
  char *buf = msgbuf_get(&b, (size_t)cap);
  if (buf == NULL) return ipck_throw_errno(env, ENOMEM, "mq_timedreceive");
  struct timespec deadline;
  if (timeout_ns >= 0) deadline_from(timeout_ns, &deadline);
  for (;;) {
    unsigned prio = 0;
    ssize_t n = receive_once(fd, buf, (size_t)cap, &prio);
    int err = 0;
    if (n >= 0) {
      napi_value out = message_object(env, buf, (size_t)n, prio);
      free(b.heap);
      return out;
    }
    if (n != -EAGAIN) err = (int)-n;
    else err = wait_ready(fd, POLLIN, timeout_ns >= 0 ? &deadline : NULL);
    if (err != 0) {
      free(b.heap);
      return ipck_throw_errno(env, err, "mq_timedreceive");
    }
  }
}

/* mqNotifySocket() -> a non-blocking netlink socket for mq_notify cookies. */
static napi_value js_mq_notify_socket(napi_env env, napi_callback_info info) {
  (void)info;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (s < 0) return ipck_throw_errno(env, errno, "socket");
  return ipck_i64(env, s);
}

/* mqNotify(fd, socket): registers this process for the queue's next
 * empty -> non-empty transition, delivered as a cookie on `socket`;
 * socket -1 removes the registration. EBUSY: another process is registered. */
static napi_value js_mq_notify(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1, sock = -1;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &sock))
    return ipck_throw_errno(env, EINVAL, "mq_notify");
  long r;
  if (sock < 0) {
    r = syscall(SYS_mq_notify, fd, NULL);
  } else {
    unsigned char cookie[NOTIFY_COOKIE_LEN];
    memset(cookie, 0, sizeof cookie);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_signo = sock;
    sev.sigev_value.sival_ptr = cookie;
    r = syscall(SYS_mq_notify, fd, &sev);
  }
  if (r != 0) return ipck_throw_errno(env, errno, "mq_notify");
  return ipck_undefined(env);
}

/* mqNotifyRead(socket) -> [code...]: drains the cookies the kernel queued;
 * 1 = a message arrived (the registration is then gone), 2 = removed. */
static napi_value js_mq_notify_read(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t sock = -1;
  if (!ipck_get_i32(env, argv[0], &sock)) return ipck_throw_errno(env, EBADF, "recv");
  napi_value out;
  IPCK_CALL(env, napi_create_array(env, &out));
  for (uint32_t i = 0;;) {
    unsigned char cookie[NOTIFY_COOKIE_LEN];
    ssize_t n = recv(sock, cookie, sizeof cookie, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ipck_throw_errno(env, errno, "recv");
    }
    if (n != NOTIFY_COOKIE_LEN) continue;
    napi_set_element(env, out, i++, ipck_i64(env, cookie[NOTIFY_COOKIE_LEN - 1]));
  }
  return out;
}

bool ipck_init_mq_posix(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"O_NONBLOCK", O_NONBLOCK},
    {"MQ_PRIO_MAX", sysconf(_SC_MQ_PRIO_MAX)},
    {"NOTIFY_WOKENUP", NOTIFY_WOKENUP},
    {"NOTIFY_REMOVED", NOTIFY_REMOVED},
  };
  static const ipck_function functions[] = {
    {"mqOpen", js_mq_open},
    {"mqClose", js_mq_close},
    {"mqUnlink", js_mq_unlink},
    {"mqGetattr", js_mq_getattr},
    {"mqTrySend", js_mq_try_send},
    {"mqSendMany", js_mq_send_many},
    {"mqTryReceive", js_mq_try_receive},
    {"mqReceiveMany", js_mq_receive_many},
    {"mqSendSync", js_mq_send_sync},
    {"mqReceiveSync", js_mq_receive_sync},
    {"mqNotifySocket", js_mq_notify_socket},
    {"mqNotify", js_mq_notify},
    {"mqNotifyRead", js_mq_notify_read},
  };
  return ipck_export_constants(env, exports, "mqConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
