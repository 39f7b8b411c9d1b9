/* Unix domain sockets below what Node's net offers: SOCK_DGRAM and
 * SOCK_SEQPACKET endpoints, sendmsg/recvmsg with SCM_RIGHTS, SO_PEERCRED, and
 * binding a filesystem path with safe reclaim of a stale socket file.
 *
 * Addresses cross the boundary as Buffers holding the sun_path bytes: a
 * filesystem path without its NUL, or an abstract name with its leading NUL.
 * src/sockets/unix.ts encodes/decodes them and checks the 107-byte limit before any
 * system call. Every descriptor is non-blocking and close-on-exec; readiness
 * comes from the poller (uv_poll) in src/sockets/unix.ts, never a blocking call. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core_common.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))
/* The kernel's SCM_MAX_FD: at most this many descriptors per message. */
#define MAX_FDS 253

/* Fills sa from a sun_path Buffer; returns the address length or 0 if it does not fit. */
static socklen_t make_addr(napi_env env, napi_value v, struct sockaddr_un *sa) {
  void *data;
  size_t len;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (!ipck_get_bytes(env, v, &data, &len) || len == 0 || len > SUN_PATH_MAX) return 0;
  bool abstract = ((const char *)data)[0] == '\0';
  /* A filesystem path needs room for its terminating NUL. */
  if (!abstract && len >= SUN_PATH_MAX) return 0;
  memcpy(sa->sun_path, data, len);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 0 : 1));
}

/* The sun_path bytes of an address returned by the kernel, or undefined when unnamed. */
static napi_value addr_value(napi_env env, const struct sockaddr_un *sa, socklen_t len) {
  size_t off = offsetof(struct sockaddr_un, sun_path);
  if (len <= off || sa->sun_family != AF_UNIX) return ipck_undefined(env);
  size_t n = len - off;
  if (sa->sun_path[0] != '\0') n = strnlen(sa->sun_path, n);
  napi_value buf;
  if (napi_create_buffer_copy(env, n, sa->sun_path, NULL, &buf) != napi_ok) return ipck_undefined(env);
  return buf;
}

/* unixSocket(type) -> fd */
static napi_value js_socket(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t type = 0;
  if (!ipck_get_i32(env, argv[0], &type)) return ipck_throw_errno(env, EINVAL, "socket");
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ipck_throw_errno(env, errno, "socket");
  return ipck_i64(env, fd);
}

/* Is a socket file at sa served by a live process? connect() answers without
 * blocking: ECONNREFUSED means nobody is bound to it any more (a stale file
 * from a server that died); success, EAGAIN (backlog full) or EPROTOTYPE
 * (someone bound with another type) all mean alive. A stream or seqpacket
 * socket that is bound but not yet listening also answers ECONNREFUSED. */
static bool socket_file_is_stale(const struct sockaddr_un *sa, socklen_t len, int type) {
  int probe = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  int r = connect(probe, (const struct sockaddr *)sa, len);
  int err = r == 0 ? 0 : errno;
  close(probe);
  return err == ECONNREFUSED;
}

/* What holds a filesystem path that bind() refused with EADDRINUSE. */
enum occupant {
  OCCUPANT_GONE,  /* nothing any more: the file was removed since */
  OCCUPANT_STALE, /* a socket file nobody is bound to */
  OCCUPANT_LIVE,  /* a live socket, or a file that is not a socket */
};

static enum occupant occupant_of(const struct sockaddr_un *sa, socklen_t len, int type) {
  struct stat st;
  if (lstat(sa->sun_path, &st) != 0) return errno == ENOENT ? OCCUPANT_GONE : OCCUPANT_LIVE;
  if (!S_ISSOCK(st.st_mode)) return OCCUPANT_LIVE;
  return socket_file_is_stale(sa, len, type) ? OCCUPANT_STALE : OCCUPANT_LIVE;
}

/* unixBind(fd, addr) -> 0, or EADDRINUSE when the address is taken (by a live
 * socket, a stale socket file, or a file that is not a socket). Other
 * failures throw. No lock is taken. */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  struct sockaddr_un sa;
  socklen_t len = make_addr(env, argv[1], &sa);
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "bind");
  if (len == 0) return ipck_throw_errno(env, ENAMETOOLONG, "bind");
  if (bind(fd, (const struct sockaddr *)&sa, len) == 0) return ipck_i64(env, 0);
  if (errno == EADDRINUSE) return ipck_i64(env, EADDRINUSE);
  return ipck_throw_errno(env, errno, "bind");
}

static napi_value reclaim_result(napi_env env, int status, int lock_fd) {
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "status", status);
  ipck_set_i64(env, out, "lockFd", lock_fd);
  return out;
}

