/* crash.c - crash containment: the handlers for the fatal signals, the alternate signal stack
 * they run on, and the "call in progress" record that tells a plugin's crash from the host's.
 * A crash outside a plugin call goes to whatever handled the signal before, unchanged.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crash.h"
#include "dynacode.h"

/* Room for the handler, the store probe and the report, with margin: the handler runs here
 * when the thread's own stack is exhausted (deep C recursion). */
#define DC_ALTSTACK_BYTES (64u * 1024u)

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL};
static const char *const fatal_names[] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGABRT", "SIGILL"};
#define NFATAL ((int)(sizeof fatal_sigs / sizeof fatal_sigs[0]))

_Static_assert(sizeof(pthread_t) <= sizeof(uintptr_t), "pthread_t held in an atomic word");

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction prev_action[NFATAL]; /* written before the handlers go in, then read */
static atomic_int installed;
static _Atomic(dc_crash_call *) current;    /* the call in progress, NULL when none */
static atomic_int firing;                   /* the first crash report wins */
static _Atomic uintptr_t stack_thread;      /* the last thread known to have an alt stack */
static dc_crash_report_cb reporter;
static void *reporter_ud;

/* ---- lines without malloc or stdio ---- */

static void put(dc_sigline *l, const char *p, size_t n)
{
    size_t room = sizeof l->buf - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

void dc_sigline_str(dc_sigline *l, const char *s)
{
    put(l, s, strlen(s));
}

void dc_sigline_quoted(dc_sigline *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[4] = {'\\', 0, 0, 0};
        switch (*p) {
        case '"': esc[1] = '"'; put(l, esc, 2); break;
        case '\\': esc[1] = '\\'; put(l, esc, 2); break;
        case '\n': esc[1] = 'n'; put(l, esc, 2); break;
        case '\r': esc[1] = 'r'; put(l, esc, 2); break;
        case '\t': esc[1] = 't'; put(l, esc, 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                esc[1] = 'x';
                esc[2] = hex[*p >> 4];
                esc[3] = hex[*p & 15];
                put(l, esc, 4);
            } else {
                put(l, (const char *)p, 1);
            }
        }
    }
    put(l, "\"", 1);
}

void dc_sigline_uint(dc_sigline *l, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(l, d + i, sizeof d - i);
}

void dc_sigline_ms(dc_sigline *l, double v)
{
    if (!(v >= 0))
        v = 0;
    if (v > 1e12)
        v = 1e12;
    unsigned long long thousandths = (unsigned long long)(v * 1000.0 + 0.5);
    dc_sigline_uint(l, thousandths / 1000);
    char frac[4] = {'.', (char)('0' + thousandths / 100 % 10), (char)('0' + thousandths / 10 % 10),
                    (char)('0' + thousandths % 10)};
    put(l, frac, 4);
}

void dc_sigline_write(const dc_sigline *l, int fd)
{
    size_t off = 0;
    while (off < l->len) {
        ssize_t n = write(fd, l->buf + off, l->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* ---- the handler ---- */

static int sig_index(int sig)
{
    for (int i = 0; i < NFATAL; i++)
        if (fatal_sigs[i] == sig)
            return i;
    return -1;
}

/* The default report: one line on fd 2 (nginx points it at its error log). */
static void log_crash(const dc_crash_info *i)
{
    dc_sigline l = {.len = 0};
    dc_sigline_str(&l, "dynacode: plugin ");
    dc_sigline_quoted(&l, i->plugin);
    dc_sigline_str(&l, " of domain ");
    dc_sigline_quoted(&l, i->domain);
    dc_sigline_str(&l, " crashed the process with ");
    dc_sigline_str(&l, i->signame);
    dc_sigline_str(&l, " during its ");
    dc_sigline_str(&l, dc_phase_name((dc_phase)i->phase));
    dc_sigline_str(&l, " call after ");
    dc_sigline_ms(&l, i->ms);
    dc_sigline_str(&l, " ms; ");
    if (i->quarantined) {
        dc_sigline_str(&l, "quarantined in the shared store for ");
        dc_sigline_uint(&l, i->quarantine_s);
        dc_sigline_str(&l, " s; ");
    } else {
        dc_sigline_str(&l, "no shared store to mark it quarantined in; ");
    }
    dc_sigline_str(&l, "process ");
    dc_sigline_uint(&l, (unsigned long long)getpid());
    dc_sigline_str(&l, " ends\n");
    dc_sigline_write(&l, 2);
}

/* Marks the plugin, reports. Only atomics on the store's preallocated table: the quarantine
 * entries take no lock, so a crash anywhere (in the store's own code included) cannot leave
 * one held that this would wait for. */
static void contain(int idx, dc_crash_call *c)
{
    dc_crash_info info = {
        .signo = fatal_sigs[idx],
        .signame = fatal_names[idx],
        .domain = c->domain,
        .plugin = c->plugin,
        .phase = c->phase,
        .ms = dc_now_ms() - c->t0_ms,
        .quarantine_s = c->quarantine_s ? c->quarantine_s : 300,
    };
    if (c->store) {
        dc_quarantine_slot *q = dc_store_quarantine(c->store, c->qkey, 1);
        if (q) {
            dc_store_quarantine_mark(q, dc_unix_ms() + (double)info.quarantine_s * 1000.0);
            info.quarantined = 1;
        }
    }
    if (reporter)
        reporter(reporter_ud, &info);
    else
        log_crash(&info);
}

/* Dies by sig with its default action: the signal is blocked while its handler runs, so it
 * stays pending until the handler returns and the interrupted context is back, which is what
 * a core dump then shows. */
static void die_by(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

/* Outside a plugin call: what would have happened without us. */
static void chain(int idx, int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *p = &prev_action[idx];
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction)
            p->sa_sigaction(sig, si, uc);
        return;
    }
    if (p->sa_handler == SIG_IGN) {
        /* the kernel does not let a fault be ignored: it kills with the default action */
        if (si && si->si_code > 0 && sig != SIGABRT)
            die_by(sig);
        return;
    }
    if (p->sa_handler == SIG_DFL) {
        die_by(sig);
        return;
    }
    p->sa_handler(sig);
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    int idx = sig_index(sig);
    if (idx < 0)
        return;
    dc_crash_call *c = atomic_load_explicit(&current, memory_order_acquire);
    /* A signal sent by another process (an operator's kill) is not the plugin's doing; one
     * the process sent itself (abort, raise) or a fault is. */
    int from_outside = si && si->si_code <= 0 && si->si_pid != getpid();
    if (c && !from_outside && pthread_equal(c->thread, pthread_self())) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&firing, &expected, 1))
            contain(idx, c);
        die_by(sig);
    } else {
        chain(idx, sig, si, uc);
    }
    errno = saved;
}

