#include "common.h"
bool ipck_init_mutex(napi_env env, napi_value exports) { return true; }
