/* compiler_wire.h - what the two ends of a compiler session share: the request codes and the
 * buffer sizes of the protocol described at the top of compiler.c, and the helper's entry point
 * (compiler_helper.c). Private to sandbox/compiler*.c.
 */
#ifndef DC_COMPILER_WIRE_H
#define DC_COMPILER_WIRE_H

#include <sys/types.h>

#define BUF_CHUNK (64u * 1024u) /* socket reads and reply batches */
#define FLUSH_REPLIES 32        /* replies the helper holds back at most (see h_reply) */

enum { OP_COMPILE = 1, OP_PROBE = 2 };

/* The helper process's life, in the forked child: confines itself (unless unconfined, a test
 * build under Valgrind), says hello, then answers requests on fd until EOF. Never returns. */
__attribute__((noreturn)) void dc_compiler_helper_main(int fd, int allow_probe, int unconfined,
                                                       pid_t parent);

#endif /* DC_COMPILER_WIRE_H */
