// The C program behind baseline:c-shm, baseline:c-unix and
// baseline:c-futex-wake, kept as a string
// so tsc ships it in dist/ and the driver compiles it into the trial's
// private directory (removed by the harness with everything else).
//
//   ./pingpong shm|unix|futex SIZE WARMUP COUNT ONEWAY_WARMUP ONEWAY_COUNT DRIVER_CPU ECHO_CPU
//
// It forks: the parent is the driver, the child the echo. It follows the same
// protocol as the Node cases (types.ts, TrialParams) and prints, on stdout,
// one line per timed round trip in nanoseconds, then `oneway NS`.
//
// shm: one MAP_SHARED|MAP_ANONYMOUS mapping made before fork; both sides
// spin on C11 atomics WITHOUT sched_yield, like shm-atomics spins on
// Atomics.load, so the two figures compare like with like (and both collapse
// alike when the peers share a core). Layout mirrors shm-atomics: ping slot,
// pong slot and an SPSC ring of 64-byte-aligned slots (at most 1 MiB, 2-1024
// slots), payload copied in and out on both sides.
// unix: a SOCK_STREAM socketpair, blocking read/write (the kernel's
// backpressure), the same copies.
// futex: the shm layout, but a side that waits sleeps in FUTEX_WAIT instead
// of spinning: each round trip is two wake-ups (the waker's FUTEX_WAKE, the
// sleeper scheduled back in), so half a round trip is what one wake-up costs
// on this machine. One-way: the same ring; a side that finds it empty (or
// full) raises a flag and sleeps, and the other side wakes it only when the
// flag is up (both sequentially consistent, so a wake-up is never missed).
// Both sides ask for SIGKILL when their parent dies (PR_SET_PDEATHSIG), so a
// killed Node driver never leaves a spinning C process behind.
export const C_PINGPONG_SOURCE = String.raw`
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  _Atomic uint64_t ping; char pad0[56];
  _Atomic uint64_t pong; char pad1[56];
  _Atomic uint64_t head; char pad2[56];
  _Atomic uint64_t tail; char pad3[56];
  _Atomic uint64_t ack;  char pad4[56];
  /* futex mode: 32-bit words, the size FUTEX_WAIT compares */
  _Atomic uint32_t fping; char pad5[60];
  _Atomic uint32_t fpong; char pad6[60];
  _Atomic uint32_t fhead; char pad7[60];
  _Atomic uint32_t ftail; char pad8[60];
  _Atomic uint32_t fack;  char pad9[60];
  _Atomic uint32_t consumer_sleeps; char pad10[60];
  _Atomic uint32_t producer_sleeps; char pad11[60];
} control_t;

static size_t size, slot, slots;
static long warmup, count, ow_warm, ow_count;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

/* Spin until *word == want (acquire). Every 2^20 spins, check the parent. */
static void spin_until(_Atomic uint64_t *word, uint64_t want, pid_t parent) {
  unsigned long n = 0;
  while (atomic_load_explicit(word, memory_order_acquire) != want)
    if ((++n & 0xfffff) == 0 && getppid() != parent) exit(2);
}

/* Shared (not FUTEX_PRIVATE_FLAG): the two processes map the word at different mms. */
static long futex_op(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout) {
  return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

/*
 * Sleep in FUTEX_WAIT until *word != old (the kernel returns at once when it
 * already changed). Every 100 ms asleep, check the peer: the parent for the
 * echo (gone = exit), the child for the driver (dead = fail).
 */
static void sleep_while(_Atomic uint32_t *word, uint32_t old, pid_t parent, pid_t child) {
  static const struct timespec tick = { 0, 100000000 };
  while (atomic_load_explicit(word, memory_order_seq_cst) == old) {
    if (futex_op(word, FUTEX_WAIT, old, &tick) == 0 || errno == EAGAIN || errno == EINTR) continue;
    if (errno != ETIMEDOUT) die("futex wait");
    if (child > 0 && waitpid(child, 0, WNOHANG) != 0) { fprintf(stderr, "echo died\n"); exit(1); }
    if (child == 0 && getppid() != parent) exit(2);
  }
}

static void wake(_Atomic uint32_t *word) {
  if (futex_op(word, FUTEX_WAKE, 1, NULL) < 0) die("futex wake");
}

/* One-way ring: wait for *word to move past old, sleeping with *flag raised. */
static void sleep_flagged(_Atomic uint32_t *word, uint32_t old, _Atomic uint32_t *flag, pid_t parent, pid_t child) {
  while (atomic_load_explicit(word, memory_order_seq_cst) == old) {
    atomic_store_explicit(flag, 1, memory_order_seq_cst);
    sleep_while(word, old, parent, child);
    atomic_store_explicit(flag, 0, memory_order_seq_cst);
  }
}

/* Publish v in *word; wake the other side if its flag says it sleeps (or is about to). */
static void publish_flagged(_Atomic uint32_t *word, uint32_t v, _Atomic uint32_t *flag) {
  atomic_store_explicit(word, v, memory_order_seq_cst);
  if (atomic_load_explicit(flag, memory_order_seq_cst)) wake(word);
}

static void read_full(int fd, char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) die("read");
    buf += r; n -= (size_t)r;
  }
}

static void write_full(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w <= 0) die("write");
    buf += w; n -= (size_t)w;
  }
}

int main(int argc, char **argv) {
  if (argc != 9) { fprintf(stderr, "usage: pingpong shm|unix|futex SIZE WARMUP COUNT OW_WARMUP OW_COUNT DRIVER_CPU ECHO_CPU\n"); return 1; }
  int fut = strcmp(argv[1], "futex") == 0;
  int shm = fut || strcmp(argv[1], "shm") == 0;
  size = strtoul(argv[2], 0, 10); warmup = atol(argv[3]); count = atol(argv[4]);
  ow_warm = atol(argv[5]); ow_count = atol(argv[6]);
  int driver_cpu = atoi(argv[7]), echo_cpu = atoi(argv[8]);
  slot = (size + 63) / 64 * 64;
  slots = (1 << 20) / slot; if (slots < 2) slots = 2; if (slots > 1024) slots = 1024;

  char *msg = malloc(size), *local = malloc(size);
  size_t chunk = size > 65536 ? size : 65536;
  char *big = malloc(chunk);
  if (!msg || !local || !big) die("malloc");
  for (size_t i = 0; i < size; i++) msg[i] = (char)((i * 31 + 7) & 0xff);
  uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)(count > 0 ? count : 1));
  if (!samples) die("malloc");

  control_t *ctl = 0; char *ping = 0, *pong = 0, *ring = 0;
  int sv[2] = { -1, -1 };
  if (shm) {
    size_t bytes = sizeof(control_t) + slot * (2 + slots);
    char *base = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) die("mmap");
    ctl = (control_t *)base;
    ping = base + sizeof(control_t); pong = ping + slot; ring = pong + slot;
  } else if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");

  pid_t self = getpid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl");
  if (getppid() == 1) return 2;
  pid_t child = fork();
  if (child < 0) die("fork");
  long rounds = warmup + count;
  long batches[2] = { ow_warm, ow_count };

  if (child == 0) { /* echo */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl");
    if (getppid() != self) return 2;
    pin(echo_cpu);
    if (fut) {
      for (uint32_t i = 1; i <= (uint32_t)rounds; i++) {
        sleep_while(&ctl->fping, i - 1, self, 0);
        memcpy(local, ping, size);
        memcpy(pong, local, size);
        atomic_store_explicit(&ctl->fpong, i, memory_order_seq_cst);
        wake(&ctl->fpong);
      }
      uint32_t tail = 0;
      for (int b = 0; b < 2; b++) {
        uint32_t end = tail + (uint32_t)batches[b];
        while (tail != end) {
          sleep_flagged(&ctl->fhead, tail, &ctl->consumer_sleeps, self, 0);
          memcpy(local, ring + (tail % slots) * slot, size);
          publish_flagged(&ctl->ftail, ++tail, &ctl->producer_sleeps);
        }
        atomic_store_explicit(&ctl->fack, (uint32_t)b + 1, memory_order_seq_cst);
        wake(&ctl->fack);
      }
    } else if (shm) {
      for (long i = 1; i <= rounds; i++) {
        spin_until(&ctl->ping, (uint64_t)i, self);
        memcpy(local, ping, size);
        memcpy(pong, local, size);
        atomic_store_explicit(&ctl->pong, (uint64_t)i, memory_order_release);
      }
      uint64_t tail = 0;
      for (int b = 0; b < 2; b++) {
        uint64_t end = tail + (uint64_t)batches[b];
        while (tail < end) {
          unsigned long n = 0;
          while (atomic_load_explicit(&ctl->head, memory_order_acquire) == tail)
            if ((++n & 0xfffff) == 0 && getppid() != self) return 2;
          memcpy(local, ring + (tail % slots) * slot, size);
          atomic_store_explicit(&ctl->tail, ++tail, memory_order_release);
        }
        atomic_store_explicit(&ctl->ack, (uint64_t)b + 1, memory_order_release);
      }
    } else {
      close(sv[0]);
      for (long i = 0; i < rounds; i++) { read_full(sv[1], local, size); write_full(sv[1], local, size); }
      for (int b = 0; b < 2; b++) {
        size_t left = (size_t)batches[b] * size;
        while (left > 0) {
          ssize_t r = read(sv[1], big, left < chunk ? left : chunk);
          if (r <= 0) die("read");
          left -= (size_t)r;
        }
        write_full(sv[1], "k", 1);
      }
      char c; if (read(sv[1], &c, 1) != 0) die("expected end of stream");
    }
    return 0;
  }

  /* driver */
  pin(driver_cpu);
  uint64_t oneway = 0;
  if (fut) {
    for (uint32_t i = 1; i <= (uint32_t)rounds; i++) {
      uint64_t t0 = now_ns();
      memcpy(ping, msg, size);
      atomic_store_explicit(&ctl->fping, i, memory_order_seq_cst);
      wake(&ctl->fping);
      sleep_while(&ctl->fpong, i - 1, 0, child);
      memcpy(local, pong, size);
      uint64_t t1 = now_ns();
      if (i > (uint32_t)warmup) samples[i - warmup - 1] = t1 - t0;
    }
    uint32_t head = 0;
    for (int b = 0; b < 2; b++) {
      uint64_t t0 = now_ns();
      uint32_t end = head + (uint32_t)batches[b];
      while (head != end) {
        /* Full: wait for the consumer to move the tail past head - slots. */
        while (head - atomic_load_explicit(&ctl->ftail, memory_order_seq_cst) == slots)
          sleep_flagged(&ctl->ftail, head - (uint32_t)slots, &ctl->producer_sleeps, 0, child);
        memcpy(ring + (head % slots) * slot, msg, size);
        publish_flagged(&ctl->fhead, ++head, &ctl->consumer_sleeps);
      }
      sleep_while(&ctl->fack, (uint32_t)b, 0, child);
      oneway = now_ns() - t0;
    }
  } else if (shm) {
    for (long i = 1; i <= rounds; i++) {
      uint64_t t0 = now_ns();
      memcpy(ping, msg, size);
      atomic_store_explicit(&ctl->ping, (uint64_t)i, memory_order_release);
      unsigned long n = 0;
      while (atomic_load_explicit(&ctl->pong, memory_order_acquire) != (uint64_t)i)
        if ((++n & 0xfffff) == 0 && waitpid(child, 0, WNOHANG) != 0) { fprintf(stderr, "echo died\n"); return 1; }
      memcpy(local, pong, size);
      uint64_t t1 = now_ns();
      if (i > warmup) samples[i - warmup - 1] = t1 - t0;
    }
    uint64_t head = 0;
    for (int b = 0; b < 2; b++) {
      uint64_t t0 = now_ns();
      uint64_t end = head + (uint64_t)batches[b];
      while (head < end) {
        unsigned long n = 0;
        while (head - atomic_load_explicit(&ctl->tail, memory_order_acquire) == slots)
          if ((++n & 0xfffff) == 0 && waitpid(child, 0, WNOHANG) != 0) { fprintf(stderr, "echo died\n"); return 1; }
        memcpy(ring + (head % slots) * slot, msg, size);
        atomic_store_explicit(&ctl->head, ++head, memory_order_release);
      }
      unsigned long n = 0;
      while (atomic_load_explicit(&ctl->ack, memory_order_acquire) != (uint64_t)b + 1)
        if ((++n & 0xfffff) == 0 && waitpid(child, 0, WNOHANG) != 0) { fprintf(stderr, "echo died\n"); return 1; }
      oneway = now_ns() - t0;
    }
  } else {
    close(sv[1]);
    for (long i = 1; i <= rounds; i++) {
      uint64_t t0 = now_ns();
      write_full(sv[0], msg, size);
      read_full(sv[0], local, size);
      uint64_t t1 = now_ns();
      if (i > warmup) samples[i - warmup - 1] = t1 - t0;
    }
    for (int b = 0; b < 2; b++) {
      uint64_t t0 = now_ns();
      for (long i = 0; i < batches[b]; i++) write_full(sv[0], msg, size);
      char c; read_full(sv[0], &c, 1);
      oneway = now_ns() - t0;
    }
    shutdown(sv[0], SHUT_WR);
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "echo failed\n");
    return 1;
  }
  /* Printed after the echo is done, so printing is never inside a measurement. */
  for (long i = 0; i < count; i++) printf("%llu\n", (unsigned long long)samples[i]);
  printf("oneway %llu\n", (unsigned long long)oneway);
  return fflush(stdout) == 0 ? 0 : 1;
}
`;
