/* crash.h - crash containment: while a plugin call runs, a fatal signal in its thread marks
 * the plugin quarantined in the shared store, reports it and lets the process die by that
 * signal. Everything reachable from the handler is async-signal-safe.
 */
#ifndef DC_CRASH_H
#define DC_CRASH_H

#include <pthread.h>
#include <stddef.h>

#include "bundle.h"
#include "store.h"

/* The call in progress, on the caller's stack for the duration of the call. */
typedef struct dc_crash_call {
    pthread_t thread;          /* set by dc_crash_arm */
    dc_store *store;           /* NULL: nothing to mark */
    const char *domain;
    const char *plugin;
    uint64_t qkey;
    uint32_t quarantine_s;     /* 0: 300 s, as the watchdog */
    int phase;
    double t0_ms;              /* dc_now_ms() when the call began */
} dc_crash_call;

/* What a reporter is told, from inside the signal handler. */
typedef struct dc_crash_info {
    int signo;
    const char *signame;       /* "SIGSEGV", ... */
    const char *domain;
    const char *plugin;
    int phase;
    double ms;                 /* since the call began */
    int quarantined;           /* 1 when the store holds the mark */
    uint32_t quarantine_s;
} dc_crash_info;

/* Called in the signal handler after the mark: only async-signal-safe work (write(2), _exit).
 * When it returns, the process dies by the signal. */
typedef void (*dc_crash_report_cb)(void *ud, const dc_crash_info *info);

/* Replaces the default report (a log line on fd 2). Call before dc_crash_guard_install. */
DC_HIDDEN void dc_crash_set_reporter(dc_crash_report_cb cb, void *ud);

/* Makes c the call in progress of this thread when the guard is installed and no other call
 * is; returns 1 when it did (then dc_crash_disarm must follow), 0 otherwise. Cheap: three
 * loads and a store on the common path, no atomic read-modify-write. */
DC_HIDDEN int dc_crash_arm(dc_crash_call *c);
DC_HIDDEN void dc_crash_disarm(dc_crash_call *c);

/* A line built without malloc or stdio, for handlers: text past the capacity is dropped. */
typedef struct dc_sigline {
    char buf[768];
    size_t len;
} dc_sigline;

DC_HIDDEN void dc_sigline_str(dc_sigline *l, const char *s);
/* s between double quotes, with quote, backslash and control bytes escaped */
DC_HIDDEN void dc_sigline_quoted(dc_sigline *l, const char *s);
DC_HIDDEN void dc_sigline_uint(dc_sigline *l, unsigned long long v);
/* v >= 0 with three decimals */
DC_HIDDEN void dc_sigline_ms(dc_sigline *l, double v);
/* write(2) of the whole line to fd, retried on EINTR and short writes */
DC_HIDDEN void dc_sigline_write(const dc_sigline *l, int fd);

#endif /* DC_CRASH_H */
