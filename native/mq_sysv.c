/* System V message queues: msgget, msgsnd, msgrcv, msgctl.
 *
 * msgsnd/msgrcv have no timeout and no pollable descriptor, so a blocking
 * send or receive runs on a waiter thread (native/core_waiter.c), never on the
 * libuv threadpool. The deadline is a POSIX timer aimed at that very thread
 * (SIGEV_THREAD_ID) with the waiter's wake signal: the system call fails with
 * EINTR, the block function sees the deadline has passed and returns
 * ETIMEDOUT. The same block functions serve the Sync variants on the calling
 * thread. Non-blocking attempts (IPC_NOWAIT) run directly on the JS thread,
 * and the TypeScript layer tries one before starting a wait.
 * Validation and type-selection checks live in src/mq/mq-sysv.ts. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core_common.h"
#include "core_waiter.h"

#define STACK_MSG 65536

/* struct msgbuf of msgsnd(2)/msgrcv(2) with a flexible mtext. */
struct msgbuf_long {
  long mtype;
  char mtext[];
};

/* ---- deadline timer ---- */

typedef struct {
  timer_t timer;
  bool armed;
} deadline_timer;

/* Arms a timer that interrupts this thread at the job's deadline, and again
 * every millisecond after it: a signal that lands just before the thread
 * enters msgsnd/msgrcv interrupts nothing, and a one-shot timer would then
 * leave the call blocked past its deadline for good. */
static int arm_deadline(ipck_waiter_job *job, deadline_timer *t) {
  t->armed = false;
  const struct timespec *deadline = ipck_waiter_deadline(job);
  if (deadline == NULL) return 0;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = IPCK_WAKE_SIGNAL;
  sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer) != 0) return errno;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value = *deadline;
  its.it_interval.tv_nsec = 1000000;
  if (timer_settime(t->timer, TIMER_ABSTIME, &its, NULL) != 0) {
    int err = errno;
    timer_delete(t->timer);
    return err;
  }
  t->armed = true;
  return 0;
}

static void disarm_deadline(deadline_timer *t) {
  if (t->armed) timer_delete(t->timer);
  t->armed = false;
}

/* After EINTR: why were we woken? 0 = retry. */
static int64_t woken_why(ipck_waiter_job *job) {
  struct timespec rel;
  if (ipck_waiter_cancelled(job)) return -ECANCELED;
  if (ipck_waiter_remaining(job, &rel) < 0) return -ETIMEDOUT;
  return 0;
}

/* Calls once(ctx) (msgsnd or msgrcv: >= 0 done, -1 with errno) until it is
 * done, fails with another error than EINTR, or the job is cancelled or past
 * its deadline (the timer's signal is the EINTR that lets us see it). */
static int64_t until_done(ipck_waiter_job *job, int64_t (*once)(void *ctx), void *ctx) {
  deadline_timer t;
  int err = arm_deadline(job, &t);
  if (err) return -err;
  int64_t result;
  for (;;) {
    if ((result = once(ctx)) >= 0) break;
    if (errno != EINTR) {
      result = -errno;
      break;
    }
    if ((result = woken_why(job)) != 0) break;
  }
  disarm_deadline(&t);
  return result;
}

/* ---- blocking send ---- */

typedef struct {
  int id;
  size_t len; /* of mtext */
  struct msgbuf_long *msg;
} send_ctx;

static void free_send(void *p) {
  send_ctx *c = p;
  if (c) free(c->msg);
  free(c);
}

static int64_t send_once(void *p) {
  send_ctx *c = p;
  return msgsnd(c->id, c->msg, c->len, 0);
}

static int64_t block_send(ipck_waiter_job *job, void *p) {
  return until_done(job, send_once, p);
}

/* ---- blocking receive ---- */

typedef struct {
  int id;
  long type;
  int flags;
  size_t cap;  /* of mtext */
  struct msgbuf_long *msg; /* cap + sizeof(long) bytes */
} recv_ctx;

static int64_t receive_once(void *p) {
  recv_ctx *c = p;
  return msgrcv(c->id, c->msg, c->cap, c->type, c->flags);
}

static int64_t block_receive(ipck_waiter_job *job, void *p) {
  return until_done(job, receive_once, p);
}

/* The Sync variants run the block functions on this thread, which must then
 * accept the wake signal for the deadline timer to interrupt it. */