/* unixReclaim(fd, addr) -> { status, lockFd }, for a filesystem path that
 * unixBind() found taken. Replaces a stale socket file; never touches a live
 * server's path or a file that is not a socket.
 *
 *   status 0            fd is bound to the path. lockFd (>= 0) holds an
 *                       exclusive flock on the path's directory; the caller
 *                       closes it once the socket listens (a bound stream or
 *                       seqpacket socket refuses connections until then, so
 *                       another reclaimer would take it for stale). lockFd is
 *                       -1 when no lock was taken (the file had gone, or the
 *                       directory could not be opened or locked).
 *   status EWOULDBLOCK  the path is a stale socket file and another process
 *                       holds the directory lock; nothing was changed.
 *   status EADDRINUSE   a live socket, a file that is not a socket, or
 *                       another process bound the path meanwhile.
 *
 * The check runs once without the lock, so a live path costs no lock, and
 * again under the lock, which is taken with LOCK_NB and never waited for.
 * Every ipckit process reclaims under this lock, so two of them cannot unlink
 * each other's fresh socket; other programs never unlink, they get
 * EADDRINUSE from bind. */
static napi_value js_reclaim(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  struct sockaddr_un sa;
  socklen_t len = make_addr(env, argv[1], &sa);
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "bind");
  if (len == 0 || sa.sun_path[0] == '\0') return ipck_throw_errno(env, EINVAL, "bind");
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) return ipck_throw_errno(env, errno, "getsockopt");

  enum occupant before = occupant_of(&sa, len, type);
  if (before == OCCUPANT_LIVE) return reclaim_result(env, EADDRINUSE, -1);
  int dirfd = -1;
  if (before == OCCUPANT_STALE) {
    char copy[SUN_PATH_MAX + 1];
    memcpy(copy, sa.sun_path, SUN_PATH_MAX);
    copy[SUN_PATH_MAX] = '\0';
    dirfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0 && flock(dirfd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      close(dirfd);
      dirfd = -1;
      if (err == EWOULDBLOCK) return reclaim_result(env, EWOULDBLOCK, -1);
    }
    /* Checked again: another reclaimer may have replaced the file since. */
    enum occupant now = occupant_of(&sa, len, type);
    if (now == OCCUPANT_LIVE) {
      if (dirfd >= 0) close(dirfd);
      return reclaim_result(env, EADDRINUSE, -1);
    }
    if (now == OCCUPANT_STALE && unlink(sa.sun_path) != 0 && errno != ENOENT) {
      int err = errno;
      if (dirfd >= 0) close(dirfd);
      return ipck_throw_errno(env, err, "unlink");
    }
  }
  if (bind(fd, (const struct sockaddr *)&sa, len) != 0) {
    int err = errno;
    if (dirfd >= 0) close(dirfd); /* releases the flock */
    if (err == EADDRINUSE) return reclaim_result(env, EADDRINUSE, -1);
    return ipck_throw_errno(env, err, "bind");
  }
  return reclaim_result(env, 0, dirfd);
}

/* unixUnlinkIfSame(path, dev, ino) -> bool: removes our socket file, never a successor's. */
static napi_value js_unlink_if_same(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  char path[PATH_MAX];
  int64_t dev = 0, ino = 0;
  if (!ipck_get_string(env, argv[0], path, sizeof path) || !ipck_get_i64(env, argv[1], &dev) ||
      !ipck_get_i64(env, argv[2], &ino))
    return ipck_throw_errno(env, EINVAL, "unlink");
  struct stat st;
  bool removed = false;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (int64_t)st.st_dev == dev && (int64_t)st.st_ino == ino)
    removed = unlink(path) == 0;
  napi_value b;
  napi_get_boolean(env, removed, &b);
  return b;
}

/* unixListen(fd, backlog) */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1, backlog = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &backlog))
    return ipck_throw_errno(env, EINVAL, "listen");
  if (listen(fd, backlog) != 0) return ipck_throw_errno(env, errno, "listen");
  return ipck_undefined(env);
}

/* unixConnect(fd, addr) -> 0, or EAGAIN when the listener's backlog is full
 * (a non-blocking Unix connect does not complete later: the caller retries). */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  struct sockaddr_un sa;
  socklen_t len = make_addr(env, argv[1], &sa);
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EINVAL, "connect");
  if (len == 0) return ipck_throw_errno(env, ENAMETOOLONG, "connect");
  int r;
  do r = connect(fd, (const struct sockaddr *)&sa, len);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno == EAGAIN) return ipck_i64(env, EAGAIN);
  if (r != 0) return ipck_throw_errno(env, errno, "connect");
  return ipck_i64(env, 0);
}

/* unixAccept(fd) -> fd, or -1 when no connection is pending */
static napi_value js_accept(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "accept4");
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)) return ipck_i64(env, -1);
  if (c < 0) return ipck_throw_errno(env, errno, "accept4");
  return ipck_i64(env, c);
}

