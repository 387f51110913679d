/* test_alloc.c - the plugin state's allocator: small blocks states free are kept for the
 * next allocations of the engine's states, and that must change nothing a plugin can see: values
 * that grow from one size class to another keep their bytes, across many requests on the same
 * state, and the memory quota still counts what the plugin holds (a kept block is not its).
 */
#include <stdlib.h>
#include <string.h>

#include "sbx_priv.h"
#include "testutil.h"

static const dc_quota roomy = {50000000, 5000, 8192};

/* Grows strings and tables through every small class and past them, then checks their bytes;
 * ngx.ctx-free, so each request starts from the same state it left. */
static const char churn[] =
    "local sum, t = 0, {}\n"
    "for n = 1, 300 do\n"
    "  t[n] = string.rep(string.char(65 + n % 26), n)\n"
    "  local u = {}\n"
    "  for i = 1, n % 40 do u[i] = i end\n"
    "  sum = sum + #u + #t[n]\n"
    "end\n"
    "for n = 1, 300 do\n"
    "  if #t[n] ~= n or t[n]:byte(n) ~= 65 + n % 26 then error('block ' .. n .. ' changed') end\n"
    "end\n"
    "local s = ''\n"
    "for i = 1, 200 do s = s .. string.char(97 + i % 26) end\n"
    "ngx.say(sum, ' ', #s, ' ', s:sub(1, 5), ' ', s:sub(-5))\n";

START_TEST(values_keep_their_bytes_across_requests)
{
    tu_run r;
    tu_run_plugins(&r, &(tu_run_opts){.host = "alloc.test", .quota = &roomy, .requests = 40},
                   (const char *const[]){"content", churn, NULL});
    ck_assert_int_eq(r.result, DC_RESULT_OK);
    /* sum of #u is 300 / 40 whole rounds of 0..39 plus the rest; #t[n] sums to 45150 */
    int su = 0;
    for (int n = 1; n <= 300; n++)
        su += n % 40;
    char want[128];
    snprintf(want, sizeof want, "%d 200 bcdef opqrs\n", su + 45150);
    ck_assert_str_eq(tu_run_body(&r), want);
    ck_assert_msg(strstr(r.trace, "error") == NULL, "%s", r.trace);
    dc_sim_free(r.sim);
}
END_TEST

/* Garbage made and freed over and over fills the kept blocks; the quota still trips on what
 * the plugin holds, and only then. */
START_TEST(memory_quota_counts_what_is_held)
{
    static const dc_quota tight = {50000000, 0, 512};
    tu_run r;
    /* 200 rounds of 2,000 short-lived small tables: far more than the quota in all, little
     * at any one time */
    tu_run_plugins(&r, &(tu_run_opts){.host = "alloc.test", .quota = &tight},
                   (const char *const[]){"content",
                                         "for i = 1, 200 do local t = {} "
                                         "for j = 1, 2000 do t[j % 8 + 1] = {j} end end "
                                         "ngx.say('ok')",
                                         NULL});
    ck_assert_int_eq(r.result, DC_RESULT_OK);
    ck_assert_str_eq(tu_run_body(&r), "ok\n");
    dc_sim_free(r.sim);
    /* holding them all trips */
    tu_run_plugins(&r, &(tu_run_opts){.host = "alloc.test", .quota = &tight},
                   (const char *const[]){"content",
                                         "local keep = {} for j = 1, 1e6 do keep[j] = {j} end",
                                         NULL});
    ck_assert_int_eq(r.result, DC_RESULT_QUOTA_MEMORY);
    dc_sim_free(r.sim);
}
END_TEST

/* The cache of freed blocks is left out under AddressSanitizer and under Valgrind's memcheck
 * (scripts/valgrind.sh), where every free must reach the checker, and kept elsewhere: on a
 * real CPU, and under callgrind, which counts the product's own path. Valgrind names each
 * tool's preload in LD_PRELOAD, which this process still has. */
START_TEST(block_cache_off_only_under_a_heap_checker)
{
    int expect = 0;
#if defined(__SANITIZE_ADDRESS__)
    expect = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    expect = 1;
#endif
#endif
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload_memcheck"))
        expect = 1;
    ck_assert_int_eq(dc_memcheck_active(), expect);
    dc_sbx_blocks *b = dc_sbx_blocks_new();
    ck_assert_int_eq(b == NULL, expect);
    dc_sbx_blocks_free(b);
}
END_TEST

/* The allocator itself, on a state's bookkeeping: blocks kept never pass the cap, every
 * byte asked for is counted, and a block moved between classes keeps its bytes. */
START_TEST(allocator_bookkeeping)
{
    dc_sbx s;
    memset(&s, 0, sizeof s);
    s.exact = dc_memcheck_active();
    s.blocks = dc_sbx_blocks_new();
    void *blocks[4096];
    for (int i = 0; i < 4096; i++) {
        size_t n = (size_t)(i % 300) + 1;
        blocks[i] = dc_sbx_alloc(&s, NULL, 0, n);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], i & 0xff, n);
    }
    size_t used = 0;
    for (int i = 0; i < 4096; i++)
        used += (size_t)(i % 300) + 1;
    ck_assert_uint_eq(s.mem_used, used);
    /* grow every block into another class (or past the small ones): its bytes stay */
    for (int i = 0; i < 4096; i++) {
        size_t n = (size_t)(i % 300) + 1, m = n + 37;
        unsigned char *p = dc_sbx_alloc(&s, blocks[i], n, m);
        ck_assert_ptr_nonnull(p);
        for (size_t k = 0; k < n; k++)
            ck_assert_uint_eq(p[k], (unsigned)(i & 0xff));
        blocks[i] = p;
    }
    ck_assert_uint_eq(s.mem_used, used + 4096u * 37u);
    for (int i = 0; i < 4096; i++)
        dc_sbx_alloc(&s, blocks[i], (size_t)(i % 300) + 38, 0);
    ck_assert_uint_eq(s.mem_used, 0);
    ck_assert_uint_le(dc_sbx_blocks_bytes(s.blocks), DC_SBX_CACHE_BYTES);
    if (s.blocks) {
        ck_assert_uint_gt(dc_sbx_blocks_bytes(s.blocks), 0);
        /* and they are handed out again: as many allocations, nothing more kept */
        size_t kept = dc_sbx_blocks_bytes(s.blocks);
        void *p = dc_sbx_alloc(&s, NULL, 0, 100);
        ck_assert_uint_eq(dc_sbx_blocks_bytes(s.blocks), kept - 112);
        dc_sbx_alloc(&s, p, 100, 0);
        ck_assert_uint_eq(dc_sbx_blocks_bytes(s.blocks), kept);
    }
    dc_sbx_blocks_free(s.blocks);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, values_keep_their_bytes_across_requests);
    tcase_add_test(tc, memory_quota_counts_what_is_held);
    tcase_add_test(tc, allocator_bookkeeping);
    tcase_add_test(tc, block_cache_off_only_under_a_heap_checker);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
