/* Signals: send (kill, sigqueue, pidfd_send_signal), receive through a
 * signalfd watched on the event loop, and the thread-mask machinery that makes
 * a signalfd reliable inside a multi-threaded Node process.
 *
 * WHY signalfd with the signals blocked in every thread (and not a handler
 * writing to a pipe): a process-directed signal is delivered to whichever
 * thread the kernel picks among those that do not block it. With a handler,
 * two queued realtime signals can be taken by two threads at once and reach
 * the pipe out of order (measured: 1005 before 1004), and no sequence number
 * taken inside the handler can fix that, because the race is between the
 * kernel dequeuing a signal and the handler's first instruction. When every
 * thread blocks the signal, it stays in the process's queue, which the kernel
 * keeps in FIFO order per realtime signal, and a read() of the signalfd on the
 * main thread dequeues it with its full siginfo (pid, uid, code, value).
 *
 * Blocking in every thread is the hard part: Node already runs threads (libuv
 * threadpool, V8 platform workers, the inspector's signal thread) whose masks
 * no API can set from outside. New threads inherit the mask of the thread that
 * creates them, and those are created from the main thread, so the main thread
 * blocks with pthread_sigmask. For threads that already exist,
 * signalMaskThreads() lists /proc/self/task and sends each thread whose SigBlk
 * does not yet match a private helper signal (tgkill). The helper's handler
 * edits the *saved* mask in its ucontext (uc_sigmask); sigreturn then installs
 * that mask in the interrupted thread. It repeats until a pass finds nothing
 * to change, which also catches threads created during a pass. A thread that
 * blocks the helper signal itself manages its own mask (Node's inspector
 * thread blocks everything) and is left alone; it is reported if it does not
 * already block the requested signals. The scan ends after two clean passes
 * 100 us apart, which catches a thread that was inside pthread_create (glibc
 * blocks everything there for a moment, then restores the old mask and gives
 * it to the new thread); a thread creation slower than that could in theory
 * still slip through.
 *
 * Ownership: all of this is process-wide state, so only the main thread's
 * environment may change it (the TypeScript layer refuses in workers, and
 * signalMaskThreads checks gettid() == getpid()). Worker environments may send
 * signals and read the table. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core_common.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* ---- helpers -------------------------------------------------------------- */

/* Reads an array of signal numbers into a set (and a 64-bit mask as /proc shows it). */
static bool get_sigset(napi_env env, napi_value arr, sigset_t *set, uint64_t *bits) {
  sigemptyset(set);
  if (bits) *bits = 0;
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return false;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    int32_t s = 0;
    if (napi_get_element(env, arr, i, &v) != napi_ok || !ipck_get_i32(env, v, &s)) return false;
    if (s < 1 || s >= NSIG || sigaddset(set, s) != 0) return false;
    if (bits && s <= 64) *bits |= 1ULL << (s - 1);
  }
  return true;
}

static napi_value set_to_array(napi_env env, const sigset_t *set) {
  napi_value arr;
  if (napi_create_array(env, &arr) != napi_ok) return NULL;
  uint32_t k = 0;
  for (int s = 1; s < NSIG; s++) {
    if (sigismember(set, s) == 1) napi_set_element(env, arr, k++, ipck_i64(env, s));
  }
  return arr;
}

/* ---- blocking in every thread --------------------------------------------- */

/* Read by the helper handler; written only while no helper signal is in flight. */
static sigset_t g_add, g_del;
static pid_t g_pid;
static atomic_int g_acks;

static void helper_handler(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  /* Only our own tgkill counts; a stray helper signal from outside during the
   * (microseconds-long) window is dropped. */
  if (si == NULL || si->si_code != SI_TKILL || si->si_pid != g_pid) return;
  ucontext_t *uc = ucv;
  for (int s = 1; s < NSIG; s++) {
    if (sigismember(&g_add, s) == 1) sigaddset(&uc->uc_sigmask, s);
    if (sigismember(&g_del, s) == 1) sigdelset(&uc->uc_sigmask, s);
  }
  atomic_fetch_add(&g_acks, 1);
}