/* unixSend(fd, data, fds | null, addr | null) -> bytes sent, or -1 when it would block.
 * MSG_NOSIGNAL: a vanished peer is an EPIPE error, never a SIGPIPE. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t fd = -1;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bytes(env, argv[1], &data, &len))
    return ipck_throw_errno(env, EINVAL, "sendmsg");

  struct iovec iov = { .iov_base = data, .iov_len = len };
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  struct sockaddr_un sa;
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t != napi_null && t != napi_undefined) {
    socklen_t alen = make_addr(env, argv[3], &sa);
    if (alen == 0) return ipck_throw_errno(env, ENAMETOOLONG, "sendmsg");
    msg.msg_name = &sa;
    msg.msg_namelen = alen;
  }

  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  bool is_array = false;
  napi_is_array(env, argv[2], &is_array);
  uint32_t nfds = 0;
  if (is_array) napi_get_array_length(env, argv[2], &nfds);
  if (nfds > MAX_FDS) return ipck_throw_errno(env, ETOOMANYREFS, "sendmsg");
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    int *out = (int *)CMSG_DATA(c);
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value e;
      int32_t v = -1;
      if (napi_get_element(env, argv[2], i, &e) != napi_ok || !ipck_get_i32(env, e, &v))
        return ipck_throw_errno(env, EBADF, "sendmsg");
      memcpy(out + i, &v, sizeof v);
    }
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ipck_i64(env, -1);
  if (n < 0) return ipck_throw_errno(env, errno, "sendmsg");
  return ipck_i64(env, n);
}

/* unixRecv(fd, scratch) -> null when nothing is queued, else
 *   { length, fds: number[], from?: Buffer, truncated: bool, fdsTruncated: bool }
 * The message lands in `scratch` (a Buffer owned by the JS socket), so no
 * allocation happens here; MSG_TRUNC makes `length` the real size even when
 * it did not fit. Received descriptors are close-on-exec (MSG_CMSG_CLOEXEC);
 * the JS side closes any the user does not take. */
static napi_value js_recv(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  void *buf = NULL;
  size_t cap = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bytes(env, argv[1], &buf, &cap))
    return ipck_throw_errno(env, EINVAL, "recvmsg");

  struct iovec iov = { .iov_base = buf, .iov_len = cap };
  struct sockaddr_un from;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  if (n < 0) return ipck_throw_errno(env, errno, "recvmsg");

  napi_value out, fds;
  IPCK_CALL(env, napi_create_object(env, &out));
  IPCK_CALL(env, napi_create_array(env, &fds));
  uint32_t count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int v;
      memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof v);
      napi_set_element(env, fds, count++, ipck_i64(env, v));
    }
  }
  ipck_set_i64(env, out, "length", n);
  ipck_set_value(env, out, "fds", fds);
  if (msg.msg_namelen > 0) ipck_set_value(env, out, "from", addr_value(env, &from, msg.msg_namelen));
  napi_value t1, t2;
  napi_get_boolean(env, (msg.msg_flags & MSG_TRUNC) != 0 || (size_t)n > cap, &t1);
  napi_get_boolean(env, (msg.msg_flags & MSG_CTRUNC) != 0, &t2);
  ipck_set_value(env, out, "truncated", t1);
  ipck_set_value(env, out, "fdsTruncated", t2);
  return out;
}

/* unixPeerCred(fd) -> { pid, uid, gid } (SO_PEERCRED: the peer at connect/socketpair time) */
static napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "getsockopt");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return ipck_throw_errno(env, errno, "getsockopt");
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "pid", cred.pid);
  ipck_set_i64(env, out, "uid", cred.uid);
  ipck_set_i64(env, out, "gid", cred.gid);
  return out;
}

/* unixName(fd, peer) -> Buffer | undefined (getsockname / getpeername) */
static napi_value js_name(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  bool peer = false;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bool(env, argv[1], &peer))
    return ipck_throw_errno(env, EBADF, "getsockname");
  struct sockaddr_un sa;
  socklen_t len = sizeof sa;
  int r = peer ? getpeername(fd, (struct sockaddr *)&sa, &len) : getsockname(fd, (struct sockaddr *)&sa, &len);
  if (r != 0) return ipck_throw_errno(env, errno, peer ? "getpeername" : "getsockname");
  return addr_value(env, &sa, len);
}

/* unixSocketType(fd) -> SO_TYPE, to check descriptors handed to us */
static napi_value js_socket_type(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "getsockopt");
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return ipck_throw_errno(env, errno, "getsockopt");
  return ipck_i64(env, type);
}

/* unixShutdown(fd, how) */
static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1, how = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &how))
    return ipck_throw_errno(env, EBADF, "shutdown");
  if (shutdown(fd, how) != 0 && errno != ENOTCONN) return ipck_throw_errno(env, errno, "shutdown");
  return ipck_undefined(env);
}

bool ipck_init_unix(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SUN_PATH_MAX", SUN_PATH_MAX},
    {"MAX_FDS", MAX_FDS},
    {"SHUT_RD", SHUT_RD},
    {"SHUT_WR", SHUT_WR},
    {"SHUT_RDWR", SHUT_RDWR},
  };
  static const ipck_function functions[] = {
    {"unixSocket", js_socket},
    {"unixBind", js_bind},
    {"unixReclaim", js_reclaim},
    {"unixUnlinkIfSame", js_unlink_if_same},
    {"unixListen", js_listen},
    {"unixConnect", js_connect},
    {"unixAccept", js_accept},
    {"unixSend", js_send},
    {"unixRecv", js_recv},
    {"unixPeerCred", js_peer_cred},
    {"unixName", js_name},
    {"unixSocketType", js_socket_type},
    {"unixShutdown", js_shutdown},
  };
  return ipck_export_constants(env, exports, "unixConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
