/* compiler.h - a compiler session (compiler.c): one confined helper process, forked once, that
 * compiles plugin after plugin with dc_compile and hands back bytecode or Lua's message. This is
 * the only place untrusted Lua source is parsed. A session is used by one thread at a
 * time. Without a compiler spawner (compiler_spawner.c) the thread that opens it must outlive it
 * (the helper gets SIGKILL when that thread ends: PR_SET_PDEATHSIG is per thread); with one, the
 * helper is the spawner's child and lives until the session is closed or the spawner ends.
 */
#ifndef DC_COMPILER_H
#define DC_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct dc_compiler dc_compiler;

/* Largest name and source a session forwards (DC_ELIMIT above, without asking the helper). */
#define DC_COMPILER_MAX_NAME (64u * 1024u)
#define DC_COMPILER_MAX_CODE (16u * 1024u * 1024u)

typedef struct dc_compiler_opts {
    uint32_t timeout_ms; /* a reply due (send, compile, reply) and the hello; past it the
                            helper gets SIGKILL (0: 5000); close waits min(it, 1 s) */
    size_t max_reply;    /* largest reply accepted, bytecode or message (0: 16 MiB) */
#ifdef DC_TESTING
    /* the test build of the library only (DC_TESTING); the product has neither field */
    int allow_probe;     /* the helper accepts dc_compiler_probe requests */
    int valgrind_unconfined; /* under valgrind, which can host neither seccomp nor
                                RLIMIT_NOFILE 0, run the helper unconfined rather than fail to
                                open (see dc_compiler_confined); no effect on a real CPU */
#endif
} dc_compiler_opts;

/* Starts the helper (through this process's compiler spawner when one runs, see
 * dc_compiler_spawner_start; else forked here), waits for it to report that it is confined and
 * returns the session in *out. DC_ELUA (err says why) when the helper could not be started or confined: there is no
 * unconfined fallback. Free with dc_compiler_close. */
DC_HIDDEN dc_rc dc_compiler_open(dc_compiler **out, char *err, size_t errlen);
/* Same with options; opts may be NULL (defaults). */
DC_HIDDEN dc_rc dc_compiler_open_opts(const dc_compiler_opts *opts, dc_compiler **out, char *err,
                                      size_t errlen);

/* dc_compile through the helper: the same codes, bytecode and messages (DC_ECOMPILE with Lua's
 * message for a plugin that does not compile; bytecode input refused). LuaJIT orders constant
 * table keys per state at random, so like two dc_compile calls, two compiles of a plugin with
 * keyed table constructors may differ in bytes, not in behaviour. *bc is malloc'd, freed
 * with free(). When the helper dies, hangs past the timeout or answers out of protocol, the
 * result is DC_ELUA with the reason ("compiler helper killed by signal 31 (SIGSYS)"), the
 * helper is reaped and the session is broken: every later call fails the same way and the
 * caller opens a new session. */
DC_HIDDEN dc_rc dc_compiler_compile(dc_compiler *c, const char *name, const char *code,
                                    size_t len, unsigned char **bc, size_t *bclen, char *err,
                                    size_t errlen);

/* One plugin of a batch. name, code and len are read; the rest is written. */
typedef struct dc_compile_job {
    const char *name;   /* NUL-terminated */
    const char *code;   /* may be NULL when len is 0 */
    size_t len;
    dc_rc rc;           /* as dc_compiler_compile */
    unsigned char *bc;  /* DC_OK: the bytecode, malloc'd (free()), else NULL */
    size_t bclen;
    char *msg;          /* otherwise: the message, malloc'd (free()); NULL if memory ran out */
} dc_compile_job;

/* Compiles jobs[0..n) in order, pipelined: requests keep going out while replies come back,
 * so the helper compiles while the parent sends and receives. Each job gets its own result
 * (compile errors included; DC_ELIMIT for a name or source over the limits, not sent). Returns
 * DC_OK while the session stays usable. When it breaks (see dc_compiler_compile), the job being
 * compiled gets DC_ELUA and the reason, every later job DC_ELUA "not compiled: ...", *failed_at
 * (may be NULL) the index of that job, and the result is DC_ELUA: open a new session and go on
 * from *failed_at + 1. *failed_at is n when nothing broke. DC_EINVAL for bad arguments (jobs
 * untouched). Each job's timeout runs from the previous reply; the helper holds back up to 32
 * replies, so timeout_ms must cover 32 compiles (the default 5 s covers plugins of MiBs). */