/* SigBlk of one thread, from /proc. false if the thread is gone. */
static bool thread_sigblk(pid_t tid, uint64_t *out) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return false;
  bool found = false;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "SigBlk:", 7) == 0) {
      *out = strtoull(line + 7, NULL, 16);
      found = true;
      break;
    }
  }
  fclose(f);
  return found;
}

/* Chooses a helper signal nobody uses: a realtime signal with the default
 * disposition, outside the sets being changed and those ipckit manages. */
static int pick_helper(const sigset_t *avoid) {
  for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
    if (sigismember(avoid, s) == 1) continue;
    struct sigaction old;
    if (sigaction(s, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        old.sa_handler == SIG_DFL)
      return s;
  }
  return -1;
}

/* signalMaskThreads(block[], unblock[], avoid[]) ->
 *   { threads, signalled, uncovered: tid[], complete, helper } */
static napi_value js_signal_mask_threads(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  sigset_t add, del, avoid;
  uint64_t add_bits = 0, del_bits = 0;
  if (!get_sigset(env, argv[0], &add, &add_bits) || !get_sigset(env, argv[1], &del, &del_bits) ||
      !get_sigset(env, argv[2], &avoid, NULL))
    return ipck_throw_errno(env, EINVAL, "pthread_sigmask");
  pid_t self = (pid_t)syscall(SYS_gettid), pid = getpid();
  if (self != pid) return ipck_throw_errno(env, EPERM, "pthread_sigmask");

  int err = pthread_sigmask(SIG_BLOCK, &add, NULL);
  if (err == 0) err = pthread_sigmask(SIG_UNBLOCK, &del, NULL);
  if (err != 0) return ipck_throw_errno(env, err, "pthread_sigmask");

  for (int s = 1; s < NSIG; s++) {
    if (sigismember(&add, s) == 1 || sigismember(&del, s) == 1) sigaddset(&avoid, s);
  }
  int helper = pick_helper(&avoid);
  if (helper < 0) return ipck_throw_errno(env, EAGAIN, "sigaction");
  uint64_t helper_bit = 1ULL << (helper - 1);

  g_add = add;
  g_del = del;
  g_pid = pid;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = helper_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(helper, &sa, &old) != 0) return ipck_throw_errno(env, errno, "sigaction");

  napi_value uncovered;
  IPCK_CALL(env, napi_create_array(env, &uncovered));
  uint32_t n_uncovered = 0;
  int threads = 0, signalled = 0;
  bool complete = true;
  int clean = 0;
  for (int pass = 0; pass < 12; pass++) {
    atomic_store(&g_acks, 0);
    int sent = 0;
    threads = 1;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) {
      complete = false;
      break;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      pid_t tid = (pid_t)atoi(e->d_name);
      if (tid <= 0 || tid == self) continue;
      uint64_t blk = 0;
      if (!thread_sigblk(tid, &blk)) continue; /* exited */
      threads++;
      uint64_t wrong = (add_bits & ~blk) | (del_bits & blk);
      if (blk & helper_bit) {
        /* Manages its own mask; say so if it could still take our signals. */
        if (pass == 0 && (add_bits & ~blk))
          napi_set_element(env, uncovered, n_uncovered++, ipck_i64(env, tid));
        continue;
      }
      if (wrong == 0) continue;
      if (syscall(SYS_tgkill, pid, tid, helper) == 0) sent++;
    }
    closedir(d);
    if (sent == 0) {
      /* Two clean passes 100 us apart: a thread inside pthread_create has
       * every signal blocked for a moment (glibc), looks fine, and then
       * restores its old mask and hands it to the new thread. */
      if (++clean == 2) break;
      struct timespec settle = {0, 100000};
      nanosleep(&settle, NULL);
      continue;
    }
    clean = 0;
    signalled += sent;
    /* Each thread runs the handler when it next returns to user space; a
     * thread asleep in futex/epoll is woken by the signal. */
    struct timespec start, now, nap = {0, 20000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (atomic_load(&g_acks) < sent) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - start.tv_sec >= 2) break;
      nanosleep(&nap, NULL);
    }
    if (atomic_load(&g_acks) < sent) {
      complete = false;
      break;
    }
  }
  /* If a thread never answered, its helper signal may still be pending:
   * leave our handler installed rather than let the default action kill us. */
  if (complete) sigaction(helper, &old, NULL);

  napi_value out, b;
  IPCK_CALL(env, napi_create_object(env, &out));
  ipck_set_i64(env, out, "threads", threads);
  ipck_set_i64(env, out, "signalled", signalled);
  ipck_set_value(env, out, "uncovered", uncovered);
  napi_get_boolean(env, complete, &b);
  ipck_set_value(env, out, "complete", b);
  ipck_set_i64(env, out, "helper", helper);
  return out;
}

