{
  "targets": [
    {
      "target_name": "ipckit",
      "sources": [
        "native/addon.c",
        "native/common.c",
        "native/mapping.c",
        "native/poller.c",
        "native/sab.cc",
        "native/signals.c",
        "native/doorbell.c",
        "native/ring.c",
        "native/shm.c",
        "native/shm_sysv.c",
        "native/pipe.c",
        "native/fifo.c",
        "native/unix.c",
        "native/waiter.c",
        "native/futex.c",
        "native/sem.c",
        "native/sem_sysv.c",
        "native/mutex.c",
        "native/futex_uring.c",
        "native/mq_posix.c",
        "native/mq_sysv.c",
        "native/owned.c"
      ],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "cflags_cc": ["-std=gnu++17", "-Wall", "-O2"],
      "defines": ["_GNU_SOURCE"],
      "libraries": ["-lpthread", "-lrt"],
      # Never unload the addon: when a worker thread is the last user, Node
      # dlcloses it at the worker's teardown, yet V8 calls our
      # SharedArrayBuffer deleters after that, and waiter/poller code may
      # still be on a thread's stack.
      "ldflags": [
        "-Wl,-z,nodelete"
      ]
    }
  ]
}
