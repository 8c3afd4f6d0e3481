/* SPDX-License-Identifier: MIT */
/**
 * @file common_err.h
 * @brief The one project-wide error convention.
 *
 * Every fallible function returns `int`: 0 on success, a negative COMMON_E* value on
 * failure (libuv style). Callbacks receive an `int status` with the same meaning.
 * Constructors return NULL and store the code in an optional `int *err`.
 * common_strerror() turns a code into a short English sentence; common_err_name() into
 * its symbolic name. Codes are grouped by module so a log line tells where it came from.
 */
#ifndef SWARMDVM_COMMON_ERR_H
#define SWARMDVM_COMMON_ERR_H

/* X(name, value, message). Ranges: common -1..-99, dht -100..-199, cashu -200..-299,
 * agent/llm -300..-399, protocol -400..-499, customer -500..-599. Append in your range. */
#define COMMON_ERR_LIST(X)                                                                   \
    X(COMMON_EINVAL, -1, "invalid argument")                                                 \
    X(COMMON_ENOMEM, -2, "out of memory")                                                    \
    X(COMMON_ERANGE, -3, "value out of range")                                               \
    X(COMMON_EPROTO, -4, "protocol violation")                                               \
    X(COMMON_ETOOBIG, -5, "input larger than the limit")                                     \
    X(COMMON_EIO, -6, "input/output error")                                                  \
    X(COMMON_ETIMEDOUT, -7, "timed out")                                                     \
    X(COMMON_ECANCELED, -8, "cancelled")                                                     \
    X(COMMON_ECONNREFUSED, -9, "connection refused")                                         \
    X(COMMON_ENOTFOUND, -10, "not found")                                                    \
    X(COMMON_EAGAIN, -11, "try again")                                                       \
    X(COMMON_ECRYPTO, -12, "authentication or cryptographic check failed")                   \
    X(COMMON_EPERM, -13, "permission denied or unsafe file permissions")                     \
    X(COMMON_EEXIST, -14, "already exists")                                                  \
    X(COMMON_ESTATE, -15, "operation not valid in the current state")                        \
    X(COMMON_EHTTP, -16, "HTTP error status")                                                \
    X(COMMON_EDB, -17, "database error")                                                     \
    X(COMMON_ECLOSED, -18, "connection closed")                                              \
    X(COMMON_EUNSUPPORTED, -19, "not supported")                                             \
    X(COMMON_ERESOLVE, -20, "could not resolve host")                                        \
    X(COMMON_ECONNRESET, -21, "connection reset")                                            \
    X(COMMON_EUTF8, -22, "invalid UTF-8")                                                    \
    X(COMMON_EJSON, -23, "malformed JSON")                                                   \
    X(COMMON_EUSAGE, -24, "bad command-line usage")                                          \
    X(COMMON_ESYS, -25, "system call failed")                                                \
    X(DHT_EHANDSHAKE, -100, "handshake failed")                                              \
    X(DHT_ESTREAMID, -101, "wrong secret-stream id")                                         \
    X(DHT_EFRAME, -102, "bad or oversized frame")                                            \
    X(DHT_EDESTROYED, -103, "stream destroyed by peer")                                      \
    X(DHT_ENOPEERS, -104, "no peers found")                                                  \
    X(DHT_EHOLEPUNCH, -105, "holepunch failed")                                              \
    X(DHT_EFIREWALL, -106, "connection refused by firewall")                                 \
    X(DHT_ENOROUTE, -107, "no route to peer")                                                \
    X(CASHU_ESPENT, -200, "token already spent")                                             \
    X(CASHU_EREPLAY, -201, "token already seen")                                             \
    X(CASHU_EMINT_NOT_ACCEPTED, -202, "mint not accepted")                                   \
    X(CASHU_ENOT_LOCKED, -203, "token not locked to the expected key or locktime too short") \
    X(CASHU_EBAD_TOKEN, -204, "bad token")                                                   \
    X(CASHU_EDLEQ, -205, "DLEQ proof missing or invalid")                                    \
    X(CASHU_EKEYSET, -206, "unknown or inconsistent keyset")                                 \
    X(CASHU_EFUNDS, -207, "insufficient funds")                                              \
    X(CASHU_EMINT, -208, "mint returned an error")                                           \
    X(CASHU_EUNIT, -209, "unsupported unit")                                                 \
    X(CASHU_EMINT_UNREACHABLE, -210, "mint unreachable")                                     \
    X(LLM_EMODEL, -300, "model not available")                                               \
    X(LLM_EBACKEND, -301, "LLM backend error")                                               \
    X(LLM_ETRUNCATED, -302, "LLM stream ended without a final message")                      \
    X(LLM_EAUTH, -303, "LLM backend rejected the API key")                                   \
    X(LLM_ECREDITS, -304, "LLM backend account has no credits")                              \
    X(LLM_ERATELIMIT, -305, "LLM backend rate limit")                                        \
    X(LLM_EBUSY, -306, "LLM backend busy")                                                   \
    X(LLM_EBADREQ, -307, "LLM backend rejected the request")                                 \
    X(AGENT_ECAPACITY, -310, "no capacity")                                                  \
    X(PROTO_EUNKNOWN_TYPE, -400, "unknown message type")                                     \
    X(PROTO_EBAD_MESSAGE, -401, "invalid message")                                           \
    X(PROTO_ELINE_TOO_LONG, -402, "line longer than the limit")                              \
    X(CUSTOMER_ENO_PROVIDER, -500, "no provider found")                                      \
    X(CUSTOMER_EPRICE, -501, "price above the maximum")                                      \
    X(CUSTOMER_EBUDGET, -502, "budget exhausted")

enum common_err {
    COMMON_OK = 0,
#define COMMON_ERR_ENUM_(name, value, msg) name = (value),
    COMMON_ERR_LIST(COMMON_ERR_ENUM_)
#undef COMMON_ERR_ENUM_
};

/** @brief A short sentence for an error code (never NULL; "unknown error" if unknown). */
const char *common_strerror(int err);

/** @brief The symbolic name of an error code, e.g. "COMMON_EINVAL" (never NULL). */
const char *common_err_name(int err);

/** @brief Map a negative libuv error code to the closest COMMON_E* code. */
int common_err_from_uv(int uv_err);

#endif
