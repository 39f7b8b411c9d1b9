/* Anonymous pipes (pipe2) and socket pairs (socketpair).
 *
 * Node cannot make a real pipe(2): spawn's stdio "pipes" are socketpairs in
 * libuv. Both calls return close-on-exec descriptors
 * so they reach a child only when handed to it explicitly (spawn's stdio dup2s
 * them, which clears the flag on the child's copy). src/pipes/pipe.ts wraps them in
 * net.Socket, which drives them with epoll, never the threadpool. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_common.h"

static napi_value fd_pair(napi_env env, int fds[2]) {
  napi_value arr;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    ipck_throw_napi_failure(env, "create array");
    return NULL;
  }
  napi_set_element(env, arr, 0, ipck_i64(env, fds[0]));
  napi_set_element(env, arr, 1, ipck_i64(env, fds[1]));
  return arr;
}

/* pipeCreate(nonBlocking) -> [readFd, writeFd] */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  bool nonblock = false;
  if (!ipck_get_bool(env, argv[0], &nonblock)) return ipck_throw_errno(env, EINVAL, "pipe2");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) != 0)
    return ipck_throw_errno(env, errno, "pipe2");
  return fd_pair(env, fds);
}

/* socketpairCreate(type, nonBlocking) -> [fd, fd]; AF_UNIX. */
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t type = 0;
  bool nonblock = false;
  if (!ipck_get_i32(env, argv[0], &type) || !ipck_get_bool(env, argv[1], &nonblock))
    return ipck_throw_errno(env, EINVAL, "socketpair");
  int fds[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0, fds) != 0)
    return ipck_throw_errno(env, errno, "socketpair");
  return fd_pair(env, fds);
}

/* fdSetNonBlocking(fd, on): spawn children expect blocking stdio. */
static napi_value js_fd_set_nonblocking(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  bool on = false;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_bool(env, argv[1], &on))
    return ipck_throw_errno(env, EBADF, "fcntl");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return ipck_throw_errno(env, errno, "fcntl");
  int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want != fl && fcntl(fd, F_SETFL, want) != 0) return ipck_throw_errno(env, errno, "fcntl");
  return ipck_undefined(env);
}

/* pipeGetCapacity(fd) -> bytes (F_GETPIPE_SZ) */
static napi_value js_pipe_capacity(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "fcntl");
  int n = fcntl(fd, F_GETPIPE_SZ);
  if (n < 0) return ipck_throw_errno(env, errno, "fcntl");
  return ipck_i64(env, n);
}

/* pipeSetCapacity(fd, bytes) -> bytes actually set (F_SETPIPE_SZ) */
static napi_value js_pipe_set_capacity(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1, size = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &size))
    return ipck_throw_errno(env, EINVAL, "fcntl");
  int n = fcntl(fd, F_SETPIPE_SZ, size);
  if (n < 0) return ipck_throw_errno(env, errno, "fcntl");
  return ipck_i64(env, n);
}

/* fdClose(fd): close(2) for descriptors the addon made. Node's fs.closeSync
 * warns in worker threads about descriptors it did not open itself
 * ("closed but not opened in unmanaged mode"). EINTR still closed it on Linux. */
static napi_value js_fd_close(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t fd = -1;
  if (!ipck_get_i32(env, argv[0], &fd)) return ipck_throw_errno(env, EBADF, "close");
  if (close(fd) != 0 && errno != EINTR) return ipck_throw_errno(env, errno, "close");
  return ipck_undefined(env);
}

bool ipck_init_pipe(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"SOCK_STREAM", SOCK_STREAM},
    {"SOCK_DGRAM", SOCK_DGRAM},
    {"SOCK_SEQPACKET", SOCK_SEQPACKET},
    {"PIPE_BUF", PIPE_BUF},
  };
  static const ipck_function functions[] = {
    {"pipeCreate", js_pipe},
    {"socketpairCreate", js_socketpair},
    {"fdSetNonBlocking", js_fd_set_nonblocking},
    {"fdClose", js_fd_close},
    {"pipeGetCapacity", js_pipe_capacity},
    {"pipeSetCapacity", js_pipe_set_capacity},
  };
  return ipck_export_constants(env, exports, "pipeConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
