// The one file that touches the V8 API: N-API on Node 20 cannot create a
// SharedArrayBuffer over foreign memory, and only a real SharedArrayBuffer can
// be shared with worker threads and used with Atomics.wait. It also makes
// plain ArrayBuffers whose deleter V8 calls from the GC, on any thread
// (native/channel_ring.c's kept receive blocks): an N-API external Buffer costs a
// weak handle and a finalizer on the JS thread each. Everything else stays in
// N-API C. Building with IPCKIT_NO_V8 falls back to external ArrayBuffers of
// N-API (same memory, but postMessage copies a "shared" one and Atomics.wait
// refuses it).
#include "core_sab.h"

#ifndef IPCKIT_NO_V8
#include <v8.h>

// A SharedArrayBuffer or ArrayBuffer (Kind) over [data, data+len), whose
// deleter V8 calls once the GC frees it (on any thread).
template <typename Kind>
static napi_status wrap(void *data, size_t len, ipck_sab_deleter deleter,
                        void *hint, napi_value *out) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return napi_generic_failure;
  std::unique_ptr<v8::BackingStore> store =
      Kind::NewBackingStore(data, len, deleter, hint);
  v8::Local<Kind> buffer = Kind::New(isolate, std::move(store));
  // napi_value is a V8 handle slot; the N-API callback's HandleScope owns it.
  *out = reinterpret_cast<napi_value>(*buffer);
  return napi_ok;
}
#else
// Without the V8 API: an external ArrayBuffer of N-API (its finalizer runs on
// the JS thread) over the same memory.
static napi_status wrap_external(napi_env env, void *data, size_t len,
                                 ipck_sab_deleter deleter, void *hint,
                                 napi_value *out) {
  struct Fwd { ipck_sab_deleter fn; void *hint; size_t len; };
  Fwd *fwd = new Fwd{deleter, hint, len};
  return napi_create_external_arraybuffer(
      env, data, len,
      [](napi_env, void *d, void *h) {
        Fwd *f = static_cast<Fwd *>(h);
        f->fn(d, f->len, f->hint);
        delete f;
      },
      fwd, out);
}
#endif

extern "C" napi_status ipck_sab_create(napi_env env, void *data, size_t len,
                                       ipck_sab_deleter deleter, void *hint,
                                       napi_value *out) {
#ifndef IPCKIT_NO_V8
  (void)env;
  return wrap<v8::SharedArrayBuffer>(data, len, deleter, hint, out);
#else
  return wrap_external(env, data, len, deleter, hint, out);
#endif
}

extern "C" napi_status ipck_ab_alias(napi_env env, void *data, size_t len,
                                     napi_value *out) {
#ifndef IPCKIT_NO_V8
  (void)env;
  // V8's empty deleter: no callback, and the bytes are not counted as this
  // isolate's external memory (counted, every mapping would pace the garbage
  // collector as if it had been allocated anew: a connection's 8 MiB of rings
  // triggered full collections that stalled the event loop).
  return wrap<v8::ArrayBuffer>(data, len, v8::BackingStore::EmptyDeleter,
                               nullptr, out);
#else
  return napi_create_external_arraybuffer(env, data, len, NULL, NULL, out);
#endif
}

extern "C" napi_status ipck_ab_create(napi_env env, void *data, size_t len,
                                      ipck_sab_deleter deleter, void *hint,
                                      napi_value *out) {
#ifndef IPCKIT_NO_V8
  (void)env;
  return wrap<v8::ArrayBuffer>(data, len, deleter, hint, out);
#else
  return wrap_external(env, data, len, deleter, hint, out);
#endif
}
