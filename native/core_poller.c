/* A reusable "tell me on the event loop when this fd is ready" facility:
 * one uv_poll_t per watched descriptor, calling a JS function on the loop of
 * the environment (main thread or worker) that started it. Signals use it for
 * their signalfd; message-queue descriptors and datagram/seqpacket sockets
 * are meant to reuse it.
 *
 * JS API (wrapped by src/core/poller.ts, which is what mechanisms should use):
 *   pollerStart(fd, events, callback) -> handle
 *       events: bit set of pollerConstants.READABLE/WRITABLE/DISCONNECT/
 *       PRIORITIZED (libuv's UV_* values). callback(errno, events) runs on
 *       the loop with `this` = handle; errno is 0, or a positive errno when
 *       libuv reports an error, after which the watch is closed.
 *   pollerUpdate(handle, events)   change the events watched
 *   pollerRef(handle, bool)        whether the watch keeps the loop alive
 *   pollerStop(handle)             stop and close; idempotent
 *
 * Things learned the hard way:
 * - napi_make_callback needs an object as `this`; `undefined` fails and a
 *   level-triggered poll whose callback never runs spins forever. `this` is
 *   the handle object, kept alive by a strong reference while active.
 * - napi_make_callback (not napi_call_function) so that promise reactions
 *   queued by the callback run before we return to libuv.
 * - An exception thrown by the callback goes to napi_fatal_exception, i.e.
 *   process 'uncaughtException', like any other event callback.
 * - The poll is level-triggered: the callback must drain the descriptor (read
 *   until EAGAIN) or stop the watch, otherwise it is called again on every
 *   loop iteration.
 * - uv_poll_init puts the descriptor in non-blocking mode.
 * - Worker environments abort on exit if a uv handle is still open, so every
 *   watch registers an async cleanup hook that closes it at env teardown. */
#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#include "core_common.h"

typedef struct poller {
  uv_poll_t handle; /* handle.data points back here */
  napi_env env;
  napi_ref callback;   /* strong, deleted at close */
  napi_ref self;       /* strong while open: the handle object is `this` */
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle hook;
  int refs;            /* the uv handle + the JS object (wrap) */
  bool closing;
  bool teardown;       /* closed by env teardown: leave napi objects alone */
} poller_t;

static void poller_unref(poller_t *p) {
  if (--p->refs == 0) free(p);
}

static void on_closed(uv_handle_t *h) {
  poller_t *p = h->data;
  napi_env env = p->env;
  if (!p->teardown) {
    napi_delete_reference(env, p->callback);
    napi_delete_reference(env, p->self);
    napi_async_destroy(env, p->async_ctx);
  }
  /* Also tells Node, during teardown, that this handle is done. */
  napi_remove_async_cleanup_hook(p->hook);
  poller_unref(p);
}

static void begin_close(poller_t *p) {
  if (p->closing) return;
  p->closing = true;
  uv_poll_stop(&p->handle);
  uv_close((uv_handle_t *)&p->handle, on_closed);
}

static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  poller_t *p = arg;
  p->teardown = true;
  begin_close(p); /* no-op when already closing: on_closed removes the hook */
}

