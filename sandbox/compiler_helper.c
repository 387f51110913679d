/* compiler_helper.c - the child end of a compiler session (see compiler.c for the protocol):
 * confines itself with dc_confine before it reads anything, then compiles request after request
 * with dc_compile, batching its replies, until its socket reaches EOF. In the test build it also
 * answers probe requests that attempt what the confinement forbids.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "compiler.h"
#include "compiler_wire.h"
#include "confine.h"

typedef struct helper {
    int fd;
#ifdef DC_TESTING
    int allow_probe;
#endif
    pid_t parent;
    char *in;           /* bytes read, [in_off, in_len) not yet handled */
    size_t in_cap, in_len, in_off;
    unsigned char *out; /* replies not yet written */
    size_t out_cap, out_len;
    unsigned out_count; /* how many */
    char *name;         /* the current plugin's name, NUL-terminated */
    size_t name_cap;
} helper;

static void h_write(int fd, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)p + done, n - done);
        if (r > 0)
            done += (size_t)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            _exit(0); /* the parent went away: nothing left to do */
    }
}

static void h_flush(helper *h)
{
    h_write(h->fd, h->out, h->out_len);
    h->out_len = 0;
    h->out_count = 0;
}

/* Makes need bytes available at in + in_off. Pending replies are written first: a read may
 * block, and the parent may be waiting for them. EOF ends the helper. */
static void h_need(helper *h, size_t need)
{
    if (h->in_len - h->in_off >= need)
        return;
    if (h->out_len)
        h_flush(h);
    if (h->in_off) {
        memmove(h->in, h->in + h->in_off, h->in_len - h->in_off);
        h->in_len -= h->in_off;
        h->in_off = 0;
    }
    if (need > h->in_cap || h->in_cap - h->in_len < BUF_CHUNK / 4) {
        size_t cap = need > h->in_len + BUF_CHUNK ? need : h->in_len + BUF_CHUNK;
        char *p = realloc(h->in, cap);
        if (!p)
            _exit(3);
        h->in = p;
        h->in_cap = cap;
    }
    while (h->in_len < need) {
        ssize_t r = read(h->fd, h->in + h->in_len, h->in_cap - h->in_len);
        if (r > 0)
            h->in_len += (size_t)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            _exit(0); /* EOF: the session was closed or the parent died */
    }
}

/* Queues one reply frame (header and payload). The queue is written before the helper would
 * block on a read, or once it holds FLUSH_REPLIES replies or 64 KiB: a batch wakes the parent
 * once per many replies (18 rather than 25 us per small plugin), and a reply waits at most for
 * the compiles of 31 more requests already received. */
static void h_reply(helper *h, uint32_t rc, const void *p, size_t n)
{
    static const char oom[] = "out of memory in the compiler helper";
    if (n > UINT32_MAX || h->out_len + 8 + n < n)
        _exit(3);
    if (h->out_len + 8 + n > h->out_cap) {
        size_t cap = h->out_len + 8 + n + BUF_CHUNK;
        unsigned char *q = realloc(h->out, cap);
        if (!q) {
            h_flush(h);
            uint32_t hdr[2] = {DC_ENOMEM, sizeof oom - 1};
            h_write(h->fd, hdr, sizeof hdr);
            h_write(h->fd, oom, sizeof oom - 1);
            return;
        }
        h->out = q;
        h->out_cap = cap;
    }
    uint32_t hdr[2] = {rc, (uint32_t)n};
    memcpy(h->out + h->out_len, hdr, sizeof hdr);
    if (n)
        memcpy(h->out + h->out_len + 8, p, n);
    h->out_len += 8 + n;
    if (++h->out_count >= FLUSH_REPLIES || h->out_len >= BUF_CHUNK)
        h_flush(h);
}

static void h_replys(helper *h, uint32_t rc, const char *msg)
{
    h_reply(h, rc, msg, strlen(msg));
}

#ifdef DC_TESTING
static void h_probe(helper *h, uint32_t probe);
#endif

static void h_compile(helper *h, const char *name, uint32_t nlen, const char *code,
                      uint32_t clen)
{
    if ((size_t)nlen + 1 > h->name_cap) {
        char *p = realloc(h->name, (size_t)nlen + 1);
        if (!p)
            _exit(3);
        h->name = p;
        h->name_cap = (size_t)nlen + 1;
    }
    memcpy(h->name, name, nlen);
    h->name[nlen] = '\0';

#ifdef DC_TESTING
    const size_t plen = sizeof DC_PROBE_NAME_PREFIX - 1;
    if (h->allow_probe && nlen > plen && memcmp(h->name, DC_PROBE_NAME_PREFIX, plen) == 0) {
        h_probe(h, (uint32_t)strtoul(h->name + plen, NULL, 10));
        return;
    }
#endif
    unsigned char *bc = NULL;
    size_t bclen = 0;
    char msg[2048] = "";
    dc_rc rc = dc_compile(h->name, code, clen, &bc, &bclen, msg, sizeof msg);
    if (rc == DC_OK)
        h_reply(h, DC_OK, bc, bclen);
    else
        h_replys(h, rc, msg[0] ? msg : dc_strerror(rc));
    free(bc);
}