static int64_t run_sync(ipck_block_fn fn, void *ctx, int64_t timeout_ns) {
  sigset_t wake, old;
  sigemptyset(&wake);
  sigaddset(&wake, IPCK_WAKE_SIGNAL);
  pthread_sigmask(SIG_UNBLOCK, &wake, &old);
  int64_t r = ipck_waiter_run_sync(fn, ctx, timeout_ns);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

/* ---- JS functions ---- */

/* mqSysvGet(key, flags) -> id */
static napi_value js_msgget(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t key = 0, flags = 0;
  if (!ipck_get_i32(env, argv[0], &key) || !ipck_get_i32(env, argv[1], &flags))
    return ipck_throw_errno(env, EINVAL, "msgget");
  int id = msgget((key_t)key, flags);
  if (id < 0) return ipck_throw_errno(env, errno, "msgget");
  return ipck_i64(env, id);
}

/* Args (id, type, data, timeoutNs) of the blocking sends: a copy of the
 * message to send, and the timeout; NULL if an argument is wrong. */
static send_ctx *make_send(napi_env env, napi_value *argv, int64_t *timeout_ns) {
  int32_t id = -1;
  int64_t type = 0;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_i64(env, argv[1], &type) ||
      !ipck_get_bytes(env, argv[2], &data, &len) || !ipck_get_i64(env, argv[3], timeout_ns))
    return NULL;
  send_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->msg = malloc(sizeof(long) + (len ? len : 1));
  if (c->msg == NULL) {
    free(c);
    return NULL;
  }
  c->id = id;
  c->len = len;
  c->msg->mtype = (long)type;
  if (len) memcpy(c->msg->mtext, data, len);
  return c;
}

/* One IPC_NOWAIT msgsnd of `data` as a message of `type`. 0, EAGAIN, or an errno. */
static int send_nowait(int id, long type, const void *data, size_t len) {
  _Alignas(long) char stack[sizeof(long) + 4096];
  struct msgbuf_long *m = len <= 4096 ? (struct msgbuf_long *)stack : malloc(sizeof(long) + len);
  if (m == NULL) return ENOMEM;
  m->mtype = type;
  if (len) memcpy(m->mtext, data, len);
  int r;
  while ((r = msgsnd(id, m, len, IPC_NOWAIT)) != 0 && errno == EINTR) {
  }
  int err = r == 0 ? 0 : errno;
  if ((char *)m != stack) free(m);
  return err;
}

/* mqSysvTrySend(id, type, data) -> true, or false when the queue is full. */
static napi_value js_msg_try_send(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t id = -1;
  int64_t type = 0;
  void *data = NULL;
  size_t len = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_i64(env, argv[1], &type) ||
      !ipck_get_bytes(env, argv[2], &data, &len))
    return ipck_throw_errno(env, EINVAL, "msgsnd");
  int err = send_nowait(id, (long)type, data, len);
  if (err != 0 && err != EAGAIN) return ipck_throw_errno(env, err, "msgsnd");
  napi_value out;
  napi_get_boolean(env, err == 0, &out);
  return out;
}

/* mqSysvSendMany(id, type, [data...], start) -> how many were sent from `start`
 * on before the queue was full (IPC_NOWAIT). */
static napi_value js_msg_send_many(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t id = -1;
  int64_t type = 0;
  uint32_t n = 0, start = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_i64(env, argv[1], &type) ||
      napi_get_array_length(env, argv[2], &n) != napi_ok || !ipck_get_u32(env, argv[3], &start))
    return ipck_throw_errno(env, EINVAL, "msgsnd");
  uint32_t i = start;
  for (; i < n; i++) {
    napi_value item;
    void *data = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[2], i, &item) != napi_ok || !ipck_get_bytes(env, item, &data, &len))
      return ipck_throw_errno(env, EINVAL, "msgsnd");
    int err = send_nowait(id, (long)type, data, len);
    if (err == EAGAIN) break;
    if (err != 0) return ipck_throw_errno(env, err, "msgsnd");
  }
  return ipck_i64(env, i - start);
}

/* mqSysvSendSync(id, type, data, timeoutNs): blocks this thread. */
static napi_value js_msg_send_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int64_t timeout_ns = -1;
  send_ctx *c = make_send(env, argv, &timeout_ns);
  if (c == NULL) return ipck_throw_errno(env, EINVAL, "msgsnd");
  int64_t r = run_sync(block_send, c, timeout_ns);
  free_send(c);
  return ipck_waiter_sync_result(env, r, "msgsnd");
}

/* mqSysvSendAsync(id, type, data, timeoutNs) -> { promise, id } on a waiter thread. */
static napi_value js_msg_send_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int64_t timeout_ns = -1;
  send_ctx *c = make_send(env, argv, &timeout_ns);
  if (c == NULL) return ipck_throw_errno(env, EINVAL, "msgsnd");
  ipck_wait_spec spec = {block_send, c, free_send, timeout_ns, NULL, "msgsnd"};
  return ipck_waiter_submit(env, &spec);
}

static napi_value received(napi_env env, const struct msgbuf_long *m, size_t len) {
  napi_value out, data;
  IPCK_CALL(env, napi_create_object(env, &out));
  IPCK_CALL(env, napi_create_buffer_copy(env, len, m->mtext, NULL, &data));
  ipck_set_i64(env, out, "type", m->mtype);
  ipck_set_value(env, out, "data", data);
  return out;
}

