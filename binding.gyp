# Native sources are named by the area of src/ they serve, so that one
# mechanism's TypeScript, C, tests and docs are found by one name:
# native/<area>_<what>.c for src/<area>/ (shm_posix.c for src/shm/shm.ts,
# sync_sem_sysv.c for src/sync/sem-sysv.ts, core_waiter.c for
# src/core/waiter.ts), native/<area>.c when the area has one file
# (signals.c), and addon.c, the module entry that registers them all.
{
  "targets": [
    {
      "target_name": "ipckit",
      "sources": [
        "native/addon.c",
        "native/channel_doorbell.c",
        "native/channel_ring.c",
        "native/core_common.c",
        "native/core_owned.c",
        "native/core_poller.c",
        "native/core_sab.cc",
        "native/core_sysv.c",
        "native/core_waiter.c",
        "native/mq_posix.c",
        "native/mq_sysv.c",
        "native/pipes_fifo.c",
        "native/pipes_pipe.c",
        "native/shm_mapping.c",
        "native/shm_posix.c",
        "native/shm_sysv.c",
        "native/signals.c",
        "native/sockets_unix.c",
        "native/sync_futex.c",
        "native/sync_futex_uring.c",
        "native/sync_mutex.c",
        "native/sync_sem.c",
        "native/sync_sem_sysv.c"
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
