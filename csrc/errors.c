/*
 * Errors: a result code plus a thread-local detail message, so every
 * language's binding turns a code into its own exception in one place.
 */
#include "ring_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef MYC_TEST_HOOKS
void (*myc_test_hook)(int step, uint64_t position);
#endif

static _Thread_local char g_error[512];
static _Thread_local int g_errno;
static _Thread_local uint32_t g_batch_written;
static _Thread_local int g_result;

int myc_last_result(void) { return g_result; }

const char *myc_last_error(void) { return g_error; }
int myc_last_errno(void) { return g_errno; }
uint32_t myc_last_batch_written(void) { return g_batch_written; }
void myc_set_batch_written(uint32_t written) { g_batch_written = written; }

int myc_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    g_errno = 0;
    g_result = code;
    return code;
}

int myc_fail_sys(int err, const char *fmt, ...) {
    va_list ap;
    char what[384];
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(g_error, sizeof g_error, "%s: %s", what, strerror(err));
    g_errno = err;
    g_result = MYC_ERR_SYSTEM;
    return MYC_ERR_SYSTEM;
}

const char *myc_result_name(int result) {
    switch (result) {
    case MYC_OK: return "MYC_OK";
    case MYC_ERR_FULL: return "MYC_ERR_FULL";
    case MYC_ERR_EMPTY: return "MYC_ERR_EMPTY";
    case MYC_ERR_ARG: return "MYC_ERR_ARG";
    case MYC_ERR_NAME: return "MYC_ERR_NAME";
    case MYC_ERR_NOT_FOUND: return "MYC_ERR_NOT_FOUND";
    case MYC_ERR_EXISTS: return "MYC_ERR_EXISTS";
    case MYC_ERR_FORMAT: return "MYC_ERR_FORMAT";
    case MYC_ERR_CORRUPT: return "MYC_ERR_CORRUPT";
    case MYC_ERR_READER_BUSY: return "MYC_ERR_READER_BUSY";
    case MYC_ERR_SCHEMA: return "MYC_ERR_SCHEMA";
    case MYC_ERR_TOO_LARGE: return "MYC_ERR_TOO_LARGE";
    case MYC_ERR_INTERRUPTED: return "MYC_ERR_INTERRUPTED";
    case MYC_ERR_SYSTEM: return "MYC_ERR_SYSTEM";
    case MYC_ERR_HANDLE_BUSY: return "MYC_ERR_HANDLE_BUSY";
    case MYC_ERR_CLOSED: return "MYC_ERR_CLOSED";
    case MYC_ERR_ABANDONED: return "MYC_ERR_ABANDONED";
    case MYC_ERR_TOO_MANY_WRITERS: return "MYC_ERR_TOO_MANY_WRITERS";
    case MYC_ERR_FOREIGN: return "MYC_ERR_FOREIGN";
    case MYC_ERR_FORKED: return "MYC_ERR_FORKED";
    default: return "MYC_ERR_UNKNOWN";
    }
}
