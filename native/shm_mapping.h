#ifndef IPCKIT_MAPPING_H
#define IPCKIT_MAPPING_H
#include "core_common.h"

/* Takes ownership of [addr, addr+len) (len > 0) and returns
 * { buffer: SharedArrayBuffer, handle: External }. On failure the range is
 * unmapped and an exception is pending. */
napi_value ipck_mapping_expose(napi_env env, void *addr, size_t len);

bool ipck_init_mapping(napi_env env, napi_value exports);
#endif
