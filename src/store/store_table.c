/* store_table.c - the keyed tables (quarantine entries, per-plugin metrics): open addressing in
 * a bounded probe window, entries claimed by CAS on their key and never emptied.
 */
#include "store_internal.h"

uint32_t dc_store_table_home(uint64_t key, uint32_t n)
{
    uint64_t x = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)((x >> 32) % n);
}

int64_t dc_store_table_find(void *tab, size_t esize, uint32_t n, uint32_t probe, uint64_t key,
                            int create, int *made)
{
    uint32_t h = dc_store_table_home(key, n);
    *made = 0;
    for (uint32_t i = 0; i < probe; i++) {
        uint32_t idx = (h + i) % n;
        uint64_t *k = (uint64_t *)((unsigned char *)tab + (size_t)idx * esize);
        uint64_t cur = LOAD_ACQ(k);
        if (cur == key)
            return idx;
        if (cur != 0)
            continue;
        if (!create)
            return -1; /* entries are filled in probe order: key is not further on */
        if (CAS(k, &cur, key)) {
            *made = 1;
            return idx;
        }
        if (cur == key)
            return idx; /* another process made it just now */
    }
    return -1;
}