/* ---- signalfd --------------------------------------------------------------- */

/* signalfdCreate(signals[]) -> fd (non-blocking, close-on-exec) */
static napi_value js_signalfd_create(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  sigset_t set;
  if (!get_sigset(env, argv[0], &set, NULL)) return ipck_throw_errno(env, EINVAL, "signalfd");
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return ipck_throw_errno(env, errno, "signalfd");
  return ipck_i64(env, fd);
}

/* signalfdSetMask(fd, signals[]) */
static napi_value js_signalfd_set_mask(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  int32_t fd = -1;
  sigset_t set;
  if (!ipck_get_i32(env, argv[0], &fd) || !get_sigset(env, argv[1], &set, NULL))
    return ipck_throw_errno(env, EINVAL, "signalfd");
  if (signalfd(fd, &set, 0) < 0) return ipck_throw_errno(env, errno, "signalfd");
  return ipck_undefined(env);
}

/* Hands a signal we consumed to a handler someone else installed (libuv's, for
 * SIGCHLD child reaping and process.on() listeners), as the kernel would have. */
static void chain(const struct signalfd_siginfo *ssi) {
  struct sigaction cur;
  int s = (int)ssi->ssi_signo;
  if (sigaction(s, NULL, &cur) != 0) return;
  if (cur.sa_flags & SA_SIGINFO) {
    if (cur.sa_sigaction == NULL) return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = s;
    si.si_code = ssi->ssi_code;
    si.si_pid = (pid_t)ssi->ssi_pid;
    si.si_uid = (uid_t)ssi->ssi_uid;
    si.si_value.sival_ptr = (void *)(uintptr_t)ssi->ssi_ptr;
    si.si_status = ssi->ssi_status;
    cur.sa_sigaction(s, &si, NULL);
  } else if (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) {
    cur.sa_handler(s);
  }
}

/* signalfdRead(fd, max, chain[]) -> [{ number, code, pid, uid, value, status }]
 * Reads up to max queued signals without blocking (an empty array on EAGAIN).
 * Signals listed in `chain` are also passed to the handler installed for them. */
static napi_value js_signalfd_read(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t fd = -1, max = 0;
  sigset_t chained;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &max) || max < 1 ||
      max > 256 || !get_sigset(env, argv[2], &chained, NULL))
    return ipck_throw_errno(env, EINVAL, "read");
  struct signalfd_siginfo buf[256];
  ssize_t got;
  do {
    got = read(fd, buf, sizeof buf[0] * (size_t)max);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && errno != EAGAIN) return ipck_throw_errno(env, errno, "read");
  size_t n = got < 0 ? 0 : (size_t)got / sizeof buf[0];
  napi_value arr;
  IPCK_CALL(env, napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) {
    const struct signalfd_siginfo *s = &buf[i];
    if (sigismember(&chained, (int)s->ssi_signo) == 1) chain(s);
    napi_value o;
    IPCK_CALL(env, napi_create_object(env, &o));
    ipck_set_i64(env, o, "number", s->ssi_signo);
    ipck_set_i64(env, o, "code", s->ssi_code);
    ipck_set_i64(env, o, "pid", s->ssi_pid);
    ipck_set_i64(env, o, "uid", s->ssi_uid);
    ipck_set_i64(env, o, "value", s->ssi_int);
    ipck_set_i64(env, o, "status", s->ssi_status);
    napi_set_element(env, arr, (uint32_t)i, o);
  }
  return arr;
}

