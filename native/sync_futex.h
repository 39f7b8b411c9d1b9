/* Shared (not FUTEX_PRIVATE_FLAG) futex calls: the words live in memory that
 * other processes map, so the kernel must key them by page, not by mm. */
#ifndef IPCKIT_FUTEX_H
#define IPCKIT_FUTEX_H
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* FUTEX_WAIT with a relative timeout (NULL: none); -1/errno on failure. */
static inline int ipck_futex_wait(int32_t *addr, int32_t expected, const struct timespec *rel) {
  return (int)syscall(SYS_futex, addr, FUTEX_WAIT, expected, rel, NULL, 0);
}

/* FUTEX_WAKE: returns how many sleepers were woken. */
static inline int ipck_futex_wake(int32_t *addr, int32_t count) {
  return (int)syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
}
#endif
