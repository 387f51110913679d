/* crash_fn.c - test builds only (unit tests, the test build of the command, the test variant of
 * the nginx module): crash_in_c(kind), a C function reachable from plugins that ends the process
 * the way a broken C function would, put into every plugin environment by a constructor.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

/* the library's hook, called with each new plugin environment (sandbox/env.c) */
extern void (*dc_env_test_hook)(lua_State *L, int env);

/* recursion that ends only when the stack does (the limit is never reached), with a frame the
 * compiler cannot fold into a loop */
static volatile long depth_limit = 1L << 40;

__attribute__((noinline)) static int deep(volatile char *up, long n)
{
    volatile char frame[512];
    frame[0] = (char)n;
    frame[511] = up ? up[0] : 0;
    if (n >= depth_limit)
        return frame[0];
    return deep(frame, n + 1) + frame[511];
}

/* the sanitizers must not report these first: the point is the signal itself */
__attribute__((no_sanitize("address", "undefined")))
static int crash_in_c(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    if (strcmp(kind, "segv") == 0) {
        volatile uintptr_t addr = 8; /* the first page is never mapped */
        *(volatile int *)addr = 1;
    } else if (strcmp(kind, "stack") == 0) {
        deep(NULL, 0);
    } else if (strcmp(kind, "abort") == 0) {
        abort();
    } else if (strcmp(kind, "fpe") == 0) {
        volatile int num = 7, zero = 0; /* both unknown to the compiler: a real division */
        volatile int r = num / zero;
        (void)r;
    } else if (strcmp(kind, "bus") == 0) {
        raise(SIGBUS);
    } else if (strcmp(kind, "ill") == 0) {
        raise(SIGILL);
    } else if (strcmp(kind, "killed") == 0) {
        /* another process sends the signal while this call sleeps in C */
        pid_t self = getpid();
        pid_t k = fork();
        if (k == 0) {
            kill(self, SIGSEGV);
            _exit(0);
        }
        for (int i = 0; i < 100; i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    } else {
        return luaL_error(L, "crash_in_c: unknown kind \"%s\"", kind);
    }
    return luaL_error(L, "crash_in_c(\"%s\"): still alive", kind);
}

static void add_crash(lua_State *L, int env)
{
    lua_pushcfunction(L, crash_in_c);
    lua_setfield(L, env, "crash_in_c");
}

__attribute__((constructor)) static void install_crash_hook(void)
{
    dc_env_test_hook = add_crash;
}
