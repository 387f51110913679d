/* harden.c - the optional worker filter (dynacode_harden): a seccomp filter on every
 * thread of the process that refuses execve, execveat, ptrace and process_vm_readv/writev with
 * EPERM. New processes stay allowed: the confined compiler helper is forked from the worker
 * (and runs under its own, far stricter filter).
 */
#include <errno.h>
#include <seccomp.h>
#include <string.h>

#include "base.h"

dc_rc dc_harden_process(char *err, size_t errlen)
{
    static const char *const refused[] = {
        "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        dc_set_err(err, errlen, "harden: seccomp_init failed");
        return DC_ENOMEM;
    }
    /* TSYNC: the threads already running (poller, watchdog) get the filter too */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; rc == 0 && i < sizeof refused / sizeof refused[0]; i++) {
        int nr = seccomp_syscall_resolve_name(refused[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        dc_set_err(err, errlen, "harden: cannot install the seccomp filter: %s", strerror(-rc));
        return DC_EPOLICY;
    }
    return DC_OK;
}
