/* SPDX-License-Identifier: MIT */
#include "common/common_err.h"

#include <uv.h>

const char *common_strerror(int err) {
    switch (err) {
    case COMMON_OK: return "success";
#define COMMON_ERR_MSG_(name, value, msg) \
    case name: return msg;
        COMMON_ERR_LIST(COMMON_ERR_MSG_)
#undef COMMON_ERR_MSG_
    default: return "unknown error";
    }
}

const char *common_err_name(int err) {
    switch (err) {
    case COMMON_OK: return "COMMON_OK";
#define COMMON_ERR_NAME_(name, value, msg) \
    case name: return #name;
        COMMON_ERR_LIST(COMMON_ERR_NAME_)
#undef COMMON_ERR_NAME_
    default: return "COMMON_EUNKNOWN";
    }
}

int common_err_from_uv(int uv_err) {
    switch (uv_err) {
    case 0: return COMMON_OK;
    case UV_EINVAL: return COMMON_EINVAL;
    case UV_ENOMEM: return COMMON_ENOMEM;
    case UV_ETIMEDOUT: return COMMON_ETIMEDOUT;
    case UV_ECANCELED: return COMMON_ECANCELED;
    case UV_ECONNREFUSED: return COMMON_ECONNREFUSED;
    case UV_ECONNRESET: return COMMON_ECONNRESET;
    case UV_EOF: return COMMON_ECLOSED;
    case UV_EPIPE: return COMMON_ECLOSED;
    case UV_ENOENT: return COMMON_ENOTFOUND;
    case UV_EACCES:
    case UV_EPERM: return COMMON_EPERM;
    case UV_EEXIST: return COMMON_EEXIST;
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN: return COMMON_ERESOLVE;
    case UV_EAGAIN: return COMMON_EAGAIN;
    default: return uv_err < 0 ? COMMON_ESYS : COMMON_OK;
    }
}
