// The one file that touches the V8 API: N-API on Node 20 cannot create a
// SharedArrayBuffer over foreign memory, and only a real SharedArrayBuffer can
// be shared with worker threads and used with Atomics.wait. Everything else
// stays in N-API C. Building with IPCKIT_NO_V8 falls back to an external
// ArrayBuffer (same memory, but postMessage copies it and Atomics.wait refuses).
#include "sab.h"

#ifndef IPCKIT_NO_V8
#include <v8.h>
#endif

extern "C" napi_status ipck_sab_create(napi_env env, void *data, size_t len,
                                       ipck_sab_deleter deleter, void *hint,
                                       napi_value *out) {
#ifndef IPCKIT_NO_V8
  (void)env;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return napi_generic_failure;
  std::unique_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(data, len, deleter, hint);
  v8::Local<v8::SharedArrayBuffer> sab =
      v8::SharedArrayBuffer::New(isolate, std::move(store));
  // napi_value is a V8 handle slot; the N-API callback's HandleScope owns it.
  *out = reinterpret_cast<napi_value>(*sab);
  return napi_ok;
#else
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
#endif
}

extern "C" napi_status ipck_ab_create(napi_env env, void *data, size_t len,
                                      ipck_sab_deleter deleter, void *hint,
                                      napi_value *out) {
#ifndef IPCKIT_NO_V8
  (void)env;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return napi_generic_failure;
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(data, len, deleter, hint);
  v8::Local<v8::ArrayBuffer> ab = v8::ArrayBuffer::New(isolate, std::move(store));
  *out = reinterpret_cast<napi_value>(*ab);
  return napi_ok;
#else
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
#endif
}
