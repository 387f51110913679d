/* store_owner.c - owner words, the store's only lock: the holder's pid and an expiry on the
 * monotonic clock (system-wide), taken with CAS when free, expired, or when the holder is gone
 * (kill(pid, 0) says ESRCH, or it is a zombie), so no lock can stay held by a crashed process.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

uint64_t dc_store_lock_take(uint64_t *word, uint32_t ttl_ms, uint32_t wait_ms)
{
    int32_t self = (int32_t)getpid();
    uint64_t deadline = mono_ms() + wait_ms;
    for (unsigned spin = 0;; spin++) {
        uint64_t now = mono_ms();
        uint64_t w = LOAD_ACQ(word);
        int32_t holder = owner_pid(w);
        if (w == 0 || owner_expiry(w) <= now ||
            (spin % 16 == 0 && holder != self && dc_pid_gone(holder))) {
            uint64_t mine = owner_make(self, now + ttl_ms);
            if (CAS(word, &w, mine))
                return mine;
            continue;
        }
        if (now >= deadline)
            return 0;
        if (spin < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

void dc_store_lock_give(uint64_t *word, uint64_t mine)
{
    /* fails harmlessly when the word was taken over after expiry */
    __atomic_compare_exchange_n(word, &mine, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