/* signalDiscard(signo) -> count: removes pending instances of a signal that
 * is still blocked, so that unblocking it does not run its default action for
 * signals that arrived while ipckit owned it. */
static napi_value js_signal_discard(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t s = 0;
  sigset_t set;
  sigemptyset(&set);
  if (!ipck_get_i32(env, argv[0], &s) || sigaddset(&set, s) != 0)
    return ipck_throw_errno(env, EINVAL, "signalfd");
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return ipck_throw_errno(env, errno, "signalfd");
  struct signalfd_siginfo buf[32];
  int64_t count = 0;
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) > 0) count += got / (ssize_t)sizeof buf[0];
  close(fd);
  return ipck_i64(env, count);
}

/* signalPending() -> numbers pending for the main thread or the process (sigpending) */
static napi_value js_signal_pending(napi_env env, napi_callback_info info) {
  (void)info;
  sigset_t set;
  if (sigpending(&set) != 0) return ipck_throw_errno(env, errno, "sigpending");
  return set_to_array(env, &set);
}

/* ---- sending ---------------------------------------------------------------- */

/* A vanished target is an answer (false), not an error: it is routine for a
 * process to exit before a signal reaches it. */
static napi_value sent_or_throw(napi_env env, long r, const char *syscall_name) {
  napi_value b;
  if (r == 0) {
    napi_get_boolean(env, true, &b);
    return b;
  }
  if (errno == ESRCH) {
    napi_get_boolean(env, false, &b);
    return b;
  }
  return ipck_throw_errno(env, errno, syscall_name);
}

/* signalSend(pid, signo, hasValue, value) -> bool: kill, or sigqueue with a value */
static napi_value js_signal_send(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t pid = 0, s = 0, value = 0;
  bool has_value = false;
  if (!ipck_get_i32(env, argv[0], &pid) || !ipck_get_i32(env, argv[1], &s) ||
      !ipck_get_bool(env, argv[2], &has_value) || !ipck_get_i32(env, argv[3], &value))
    return ipck_throw_errno(env, EINVAL, "kill");
  if (has_value) {
    union sigval v;
    memset(&v, 0, sizeof v);
    v.sival_int = value;
    return sent_or_throw(env, sigqueue(pid, s, v), "sigqueue");
  }
  return sent_or_throw(env, kill(pid, s), "kill");
}

/* pidfdOpen(pid) -> fd (close-on-exec, as pidfd_open always is) */
static napi_value js_pidfd_open(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  int32_t pid = 0;
  if (!ipck_get_i32(env, argv[0], &pid)) return ipck_throw_errno(env, EINVAL, "pidfd_open");
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return ipck_throw_errno(env, errno, "pidfd_open");
  return ipck_i64(env, fd);
}

/* pidfdSend(fd, signo, hasValue, value) -> bool: pidfd_send_signal. With a
 * value the siginfo is what sigqueue would build (SI_QUEUE, our pid and uid). */
static napi_value js_pidfd_send(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 4);
  int32_t fd = -1, s = 0, value = 0;
  bool has_value = false;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &s) ||
      !ipck_get_bool(env, argv[2], &has_value) || !ipck_get_i32(env, argv[3], &value))
    return ipck_throw_errno(env, EINVAL, "pidfd_send_signal");
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = s;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = value;
  long r = syscall(SYS_pidfd_send_signal, fd, s, has_value ? &si : NULL, 0);
  return sent_or_throw(env, r, "pidfd_send_signal");
}

