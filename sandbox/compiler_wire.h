/* compiler_wire.h - what the two ends of a compiler session share: the request codes and the
 * buffer sizes of the protocol described at the top of compiler.c, the helper's entry point
 * (compiler_helper.c), and the spawner's control protocol (described in compiler_spawner.c)
 * between its host end (compiler_spawner.c) and its process (compiler_spawner_main.c). Private
 * to sandbox/compiler*.c.
 */
#ifndef DC_COMPILER_WIRE_H
#define DC_COMPILER_WIRE_H

#include <stdint.h>
#include <sys/types.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* header only: RUNNING_ON_VALGRIND is 0 on a real CPU */
#define DC_HAVE_VALGRIND_H 1
#endif
#endif

/* 1 when this process runs on valgrind's synthetic CPU. */
static inline int dc_under_valgrind(void)
{
#ifdef DC_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

#define BUF_CHUNK (64u * 1024u) /* socket reads and reply batches */
#define FLUSH_REPLIES 32        /* replies the helper holds back at most (see h_reply) */

enum { OP_COMPILE = 1, OP_PROBE = 2 };

/* The helper process's life, in the forked child: confines itself (unless unconfined, a test
 * build under Valgrind), says hello, then answers requests on fd until EOF. Never returns. */
__attribute__((noreturn)) void dc_compiler_helper_main(int fd, int allow_probe, int unconfined,
                                                       pid_t parent);

/* ---- the spawner's control protocol ---- */
#define SP_MAGIC 0x44435350u   /* "DCSP" */
#define SP_OP_SESSION 1u
#define SP_MAX_HELPERS 64      /* sessions open at once through one spawner */

typedef struct sp_req {
    uint32_t magic, op, seq;
    uint32_t allow_probe, unconfined; /* 0 or 1 */
} sp_req;

typedef struct sp_rep {
    uint32_t magic, seq;
    int32_t err;      /* 0, or an errno value with msg */
    int32_t pid;      /* the helper (or, in the hello, the spawner) */
    uint32_t nfds;    /* descriptors carried: 2 or 3 for a session, 0 otherwise */
    char msg[116];
} sp_rep;

/* The spawner process's life, in the child forked by dc_compiler_spawner_start: answers
 * session requests on ctl until EOF. Never returns. */
__attribute__((noreturn)) void dc_compiler_spawner_main(int ctl, pid_t parent);

/* A session's helper forked by the spawner: what the host gets back. */
typedef struct dc_spawned {
    int fd;       /* the host's end of the session socket */
    int statusfd; /* read end of the status pipe: one dc_spawned_status once the helper ended */
    int pidfd;    /* the helper's pidfd, or -1 (kernel without pidfd_open, valgrind) */
    pid_t pid;
} dc_spawned;

/* How a helper ended, as the spawner's waitid saw it (siginfo's si_code and si_status). */
typedef struct dc_spawned_status {
    int32_t code;
    int32_t status;
} dc_spawned_status;

/* Asks this process's spawner for a session: 1 with *out filled, 0 when this process has no
 * spawner running (err then says why when it had one that ended; the caller forks the helper
 * itself), -1 when the spawner refused or did not answer within timeout_ms (reason in err).
 * Thread-safe. */
int dc_spawner_session(int allow_probe, int unconfined, uint32_t timeout_ms, dc_spawned *out,
                       char *err, size_t errlen);

#endif /* DC_COMPILER_WIRE_H */
