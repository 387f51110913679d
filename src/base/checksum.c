/* checksum.c - the 64-bit checksum of snapshot bytes: written with a snapshot by the
 * pipeline, verified by the shared store and by every worker that reads one. It detects
 * corruption, not forgery.
 */
#include <string.h>

#include "base.h"

#define P1 11400714785074694791ull
#define P2 14029467366897019727ull
#define P3 1609587929392839161ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Four independent lanes over 8-byte words (xxHash64's round), then the tail byte by byte.
 * Every step is a bijection of the running value for a fixed input, and each input word or
 * byte enters through a bijection, so any change confined to one 8-byte word (every single-byte
 * flip) always changes the result. About 8x the speed of FNV-1a (dc_hash64), which matters
 * because a worker verifies a snapshot on every swap. */
uint64_t dc_checksum64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t v[4] = {P1 + P2, P2, 0, 0 - P1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++)
            v[k] = rotl64(v[k] + load_le64(p + i + 8 * k) * P2, 31) * P1;
    }
    uint64_t h = (uint64_t)n * P3;
    for (int k = 0; k < 4; k++)
        h = (h ^ v[k]) * P1 + P3;
    for (; i + 8 <= n; i += 8)
        h = rotl64(h ^ (load_le64(p + i) * P2), 27) * P1 + P3;
    for (; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}