DC_HIDDEN dc_rc dc_compiler_compile_many(dc_compiler *c, dc_compile_job *jobs, size_t n,
                                         size_t *failed_at);

/* 1 after the helper died or was killed (see dc_compiler_compile), else 0. */
DC_HIDDEN int dc_compiler_broken(const dc_compiler *c);
/* 1 when the helper is confined: always, except for valgrind_unconfined under valgrind. */
DC_HIDDEN int dc_compiler_confined(const dc_compiler *c);
/* The helper's process id (tests), or -1 once it was reaped. */
DC_HIDDEN int dc_compiler_pid(const dc_compiler *c);

/* The compiler spawner's process id (tests), or -1 when this process runs none (see
 * dc_compiler_spawner_start in dynacode.h). */
DC_HIDDEN int dc_compiler_spawner_pid(void);

/* Ends the helper (EOF, then SIGKILL if it does not exit within the timeout), reaps it and
 * frees c. NULL is allowed. */
DC_HIDDEN void dc_compiler_close(dc_compiler *c);

#ifdef DC_TESTING
/* ---- the test build only (DC_TESTING): prove the confinement from outside ----
 * A probe asks the helper, already confined, to do one thing. The helper honours it only when the
 * session was opened with allow_probe (else DC_EINVAL). The product library is compiled without
 * DC_TESTING and has no probe code at all; even here a probe grants nothing: whatever it does,
 * code injected into the helper could do as well, under the same filter. The result is what
 * dc_compiler_compile would give: DC_OK with a note in err when the helper survived, DC_ELUA
 * naming the signal when it was killed. */
typedef enum dc_probe {
    DC_PROBE_ALLOWED = 1,   /* mmap/mprotect/munmap a read-write page, getrandom: survives */
    DC_PROBE_OPEN,          /* open("/etc/hostname", O_RDONLY) */
    DC_PROBE_FORK,          /* fork() */
    DC_PROBE_EXECVE,        /* execve("/bin/true") */
    DC_PROBE_SOCKET,        /* socket(AF_INET, SOCK_STREAM) */
    DC_PROBE_MMAP_EXEC,     /* mmap with PROT_EXEC */
    DC_PROBE_MPROTECT_EXEC, /* mprotect to PROT_READ|PROT_EXEC */
    DC_PROBE_WRITE_OTHER,   /* write() on descriptor 1, not the helper's socket */
    DC_PROBE_KILL,          /* kill(parent, SIGKILL): attack the parent */
    DC_PROBE_CRASH,         /* a store to address 8: SIGSEGV */
    DC_PROBE_HANG,          /* a busy loop, no syscall: the timeout must end it */
    DC_PROBE_EXIT,          /* _exit(3) without answering */
    DC_PROBE_HUGE_REPLY,    /* a reply header announcing 4 GiB - 1, over max_reply */
    DC_PROBE_BAD_BYTECODE,  /* DC_OK with a payload that is not LuaJIT bytecode (as the
                               reply to a compile: a probe's reply is text) */
    DC_PROBE_BAD_CODE       /* a reply with an unknown result code (77) */
} dc_probe;

/* In a probe session, compiling a plugin named "dc-probe:N" runs probe N in its place: a probe
 * anywhere in a batch, and bad replies to a compile request. */
#define DC_PROBE_NAME_PREFIX "dc-probe:"

DC_HIDDEN dc_rc dc_compiler_probe(dc_compiler *c, dc_probe probe, char *err, size_t errlen);
#endif /* DC_TESTING */

/* ---- compile: Lua source (never bytecode) to LuaJIT bytecode, in the calling process ----
 * Not public: it parses untrusted code unconfined. The library calls it only inside the
 * confined compiler helper (sandbox/compiler.c); tests and benchmarks call it on their own
 * trusted sources. *bc is malloc'd, freed with free(). */
DC_HIDDEN dc_rc dc_compile(const char *name, const char *code, size_t len, unsigned char **bc,
                           size_t *bclen, char *err, size_t errlen);

#endif /* DC_COMPILER_H */