static void on_object_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller_unref(data);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  if (p->closing) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv, fn, argv[2], result;
  if (napi_get_reference_value(env, p->self, &recv) == napi_ok &&
      napi_get_reference_value(env, p->callback, &fn) == napi_ok &&
      napi_create_int32(env, status < 0 ? -status : 0, &argv[0]) == napi_ok &&
      napi_create_int32(env, status < 0 ? 0 : events, &argv[1]) == napi_ok) {
    napi_status s = napi_make_callback(env, p->async_ctx, recv, fn, 2, argv, &result);
    bool pending = false;
    if (s != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
  /* libuv has already stopped a poll that reported an error. */
  if (status < 0) begin_close(p);
}

static poller_t *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_unwrap(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* pollerStart(fd, events, callback) -> handle */
static napi_value js_poller_start(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 3);
  int32_t fd = -1, events = 0;
  if (!ipck_get_i32(env, argv[0], &fd) || !ipck_get_i32(env, argv[1], &events))
    return ipck_throw_errno(env, EINVAL, "uv_poll_start");
  uv_loop_t *loop = NULL;
  IPCK_CALL(env, napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return ipck_throw_errno(env, ENOMEM, "uv_poll_init");
  p->env = env;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r != 0) {
    free(p);
    return ipck_throw_errno(env, -r, "uv_poll_init");
  }
  p->handle.data = p;
  p->refs = 1; /* the uv handle */
  p->closing = true; /* until fully set up: a failure below only closes */

  napi_value obj, name;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_string_utf8(env, "ipckit.poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, obj, name, &p->async_ctx) != napi_ok) {
    p->teardown = true; /* nothing napi-side to release */
    uv_close((uv_handle_t *)&p->handle, (uv_close_cb)free);
    ipck_throw_napi_failure(env, "poller setup");
    return NULL;
  }
  if (napi_wrap(env, obj, p, on_object_collected, NULL, NULL) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &p->callback) != napi_ok ||
      napi_create_reference(env, obj, 1, &p->self) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_teardown, p, &p->hook) != napi_ok) {
    /* Rare (out of memory): leak the small record rather than risk a double free. */
    uv_close((uv_handle_t *)&p->handle, NULL);
    ipck_throw_napi_failure(env, "poller setup");
    return NULL;
  }
  p->refs = 2;
  p->closing = false;
  r = uv_poll_start(&p->handle, events, on_poll);
  if (r != 0) {
    begin_close(p);
    return ipck_throw_errno(env, -r, "uv_poll_start");
  }
  return obj;
}

/* pollerUpdate(handle, events) */
static napi_value js_poller_update(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  poller_t *p = unwrap(env, argv[0]);
  int32_t events = 0;
  if (p == NULL || !ipck_get_i32(env, argv[1], &events))
    return ipck_throw_errno(env, EINVAL, "uv_poll_start");
  if (p->closing) return ipck_throw_errno(env, EBADF, "uv_poll_start");
  int r = events == 0 ? uv_poll_stop(&p->handle) : uv_poll_start(&p->handle, events, on_poll);
  if (r != 0) return ipck_throw_errno(env, -r, "uv_poll_start");
  return ipck_undefined(env);
}

/* pollerRef(handle, keepsLoopAlive) */
static napi_value js_poller_ref(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 2);
  poller_t *p = unwrap(env, argv[0]);
  bool on = true;
  if (p == NULL || !ipck_get_bool(env, argv[1], &on)) return ipck_throw_errno(env, EINVAL, "uv_ref");
  if (!p->closing) {
    if (on) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return ipck_undefined(env);
}

/* pollerStop(handle): idempotent */
static napi_value js_poller_stop(napi_env env, napi_callback_info info) {
  IPCK_ARGS(env, info, 1);
  poller_t *p = unwrap(env, argv[0]);
  if (p == NULL) return ipck_throw_errno(env, EINVAL, "uv_close");
  begin_close(p);
  return ipck_undefined(env);
}

bool ipck_init_poller(napi_env env, napi_value exports) {
  const ipck_constant constants[] = {
    {"READABLE", UV_READABLE},
    {"WRITABLE", UV_WRITABLE},
    {"DISCONNECT", UV_DISCONNECT},
    {"PRIORITIZED", UV_PRIORITIZED},
  };
  static const ipck_function functions[] = {
    {"pollerStart", js_poller_start},
    {"pollerUpdate", js_poller_update},
    {"pollerRef", js_poller_ref},
    {"pollerStop", js_poller_stop},
  };
  return ipck_export_constants(env, exports, "pollerConstants", constants, IPCK_COUNT(constants)) &&
         ipck_export_functions(env, exports, functions, IPCK_COUNT(functions));
}
