#include "core_common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>

void ipck_throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return; /* keep the original, more precise exception */
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "ipckit native call failed: %s (%s)", what,
           info && info->error_message ? info->error_message : "unknown");
  napi_throw_error(env, "ERR_IPCKIT_NATIVE", msg);
}

napi_value ipck_throw_errno(napi_env env, int err, const char *syscall) {
  napi_value message, error;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, NULL, message, &error) != napi_ok) {
    ipck_throw_napi_failure(env, "create errno error");
    return NULL;
  }
  ipck_set_i64(env, error, "errno", err);
  napi_value sc;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  ipck_set_value(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

bool ipck_get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

bool ipck_get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

bool ipck_get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

bool ipck_get_bool(napi_env env, napi_value v, bool *out) {
  return napi_get_value_bool(env, v, out) == napi_ok;
}

bool ipck_get_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return false;
  if (len + 1 > cap) return false;
  return napi_get_value_string_utf8(env, v, buf, cap, &len) == napi_ok;
}

bool ipck_get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset) != napi_ok)
      return false;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *len = length * elem;
    return true;
  }
  return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

napi_value ipck_i64(napi_env env, int64_t v) {
  napi_value out;
  /* Values beyond 2^53 do not occur for sizes/ids/times; doubles are exact below. */
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

napi_value ipck_undefined(napi_env env) {
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

void ipck_set_i64(napi_env env, napi_value obj, const char *key, int64_t v) {
  napi_value val;
  if (napi_create_int64(env, v, &val) == napi_ok)
    napi_set_named_property(env, obj, key, val);
}

void ipck_set_value(napi_env env, napi_value obj, const char *key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

void ipck_set_ipc_perm(napi_env env, napi_value obj, const struct ipc_perm *perm) {
  ipck_set_i64(env, obj, "key", (int32_t)perm->__key);
  ipck_set_i64(env, obj, "uid", perm->uid);
  ipck_set_i64(env, obj, "gid", perm->gid);
  ipck_set_i64(env, obj, "cuid", perm->cuid);
  ipck_set_i64(env, obj, "cgid", perm->cgid);
  ipck_set_i64(env, obj, "mode", perm->mode);
  ipck_set_i64(env, obj, "seq", perm->__seq);
}

napi_value ipck_unlink_name(napi_env env, napi_callback_info info, int (*unlink_name)(const char *),
                            const char *syscall) {
  IPCK_ARGS(env, info, 1);
  char name[NAME_MAX + 2];
  if (!ipck_get_string(env, argv[0], name, sizeof name)) return ipck_throw_errno(env, EINVAL, syscall);
  if (unlink_name(name) != 0) return ipck_throw_errno(env, errno, syscall);
  return ipck_undefined(env);
}

bool ipck_export_functions(napi_env env, napi_value exports, const ipck_function *functions,
                           size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value f;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL,
                             &f) != napi_ok ||
        napi_set_named_property(env, exports, functions[i].name, f) != napi_ok)
      return false;
  }
  return true;
}

bool ipck_export_constants(napi_env env, napi_value exports, const char *name,
                           const ipck_constant *constants, size_t count) {
  napi_value c;
  if (napi_create_object(env, &c) != napi_ok) return false;
  for (size_t i = 0; i < count; i++) ipck_set_i64(env, c, constants[i].name, constants[i].value);
  ipck_set_value(env, exports, name, c);
  return true;
}