/* ---- constants ---------------------------------------------------------------- */

#define NAMED(obj, x) ipck_set_i64(env, obj, #x, x)

bool ipck_init_signals(napi_env env, napi_value exports) {
  napi_value c, names, codes;
  if (napi_create_object(env, &c) != napi_ok || napi_create_object(env, &names) != napi_ok ||
      napi_create_object(env, &codes) != napi_ok)
    return false;
  /* This system's numbers (they differ between architectures). */
  NAMED(names, SIGHUP); NAMED(names, SIGINT); NAMED(names, SIGQUIT); NAMED(names, SIGILL);
  NAMED(names, SIGTRAP); NAMED(names, SIGABRT); NAMED(names, SIGBUS); NAMED(names, SIGFPE);
  NAMED(names, SIGKILL); NAMED(names, SIGUSR1); NAMED(names, SIGSEGV); NAMED(names, SIGUSR2);
  NAMED(names, SIGPIPE); NAMED(names, SIGALRM); NAMED(names, SIGTERM); NAMED(names, SIGCHLD);
  NAMED(names, SIGCONT); NAMED(names, SIGSTOP); NAMED(names, SIGTSTP); NAMED(names, SIGTTIN);
  NAMED(names, SIGTTOU); NAMED(names, SIGURG); NAMED(names, SIGXCPU); NAMED(names, SIGXFSZ);
  NAMED(names, SIGVTALRM); NAMED(names, SIGPROF); NAMED(names, SIGWINCH); NAMED(names, SIGIO);
  NAMED(names, SIGSYS);
#ifdef SIGSTKFLT
  NAMED(names, SIGSTKFLT);
#endif
#ifdef SIGPWR
  NAMED(names, SIGPWR);
#endif
#ifdef SIGEMT
  NAMED(names, SIGEMT);
#endif
  ipck_set_value(env, c, "names", names);
  /* si_code values that are not specific to one signal, and the SIGCHLD ones. */
  NAMED(codes, SI_USER); NAMED(codes, SI_KERNEL); NAMED(codes, SI_QUEUE); NAMED(codes, SI_TIMER);
  NAMED(codes, SI_MESGQ); NAMED(codes, SI_ASYNCIO); NAMED(codes, SI_SIGIO); NAMED(codes, SI_TKILL);
#ifdef SI_DETHREAD
  NAMED(codes, SI_DETHREAD);
#endif
#ifdef SI_ASYNCNL
  NAMED(codes, SI_ASYNCNL);
#endif
  NAMED(codes, CLD_EXITED); NAMED(codes, CLD_KILLED); NAMED(codes, CLD_DUMPED);
  NAMED(codes, CLD_TRAPPED); NAMED(codes, CLD_STOPPED); NAMED(codes, CLD_CONTINUED);
  NAMED(codes, POLL_IN); NAMED(codes, POLL_OUT); NAMED(codes, POLL_MSG); NAMED(codes, POLL_ERR);
  NAMED(codes, POLL_PRI); NAMED(codes, POLL_HUP);
  ipck_set_value(env, c, "codes", codes);
  /* Computed at run time: glibc reserves the first realtime signals. */
  ipck_set_i64(env, c, "SIGRTMIN", SIGRTMIN);
  ipck_set_i64(env, c, "SIGRTMAX", SIGRTMAX);
  ipck_set_i64(env, c, "NSIG", NSIG);
  ipck_set_value(env, exports, "signalConstants", c);
  static const ipck_function functions[] = {
    {"signalMaskThreads", js_signal_mask_threads},
    {"signalfdCreate", js_signalfd_create},
    {"signalfdSetMask", js_signalfd_set_mask},
    {"signalfdRead", js_signalfd_read},
    {"signalDiscard", js_signal_discard},
    {"signalPending", js_signal_pending},
    {"signalSend", js_signal_send},
    {"pidfdOpen", js_pidfd_open},
    {"pidfdSend", js_pidfd_send},
  };
  return ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
