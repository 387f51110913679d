/* harden.c - the optional worker filter (dynacode_harden): a seccomp filter on every thread of
 * the process that refuses execve, execveat, ptrace, process_vm_readv/writev and new processes
 * (fork, vfork, clone without CLONE_THREAD) with EPERM. Threads stay allowed: clone with
 * CLONE_THREAD passes; clone3 takes its flags in memory a filter cannot read, so it fails with
 * ENOSYS, on which the C library starts the thread with clone instead. The confined compiler
 * helpers are forked by the compiler spawner (compiler_spawner.c), which the host starts before
 * this filter and which runs its own, unfiltered, fork.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>

#include "base.h"

dc_rc dc_harden_process(char *err, size_t errlen)
{
    static const char *const refused[] = {
        "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "fork", "vfork",
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
    /* clone without CLONE_THREAD; the flags are the first argument (the second on s390) */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
#if defined(__s390__) || defined(__s390x__)
                              SCMP_A1(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
#else
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
#endif
    if (rc == 0) {
        int nr = seccomp_syscall_resolve_name("clone3");
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
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