#ifdef DC_TESTING
/* The test build only (see compiler.h): each forbidden attempt should never return. */
static void h_probe(helper *h, uint32_t probe)
{
    char note[128];
    long r = 0;
    if (!h->allow_probe) {
        h_replys(h, DC_EINVAL, "probes are not enabled in this session");
        return;
    }
    if (h->out_len)
        h_flush(h); /* earlier replies reach the parent whatever the probe does */
    switch (probe) {
    case DC_PROBE_ALLOWED: {
        unsigned char rnd[8];
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || mprotect(p, 4096, PROT_READ) != 0 || munmap(p, 4096) != 0 ||
            getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            h_replys(h, DC_ELUA, "an allowed call failed");
            return;
        }
        h_replys(h, DC_OK, "allowed calls work");
        return;
    }
    case DC_PROBE_OPEN:
        r = open("/etc/hostname", O_RDONLY);
        break;
    case DC_PROBE_FORK:
        r = fork();
        if (r == 0)
            _exit(0);
        break;
    case DC_PROBE_EXECVE: {
        char *const argv[] = {(char *)"/bin/true", NULL};
        char *const envp[] = {NULL};
        r = execve("/bin/true", argv, envp);
        break;
    }
    case DC_PROBE_SOCKET:
        r = socket(AF_INET, SOCK_STREAM, 0);
        break;
    case DC_PROBE_MMAP_EXEC: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        r = p == MAP_FAILED ? -1 : 0;
        break;
    }
    case DC_PROBE_MPROTECT_EXEC: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        r = p == MAP_FAILED ? -2 : mprotect(p, 4096, PROT_READ | PROT_EXEC);
        break;
    }
    case DC_PROBE_WRITE_OTHER:
        r = write(1, "x", 1);
        break;
    case DC_PROBE_KILL:
        r = kill(h->parent, SIGKILL);
        break;
    case DC_PROBE_CRASH: {
        volatile uintptr_t bad = 8; /* not NULL: UBSan would report (and die) first */
        *(volatile int *)bad = 1;
        break;
    }
    case DC_PROBE_HANG:
        for (volatile unsigned long i = 0;; i++)
            ;
    case DC_PROBE_EXIT:
        _exit(3);
    case DC_PROBE_HUGE_REPLY: {
        uint32_t hdr[2] = {DC_OK, UINT32_MAX};
        h_write(h->fd, hdr, sizeof hdr);
        return;
    }
    case DC_PROBE_BAD_BYTECODE:
        h_replys(h, DC_OK, "print('not bytecode')");
        return;
    case DC_PROBE_BAD_CODE:
        h_replys(h, 77, "no such result");
        return;
    default:
        h_replys(h, DC_EINVAL, "unknown probe");
        return;
    }
    snprintf(note, sizeof note, "probe %u survived (returned %ld, errno %d)", probe, r, errno);
    h_replys(h, DC_OK, note);
}
#endif /* DC_TESTING */

void dc_compiler_helper_main(int fd, int allow_probe, int unconfined, pid_t parent)
{
    /* PR_SET_PDEATHSIG fires when the forking *thread* ends; a parent already gone shows as
     * a different parent pid. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        _exit(1);
    helper h = {.fd = fd, .parent = parent};
#ifdef DC_TESTING
    h.allow_probe = allow_probe;
#endif
    char err[256] = "";
    /* Warm-up on a trusted chunk that does not compile: the first Lua error in a process runs
     * the pthread_once of libgcc's unwinder, whose futex wake the filter refuses. */
    unsigned char *bc = NULL;
    size_t bclen = 0;
    if (dc_compile("warm-up", "=", 1, &bc, &bclen, err, sizeof err) != DC_ECOMPILE) {
        free(bc);
        h_replys(&h, DC_ELUA, "the compiler does not work before confinement");
        h_flush(&h);
        _exit(1);
    }
    if (!unconfined && dc_confine(fd, err, sizeof err) != 0) {
        h_replys(&h, DC_ELUA, err);
        h_flush(&h);
        _exit(1);
    }
    h_reply(&h, DC_OK, NULL, 0); /* hello: ready (written by the first h_need) */
    for (;;) {
        uint32_t req[3];
        h_need(&h, sizeof req);
        memcpy(req, h.in + h.in_off, sizeof req);
        if (req[0] == OP_COMPILE) {
            /* the parent never sends more; anything else is not our parent speaking */
            if (req[1] > DC_COMPILER_MAX_NAME || req[2] > DC_COMPILER_MAX_CODE)
                _exit(2);
            size_t total = sizeof req + (size_t)req[1] + req[2];
            h_need(&h, total);
            const char *name = h.in + h.in_off + sizeof req;
            h_compile(&h, name, req[1], name + req[1], req[2]);
            h.in_off += total;
#ifdef DC_TESTING
        } else if (req[0] == OP_PROBE && req[2] == 0) {
            h.in_off += sizeof req;
            h_probe(&h, req[1]);
#endif
        } else {
            _exit(2);
        }
    }
}
