/* confine.c - owns the confinement of the compiler helper (it may read its input, compute, write
 * its output and exit, and nothing else), the OpenSSH way: descriptors closed, limits to zero,
 * no_new_privs, then a default-kill seccomp filter; and first, since a fork inherits the parent's
 * shared memory (nginx's zones) where no filter stops a plain store, every shared mapping
 * unmapped. Relies on libseccomp for the BPF program and the architecture check (a syscall of
 * another ABI, x32 or i386, is killed too).
 *
 * The allow list, and why each entry is there (seen under strace -f on the helper compiling
 * plugins, small and large, from the main thread and from another thread; anything else kills
 * the process with SIGSYS):
 *   read, write     on the helper's socket only (argument 0 compared with its number)
 *   brk             glibc malloc, main arena
 *   mmap, mprotect  only without PROT_EXEC: LuaJIT's allocator (lj_alloc maps its arenas) and
 *                   glibc malloc's large chunks; mprotect grows a thread arena (when the session
 *                   is opened from a thread other than main). The JIT is never used here, so no
 *                   executable page is needed (none was ever asked for), and none can be made:
 *                   code injected into the helper cannot be run from data.
 *   munmap, mremap  lj_alloc and free() giving memory back or growing it; mremap keeps the
 *                   protection, so it cannot add PROT_EXEC either
 *   madvise         free() shrinking a thread arena (glibc's shrink_heap, MADV_DONTNEED; seen in
 *                   the parent's threads under the same load) and ASan's allocator
 *   getrandom       every lua_newstate seeds LuaJIT's PRNG (allocator randomisation); without
 *                   it luaL_newstate fails
 *   exit_group      _exit (one thread: glibc's fallback to exit is never reached)
 * Refused on purpose: rt_sigreturn (no handler is left installed); futex (one thread: the only
 * call seen was the wake that ends the pthread_once libgcc's unwinder runs on the first Lua error
 * in a process, and compiler.c runs that once before confining; a lock that another thread of
 * the parent held at fork then kills the helper at once instead of hanging it); close, open*,
 * fork/clone, execve*, socket*, kill, ptrace and all the rest.
 *
 * Sanitizer builds (-DDC_SANITIZE=ON) add one call, see DC_CONFINE_ASAN; production builds
 * never have it. valgrind can host neither seccomp nor RLIMIT_NOFILE 0: see compiler.h
 * (valgrind_unconfined) for how the tests run there.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "confine.h"

#if defined(__SANITIZE_ADDRESS__)
#define DC_CONFINE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DC_CONFINE_ASAN 1
#endif
#endif

/* Closes every descriptor except keep: close_range where the kernel has it (5.9), else a loop
 * up to the descriptor limit. */
static int close_others(int keep, char *err, size_t errlen)
{
    unsigned k = (unsigned)keep;
    if ((k == 0 || close_range(0, k - 1, 0) == 0) && close_range(k + 1, ~0U, 0) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL) {
        dc_set_err(err, errlen, "close_range: %s", strerror(errno));
        return -1;
    }
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 65536;
    for (long fd = 0; fd < max; fd++)
        if (fd != keep)
            close((int)fd);
    return 0;
}

/* Parses "start-end perms ..." of a /proc/self/maps line: 1 for a shared mapping. */
static int shared_range(const char *line, uintptr_t *start, uintptr_t *end)
{
    char *e;
    unsigned long long a = strtoull(line, &e, 16);
    if (*e != '-')
        return 0;
    unsigned long long b = strtoull(e + 1, &e, 16);
    if (*e != ' ' || strlen(e + 1) < 4 || b <= a)
        return 0;
    *start = (uintptr_t)a;
    *end = (uintptr_t)b;
    return e[4] == 's'; /* perms "rw-s": shared */
}

/* Unmaps every shared mapping inherited from the parent (nginx's shared zones, a file mapped
 * MAP_SHARED): the filter does not stop plain stores, and the helper must not be able to write
 * to memory that other processes read. Reads /proc/self/maps, so it runs before the descriptors
 * and the filter go; without /proc it fails (no unconfined fallback). */
