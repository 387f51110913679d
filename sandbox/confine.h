/* confine.h - confinement of the compiler helper process (confine.c): after dc_confine the
 * calling process can only read and write one descriptor, allocate memory, compute and exit.
 * Used by compiler.c in the child it forks; never call it in a process you want to keep.
 */
#ifndef DC_CONFINE_H
#define DC_CONFINE_H

#include <stddef.h>

#include "base.h"

/* Confines the calling (single-threaded, just forked) process for good, in this order:
 * signal handlers back to default and all signals unblocked; every shared mapping unmapped
 * (the parent's shared memory must stay out of reach); every descriptor but fd closed;
 * RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE and RLIMIT_CORE set to 0; not dumpable;
 * no_new_privs; then a seccomp filter whose default action kills the process (SIGSYS) and that
 * allows only read and write on fd, memory management without PROT_EXEC, getrandom and exit.
 * Returns 0, or -1 with the reason in err (fd is then still open to report it; whether a filter
 * was installed is unknown, so the caller must exit). */
DC_HIDDEN int dc_confine(int fd, char *err, size_t errlen);

#endif /* DC_CONFINE_H */