/* Args (id, maxSize, type, flags): the receive parameters. */
static bool get_recv_args(napi_env env, napi_value *argv, int32_t *id, int64_t *cap, int64_t *type,
                          int32_t *flags) {
  return ipck_get_i32(env, argv[0], id) && ipck_get_i64(env, argv[1], cap) &&
         ipck_get_i64(env, argv[2], type) && ipck_get_i32(env, argv[3], flags) && *cap >= 0;
}

static struct msgbuf_long *alloc_msg(char *stack, size_t stack_len, size_t cap) {
  if (sizeof(long) + cap <= stack_len) return (struct msgbuf_long *)stack;
  return malloc(sizeof(long) + cap);
}

/* mqSysvTryReceive(id, maxSize, type, flags) -> { type, data } or null (ENOMSG). */
static napi_value js_msg_try_receive(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t id = -1, flags = 0;
  int64_t cap = 0, type = 0;
  if (!get_recv_args(env, argv, &id, &cap, &type, &flags)) return ipck_throw_errno(env, EINVAL, "msgrcv");
  _Alignas(long) char stack[STACK_MSG];
  struct msgbuf_long *m = alloc_msg(stack, sizeof stack, (size_t)cap);
  if (m == NULL) return ipck_throw_errno(env, ENOMEM, "msgrcv");
  ssize_t n;
  while ((n = msgrcv(id, m, (size_t)cap, (long)type, flags | IPC_NOWAIT)) < 0 && errno == EINTR) {
  }
  int err = n < 0 ? errno : 0;
  napi_value out = NULL;
  if (n >= 0) out = received(env, m, (size_t)n);
  else if (err == ENOMSG) napi_get_null(env, &out);
  if ((char *)m != stack) free(m);
  if (out == NULL) return ipck_throw_errno(env, err ? err : ENOMEM, "msgrcv");
  return out;
}

/* mqSysvReceiveMany(id, maxSize, type, flags, max) -> [{ type, data }...] */
static napi_value js_msg_receive_many(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  int32_t id = -1, flags = 0;
  int64_t cap = 0, type = 0;
  uint32_t max = 0;
  if (!get_recv_args(env, argv, &id, &cap, &type, &flags) || !ipck_get_u32(env, argv[4], &max))
    return ipck_throw_errno(env, EINVAL, "msgrcv");
  _Alignas(long) char stack[STACK_MSG];
  struct msgbuf_long *m = alloc_msg(stack, sizeof stack, (size_t)cap);
  if (m == NULL) return ipck_throw_errno(env, ENOMEM, "msgrcv");
  napi_value out;
  napi_create_array(env, &out);
  int err = 0;
  for (uint32_t i = 0; i < max; i++) {
    ssize_t n;
    while ((n = msgrcv(id, m, (size_t)cap, (long)type, flags | IPC_NOWAIT)) < 0 && errno == EINTR) {
    }
    if (n < 0) {
      /* Messages already taken are returned; the next call reports the error. */
      if (errno != ENOMSG && i == 0) err = errno;
      break;
    }
    napi_value msg = received(env, m, (size_t)n);
    if (msg == NULL || napi_set_element(env, out, i, msg) != napi_ok) break;
  }
  if ((char *)m != stack) free(m);
  if (err) return ipck_throw_errno(env, err, "msgrcv");
  return out;
}

/* mqSysvReceiveSync(id, maxSize, type, flags, timeoutNs) -> { type, data } */
static napi_value js_msg_receive_sync(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  int32_t id = -1, flags = 0;
  int64_t cap = 0, type = 0, timeout_ns = -1;
  if (!get_recv_args(env, argv, &id, &cap, &type, &flags) || !ipck_get_i64(env, argv[4], &timeout_ns))
    return ipck_throw_errno(env, EINVAL, "msgrcv");
  recv_ctx c = {id, (long)type, flags, (size_t)cap, NULL};
  _Alignas(long) char stack[STACK_MSG];
  c.msg = alloc_msg(stack, sizeof stack, (size_t)cap);
  if (c.msg == NULL) return ipck_throw_errno(env, ENOMEM, "msgrcv");
  int64_t n = run_sync(block_receive, &c, timeout_ns);
  napi_value out = n >= 0 ? received(env, c.msg, (size_t)n) : NULL;
  if ((char *)c.msg != stack) free(c.msg);
  if (n < 0) return ipck_throw_errno(env, (int)-n, "msgrcv");
  return out;
}

static void free_recv(void *p) { free(p); }