/* ---- alternate stack, arming ---- */

/* Gives the calling thread an alternate signal stack unless it has one. The mapping is never
 * released: a thread's registration outlives any engine, and a signal delivered onto freed
 * memory would kill the process another way. One per thread at most. */
static int ensure_altstack(void)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0)
        return -1;
    if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= DC_ALTSTACK_BYTES / 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t guard = page > 0 ? (size_t)page : 4096u;
    unsigned char *m = mmap(NULL, DC_ALTSTACK_BYTES + guard, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    mprotect(m, guard, PROT_NONE); /* an overflow of the handler's stack faults, not corrupts */
    stack_t ss = {.ss_sp = m + guard, .ss_size = DC_ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(m, DC_ALTSTACK_BYTES + guard);
        return -1;
    }
    return 0;
}

int dc_crash_arm(dc_crash_call *c)
{
    if (!atomic_load_explicit(&installed, memory_order_relaxed))
        return 0;
    c->thread = pthread_self();
    uintptr_t me = (uintptr_t)c->thread;
    if (atomic_load_explicit(&stack_thread, memory_order_relaxed) != me) {
        if (ensure_altstack() != 0)
            return 0; /* without one a stack overflow could not be handled: no promise */
        atomic_store_explicit(&stack_thread, me, memory_order_relaxed);
    }
    /* A load and a store, not a compare-and-swap: a host runs its plugin calls on one thread
     * (the event loop), and this is on the path of every call. Two threads arming at once may
     * leave one of them unguarded (a crash there goes to the previous handler), never blame
     * the wrong call: the handler checks the thread. */
    if (atomic_load_explicit(&current, memory_order_relaxed) != NULL)
        return 0;
    atomic_store_explicit(&current, c, memory_order_release);
    return 1;
}

void dc_crash_disarm(dc_crash_call *c)
{
    if (atomic_load_explicit(&current, memory_order_relaxed) == c)
        atomic_store_explicit(&current, NULL, memory_order_release);
}

void dc_crash_set_reporter(dc_crash_report_cb cb, void *ud)
{
    reporter = cb;
    reporter_ud = ud;
}

dc_rc dc_crash_guard_install(char *err, size_t errlen)
{
    dc_rc rc = DC_OK;
    pthread_mutex_lock(&install_lock);
    if (atomic_load(&installed))
        goto out;
    if (ensure_altstack() != 0) {
        dc_set_err(err, errlen, "crash guard: no alternate signal stack: %s", strerror(errno));
        rc = DC_ENOMEM;
        goto out;
    }
    atomic_store(&stack_thread, (uintptr_t)pthread_self());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NFATAL; i++)
        sigaddset(&sa.sa_mask, fatal_sigs[i]); /* one report, whichever comes second */
    for (int i = 0; i < NFATAL; i++) {
        if (sigaction(fatal_sigs[i], NULL, &prev_action[i]) != 0) {
            dc_set_err(err, errlen, "crash guard: sigaction: %s", strerror(errno));
            rc = DC_EINVAL;
            goto out;
        }
    }
    for (int i = 0; i < NFATAL; i++) {
        if (sigaction(fatal_sigs[i], &sa, NULL) != 0) {
            int e = errno;
            for (int j = 0; j < i; j++)
                sigaction(fatal_sigs[j], &prev_action[j], NULL);
            dc_set_err(err, errlen, "crash guard: sigaction: %s", strerror(e));
            rc = DC_EINVAL;
            goto out;
        }
    }
    atomic_store(&installed, 1);
out:
    pthread_mutex_unlock(&install_lock);
    return rc;
}
