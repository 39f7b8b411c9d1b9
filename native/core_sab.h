#ifndef IPCKIT_SAB_H
#define IPCKIT_SAB_H
#include "core_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once the JS side can no longer reach the memory (garbage
 * collection, or the isolate's teardown); may run on any thread. */
typedef void (*ipck_sab_deleter)(void *data, size_t len, void *hint);

/* Wraps [data, data+len) as a SharedArrayBuffer; len must be > 0. */
napi_status ipck_sab_create(napi_env env, void *data, size_t len,
                            ipck_sab_deleter deleter, void *hint,
                            napi_value *out);

/* Wraps [data, data+len) as a plain ArrayBuffer whose deleter runs when
 * the GC frees it (on any thread): no weak handle or finalizer on the JS
 * thread, which napi_create_external_buffer costs per Buffer. */
napi_status ipck_ab_create(napi_env env, void *data, size_t len,
                           ipck_sab_deleter deleter, void *hint,
                           napi_value *out);

/* Wraps [data, data+len) as a plain ArrayBuffer that owns nothing: no
 * deleter, and not counted as the isolate's external memory. Whoever makes
 * it keeps the memory mapped as long as the ArrayBuffer is reachable. */
napi_status ipck_ab_alias(napi_env env, void *data, size_t len, napi_value *out);

#ifdef __cplusplus
}
#endif
#endif