/* mqSysvReceiveAsync(id, maxSize, type, flags, timeoutNs, buffer) -> { promise, id }.
 * `buffer` (sizeof(long) + maxSize bytes, kept alive by the waiter) receives
 * the raw struct msgbuf; the promise resolves with the length of mtext. */
static napi_value js_msg_receive_async(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 6);
  int32_t id = -1, flags = 0;
  int64_t cap = 0, type = 0, timeout_ns = -1;
  void *buf = NULL;
  size_t buflen = 0;
  if (!get_recv_args(env, argv, &id, &cap, &type, &flags) || !ipck_get_i64(env, argv[4], &timeout_ns) ||
      !ipck_get_bytes(env, argv[5], &buf, &buflen) || buflen < sizeof(long) + (size_t)cap ||
      ((uintptr_t)buf % sizeof(long)) != 0)
    return ipck_throw_errno(env, EINVAL, "msgrcv");
  recv_ctx *c = malloc(sizeof *c);
  if (c == NULL) return ipck_throw_errno(env, ENOMEM, "msgrcv");
  *c = (recv_ctx){id, (long)type, flags, (size_t)cap, buf};
  ipck_wait_spec spec = {block_receive, c, free_recv, timeout_ns, argv[5], "msgrcv"};
  return ipck_waiter_submit(env, &spec);
}

/* mqSysvStat(id) -> every msqid_ds field, times in seconds */
static napi_value js_msg_stat(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "msgctl");
  struct msqid_ds ds;
  if (msgctl(id, IPC_STAT, &ds) != 0) return ipck_throw_errno(env, errno, "msgctl");
  napi_value out;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_ipc_perm(env, out, &ds.msg_perm);
  ipck_set_i64(env, out, "stime", ds.msg_stime);
  ipck_set_i64(env, out, "rtime", ds.msg_rtime);
  ipck_set_i64(env, out, "ctime", ds.msg_ctime);
  ipck_set_i64(env, out, "cbytes", (int64_t)ds.__msg_cbytes);
  ipck_set_i64(env, out, "qnum", (int64_t)ds.msg_qnum);
  ipck_set_i64(env, out, "qbytes", (int64_t)ds.msg_qbytes);
  ipck_set_i64(env, out, "lspid", ds.msg_lspid);
  ipck_set_i64(env, out, "lrpid", ds.msg_lrpid);
  return out;
}

/* mqSysvSet(id, uid, gid, mode, qbytes): IPC_SET */
static napi_value js_msg_set(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 5);
  int32_t id = -1;
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t qbytes = 0;
  if (!ipck_get_i32(env, argv[0], &id) || !ipck_get_u32(env, argv[1], &uid) ||
      !ipck_get_u32(env, argv[2], &gid) || !ipck_get_u32(env, argv[3], &mode) ||
      !ipck_get_i64(env, argv[4], &qbytes) || qbytes < 0)
    return ipck_throw_errno(env, EINVAL, "msgctl");
  struct msqid_ds ds;
  if (msgctl(id, IPC_STAT, &ds) != 0) return ipck_throw_errno(env, errno, "msgctl");
  ds.msg_perm.uid = uid;
  ds.msg_perm.gid = gid;
  ds.msg_perm.mode = (unsigned short)mode;
  ds.msg_qbytes = (msglen_t)qbytes;
  if (msgctl(id, IPC_SET, &ds) != 0) return ipck_throw_errno(env, errno, "msgctl");
  return ipck_undefined(env);
}

/* mqSysvRemove(id): IPC_RMID; blocked senders and receivers get EIDRM. */
static napi_value js_msg_remove(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t id = -1;
  if (!ipck_get_i32(env, argv[0], &id)) return ipck_throw_errno(env, EINVAL, "msgctl");
  if (msgctl(id, IPC_RMID, NULL) != 0) return ipck_throw_errno(env, errno, "msgctl");
  return ipck_undefined(env);
}

bool ipck_init_mq_sysv(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"MSG_EXCEPT", MSG_EXCEPT},
    {"MSG_NOERROR", MSG_NOERROR},
    {"LONG_BYTES", sizeof(long)},
  };
  static const ipck_function functions[] = {
    {"mqSysvGet", js_msgget},
    {"mqSysvTrySend", js_msg_try_send},
    {"mqSysvSendMany", js_msg_send_many},
    {"mqSysvSendSync", js_msg_send_sync},
    {"mqSysvSendAsync", js_msg_send_async},
    {"mqSysvTryReceive", js_msg_try_receive},
    {"mqSysvReceiveMany", js_msg_receive_many},
    {"mqSysvReceiveSync", js_msg_receive_sync},
    {"mqSysvReceiveAsync", js_msg_receive_async},
    {"mqSysvStat", js_msg_stat},
    {"mqSysvSet", js_msg_set},
    {"mqSysvRemove", js_msg_remove},
  };
  return ipck_export_constants(env, exports, "mqSysvConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