static int unmap_shared(char *err, size_t errlen)
{
    enum { MAX_RANGES = 64 };
    for (int pass = 0; pass < 64; pass++) {
        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            dc_set_err(err, errlen, "/proc/self/maps: %s", strerror(errno));
            return -1;
        }
        uintptr_t ranges[MAX_RANGES][2];
        int nr = 0, skip_rest = 0, eof = 0;
        char buf[8192];
        size_t len = 0;
        while (!eof && nr < MAX_RANGES) {
            ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                dc_set_err(err, errlen, "/proc/self/maps: %s", strerror(errno));
                close(fd);
                return -1;
            }
            eof = r == 0;
            len += (size_t)r;
            buf[len] = '\0';
            size_t off = 0;
            char *nl;
            while (nr < MAX_RANGES && (nl = memchr(buf + off, '\n', len - off))) {
                *nl = '\0';
                if (!skip_rest &&
                    shared_range(buf + off, &ranges[nr][0], &ranges[nr][1]))
                    nr++;
                skip_rest = 0;
                off = (size_t)(nl - buf) + 1;
            }
            if (off == 0 && len == sizeof buf - 1) { /* a line longer than buf: its head */
                if (!skip_rest && shared_range(buf, &ranges[nr][0], &ranges[nr][1]))
                    nr++;
                skip_rest = 1;
                off = len;
            }
            memmove(buf, buf + off, len - off);
            len -= off;
        }
        close(fd);
        if (nr == 0)
            return 0;
        for (int i = 0; i < nr; i++) {
            if (munmap((void *)ranges[i][0], ranges[i][1] - ranges[i][0]) != 0) {
                dc_set_err(err, errlen, "munmap of a shared mapping: %s", strerror(errno));
                return -1;
            }
        }
    }
    dc_set_err(err, errlen, "too many shared mappings to unmap");
    return -1;
}

static int zero_limits(char *err, size_t errlen)
{
    /* NOFILE 0 breaks nothing: the socket is already open and no new descriptor is ever made.
     * NPROC 0 does not bind root (the filter does); CORE 0 keeps a SIGSYS from writing a core
     * of a parent-sized address space (PR_SET_DUMPABLE 0 below covers piped core patterns). */
    static const struct {
        int res;
        const char *name;
    } lims[] = {{RLIMIT_NOFILE, "RLIMIT_NOFILE"},
                {RLIMIT_NPROC, "RLIMIT_NPROC"},
                {RLIMIT_FSIZE, "RLIMIT_FSIZE"},
                {RLIMIT_CORE, "RLIMIT_CORE"}};
    const struct rlimit zero = {0, 0};
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        if (setrlimit(lims[i].res, &zero) != 0) {
            dc_set_err(err, errlen, "setrlimit(%s, 0): %s", lims[i].name, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Default dispositions and an empty mask: the parent's handlers (nginx's, the command's) must
 * not run in the helper, and a terminating signal must terminate it. */
static void default_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL); /* EINVAL for SIGKILL, SIGSTOP and glibc's own */
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

#define ALLOW(sc, ...)                                                                 \
    do {                                                                               \
        if (rc == 0)                                                                   \
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sc), __VA_ARGS__);     \
        if (rc != 0 && !what)                                                          \
            what = #sc;                                                                \
    } while (0)

static int load_filter(int fd, char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        dc_set_err(err, errlen, "seccomp_init failed");
        return -1;
    }
    const char *what = NULL;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc != 0)
        what = "bad-arch action";
    const scmp_datum_t sock = (scmp_datum_t)fd;
    const scmp_datum_t exec = PROT_EXEC;
    ALLOW(read, 1, SCMP_A0(SCMP_CMP_EQ, sock));
    ALLOW(write, 1, SCMP_A0(SCMP_CMP_EQ, sock));
    ALLOW(brk, 0);
    ALLOW(mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, exec, 0));
    ALLOW(mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, exec, 0));
    ALLOW(munmap, 0);
    ALLOW(mremap, 0);
    ALLOW(madvise, 0);
    ALLOW(getrandom, 0);
    ALLOW(exit_group, 0);
#ifdef DC_CONFINE_ASAN
    /* ASan's __asan_handle_no_return (before every throw and _exit) asks whether it runs on
     * the alternate signal stack: sigaltstack(NULL, &old), a query. Sanitizer builds only. */
    ALLOW(sigaltstack, 1, SCMP_A0(SCMP_CMP_EQ, 0));
#endif
    if (rc != 0) {
        dc_set_err(err, errlen, "seccomp rule for %s: %s", what, strerror(-rc));
        seccomp_release(ctx);
        return -1;
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        dc_set_err(err, errlen, "seccomp_load: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

int dc_confine(int fd, char *err, size_t errlen)
{
    default_signals();
    if (unmap_shared(err, errlen) != 0 || close_others(fd, err, errlen) != 0)
        return -1;
    if (zero_limits(err, errlen) != 0)
        return -1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        dc_set_err(err, errlen, "prctl: %s", strerror(errno));
        return -1;
    }
    return load_filter(fd, err, errlen);
}
