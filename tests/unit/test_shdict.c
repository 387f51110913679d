/* test_shdict.c - ngx.shared.NAME: each method against OpenResty's behaviour (the case titles
 * of lua-nginx-module's t/043-shdict.t are named where a test follows one), expiry, eviction
 * when full, two processes sharing a region, a lock holder that dies, the policy deciding which
 * domains and plugins see a dictionary, and the policy's refusals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shdict.h"
#include "testutil.h"

#define POLICY_D "{\"shared_dicts\":[{\"name\":\"dogs\",\"size_kb\":1024}," \
                 "{\"name\":\"small\",\"size_kb\":100}]}"

typedef struct fixture {
    dc_policy *policy;
    void *region;
    size_t size;
    int mapped;
    dc_shdicts *shd;
    dc_engine *e;
    dc_bundle *b;
} fixture;

static void fx_open(fixture *f, const char *policy_json, void *region, int init)
{
    char err[512] = "";
    memset(f, 0, sizeof *f);
    ck_assert_msg(dc_policy_load(policy_json, strlen(policy_json), "t.json", &f->policy, err,
                                 sizeof err) == DC_OK, "%s", err);
    f->size = dc_policy_shdicts_size(f->policy);
    ck_assert_uint_gt(f->size, 0);
    f->region = region ? region : calloc(1, f->size);
    f->mapped = region != NULL;
    ck_assert_msg(dc_shdicts_open(f->region, f->size, init, f->policy, &f->shd, err,
                                  sizeof err) == DC_OK, "%s", err);
}

/* An engine over the fixture's dictionaries running code (content phase) as plugin p1. */
static void fx_engine(fixture *f, const char *code)
{
    const char *pc[] = {"content", code, NULL};
    f->b = tu_bundle_plugins(pc, NULL);
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = f->policy;
    cfg.shdicts = f->shd;
    char err[256] = "";
    ck_assert_msg(dc_engine_new(&cfg, &f->e, err, sizeof err) == DC_OK, "%s", err);
    dc_engine_set_bundle(f->e, f->b);
}

/* Runs one request for host and returns its body (static buffer). */
static const char *fx_run(fixture *f, const char *host)
{
    static char body[65536];
    dc_sim *s = tu_request(f->e, host, "/");
    size_t len = 0;
    const char *b = dc_sim_body(s, &len);
    ck_assert_uint_lt(len, sizeof body);
    memcpy(body, b ? b : "", len);
    body[len] = '\0';
    dc_sim_free(s);
    return body;
}

static void fx_close(fixture *f)
{
    if (f->e)
        dc_engine_free(f->e);
    if (f->b)
        dc_bundle_unref(f->b);
    dc_shdicts_close(f->shd);
    if (!f->mapped)
        free(f->region);
    dc_policy_free(f->policy);
}

/* Runs code on a fresh fixture and checks the body. */
static void expect(const char *policy_json, const char *code, const char *want)
{
    fixture f;
    fx_open(&f, policy_json, NULL, 1);
    fx_engine(&f, code);
    const char *got = fx_run(&f, "test.test");
    ck_assert_msg(strcmp(got, want) == 0, "code:\n%s\nwant:\n%s\ngot:\n%s", code, want, got);
    fx_close(&f);
}

/* 043-shdict.t "string key, int value", "string key, floating-point value", "string key,
 * boolean value", "number keys, string values", "different-size values set to the same key" */
START_TEST(values_and_types)
{
    expect(POLICY_D,
           "local dogs = ngx.shared.dogs\n"
           "dogs:set('foo', 32) dogs:set('bah', 10502)\n"
           "local v = dogs:get('foo') ngx.say(v, ' ', type(v))\n"
           "dogs:set('pi', 3.14159) ngx.say(dogs:get('pi'))\n"
           "dogs:set('t', true) dogs:set('f', false)\n"
           "ngx.say(dogs:get('t'), ' ', dogs:get('f'), ' ', type(dogs:get('f')))\n"
           "ngx.say(dogs:set(1234, 'cat'))\n"
           "ngx.say(dogs:set('1234', 'dog'))\n"
           "ngx.say(dogs:get(1234))\n"
           "dogs:set('x', 'hello') dogs:set('x', 'hello, world') ngx.say(dogs:get('x'))\n"
           "dogs:set('x', 'hello') ngx.say(dogs:get('x'))\n",
           "32 number\n3.14159\ntrue false boolean\ntruenilfalse\ntruenilfalse\ndog\n"
           "hello, world\nhello\n");
}
END_TEST

/* 043-shdict.t "get non-existent keys", "delete after setting values", "set nil after
 * setting values", "bad value type", "set too large key", flags */
START_TEST(get_delete_nil_and_errors)
{
    expect(POLICY_D,
           "local dogs = ngx.shared.dogs\n"
           "ngx.say(dogs:get('nope'))\n"
           "dogs:set('foo', 32) dogs:delete('foo') ngx.say(dogs:get('foo'))\n"
           "dogs:set('foo', 32) dogs:set('foo', nil) ngx.say(dogs:get('foo'))\n"
           "ngx.say(dogs:set('foo', dogs))\n"
           "ngx.say(dogs:set(string.rep('a', 65535), 'hello'))\n"
           "ngx.say(dogs:get(string.rep('a', 65535)))\n"
           "ngx.say(dogs:set(string.rep('a', 65536), 'world'))\n"
           "ngx.say(dogs:get(nil))\n"
           "ngx.say(dogs:get(''))\n"
           "dogs:set('fl', 'v', 0, 7) ngx.say(dogs:get('fl'))\n"
           "ngx.say(pcall(dogs.get, {}, 'k'))\n"
           "ngx.say(pcall(dogs.set, dogs, {}, 1))\n"
           "ngx.say(pcall(dogs.set, dogs, 'k', 1, -1))\n"
           "ngx.say(pcall(dogs.set, dogs, 'k', 1, 0, 'x'))\n"
           "ngx.say(pcall(function() dogs.x = 1 end))\n",
           "nil\nnil\nnil\nnilbad value type\ntruenilfalse\nhello\nfalsekey too long\n"
           "nilnil key\nnilempty key\nv7\nfalsebad \"zone\" argument\n"
           "falsebad argument #1 (string expected, got table)\n"
           "falsebad \"exptime\" argument\nfalsebad \"flags\" argument\n"
           "falsep1:16: ngx.shared: the table is read-only\n");
}
END_TEST

/* 043-shdict.t "add key (key exists)", "add key (key not exists)", "replace key (key
 * exists)", "replace key (key not exists)", "incr key (key exists)", "incr key (key not
 * exists)", "incr key (key expired)", incr with init and init_ttl */
START_TEST(add_replace_incr)
{
    expect(POLICY_D,
           "local dogs = ngx.shared.dogs\n"
           "dogs:set('foo', 32)\n"
           "ngx.say(dogs:add('foo', 10502)) ngx.say(dogs:get('foo'))\n"
           "ngx.say(dogs:add('bar', 10502)) ngx.say(dogs:get('bar'))\n"
           "ngx.say(dogs:replace('foo', 'x')) ngx.say(dogs:get('foo'))\n"
           "ngx.say(dogs:replace('baz', 'x')) ngx.say(dogs:get('baz'))\n"
           "dogs:set('n', 32) ngx.say(dogs:incr('n', 10502))\n"
           "ngx.say(dogs:incr('none', 1))\n"
           "ngx.say(dogs:incr('foo', 1))\n"
           "ngx.say(dogs:incr('c', 1, 0))\n"
           "ngx.say(dogs:incr('c', -3.5, 0))\n"
           "ngx.say(dogs:incr('t', 1, 10, 100)) ngx.say(dogs:ttl('t') > 99)\n"
           "ngx.say(pcall(dogs.incr, dogs, 'c', 'x'))\n"
           "ngx.say(pcall(dogs.incr, dogs, 'q', 1, nil, 3))\n",
           "falseexistsfalse\n32\ntruenilfalse\n10502\ntruenilfalse\nx\n"
           "falsenot foundfalse\nnil\n10534\nnilnot found\nnilnot a number\n1nilfalse\n"
           "-2.5nilfalse\n11nilfalse\ntrue\n"
           "falsebad \"value\" argument: a number expected, got string\n"
           "falsemust provide \"init\" when providing \"init_ttl\"\n");
}
END_TEST

/* 043-shdict.t "flush_all", "get_keys", ttl and expire */
START_TEST(ttl_expire_flush_keys)
{
    expect(POLICY_D,
           "local dogs = ngx.shared.dogs\n"
           "dogs:set('a', 1) dogs:set('b', 2, 100)\n"
           "ngx.say(dogs:ttl('a'), ' ', dogs:ttl('b') > 99, ' ', dogs:ttl('b') <= 100)\n"
           "ngx.say(dogs:ttl('zz'))\n"
           "ngx.say(dogs:expire('a', 50), ' ', dogs:ttl('a') > 49)\n"
           "ngx.say(dogs:expire('zz', 5))\n"
           "ngx.say(dogs:expire('a', 0), ' ', dogs:ttl('a'))\n"
           "local k = dogs:get_keys() table.sort(k) ngx.say(table.concat(k, ','))\n"
           "for i = 1, 2000 do dogs:set('k' .. i, i) end\n"
           "ngx.say(#dogs:get_keys(), ' ', #dogs:get_keys(0), ' ', #dogs:get_keys(3))\n"
           "local free = dogs:free_space()\n"
           "dogs:flush_all()\n"
           "ngx.say(dogs:get('a'), ' ', #dogs:get_keys(0), ' ', dogs:free_space() > free)\n"
           "ngx.say(dogs:free_space() == dogs:capacity())\n",
           "0 true true\nnilnot found\ntrue true\nnilnot found\ntrue 0\na,b\n"
           "1024 2002 3\nnil 0 true\ntrue\n");
}
END_TEST

/* 043-shdict.t "expired entries (can be auto-removed by get)", "not yet expired entries":
 * a fractional exptime; the value is checked once its ttl has certainly passed. */
START_TEST(expiry)
{
    fixture f;
    fx_open(&f, POLICY_D, NULL, 1);
    fx_engine(&f, "local d = ngx.shared.dogs\n"
                  "if not d:get('x') and not d:get('long') then\n"
                  "  d:set('x', 32, 0.2) d:set('long', 1, 100) d:incr('i', 1, 0, 0.2)\n"
                  "end\n"
                  "ngx.say(d:get('x'), ' ', d:get('long'), ' ', d:get('i'), ' ', #d:get_keys(0))\n");
    ck_assert_str_eq(fx_run(&f, "test.test"), "32 1 1 3\n");
    struct timespec ts = {0, 600 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ck_assert_str_eq(fx_run(&f, "test.test"), "nil 1 nil 1\n");
    fx_close(&f);
}
END_TEST

/* 043-shdict.t "forcibly override other valid entries", "forcibly override other valid
 * entries and test LRU", "too big value (forcible)", "too big value", "fail to allocate
 * memory" (safe_set) */
START_TEST(eviction)
{
    expect(POLICY_D,
           "local dogs = ngx.shared.small\n"
           "local i = 0\n"
           "while i < 100000 do\n"
           "  i = i + 1\n"
           "  if i == 10 then dogs:get('key_1') end\n"
           "  local ok, err, forcible = dogs:set('key_' .. i, string.rep(' hello', 10) .. i)\n"
           "  if not ok or forcible then ngx.say(ok, ' ', err, ' ', forcible) break end\n"
           "end\n"
           "ngx.say(i > 100, ' ', dogs:get('key_' .. i) ~= nil, ' ', dogs:get('key_1') ~= nil,"
           " ' ', dogs:get('key_2'))\n"
           "ngx.say(dogs:set('big', string.rep('helloworld', 20000)))\n"

           "ngx.say(dogs:safe_set('s' .. i, string.rep('x', 50000)))\n"
           "ngx.say(dogs:safe_add('key_' .. i, 1))\n"
           "dogs:flush_all()\n"
           "ngx.say(dogs:safe_set('s', string.rep('x', 50000)))\n"
           "dogs:flush_all() ngx.say(dogs:set('big', string.rep('helloworld', 20000)))\n",
           "true nil true\ntrue true true nil\nfalseno memorytrue\n"
           "falseno memoryfalse\nfalseexistsfalse\ntruenilfalse\nfalseno memoryfalse\n");
}
END_TEST

/* Two processes attached to one region see each other's writes; increments from both add up;
 * a holder that dies with the lock does not block the other. */
START_TEST(two_processes)
{
    fixture probe;
    fx_open(&probe, POLICY_D, NULL, 1);
    size_t size = probe.size;
    fx_close(&probe);
    void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(region, MAP_FAILED);
    fixture f;
    fx_open(&f, POLICY_D, region, 1);
    const char *code = "local d = ngx.shared.dogs\n"
                       "for i = 1, 500 do d:incr('n', 1, 0) end\n"
                       "d:set('from' .. ngx.worker.pid(), 1)\n"
                       "ngx.say(#d:get_keys(0))\n";
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            fixture c;
            fx_open(&c, POLICY_D, region, 0);
            fx_engine(&c, code);
            fx_run(&c, "test.test");
            fx_close(&c);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st = 0;
        ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    fx_engine(&f, "local d = ngx.shared.dogs ngx.say(d:get('n'), ' ', #d:get_keys(0))\n");
    ck_assert_str_eq(fx_run(&f, "test.test"), "1000 3\n");

    /* a child takes the lock and dies holding it */
    pid_t k = fork();
    ck_assert_int_ge(k, 0);
    if (k == 0) {
        dc_shdicts *c = NULL;
        dc_shdicts_open(region, size, 0, f.policy, &c, NULL, 0);
        dc_shd_test_hold_lock(c, 0);
        _exit(0);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(k, &st, 0), k);
    /* the dictionary was being changed when its holder died: it is emptied, and usable */
    ck_assert_str_eq(fx_run(&f, "test.test"), "nil 0\n");
    fx_close(&f);
    munmap(region, size);
}
END_TEST

/* The policy decides which domains and plugins see a dictionary; the others read nil. */
START_TEST(policy_restricts)
{
    const char *pol = "{\"shared_dicts\":["
                      "{\"name\":\"open\",\"size_kb\":16},"
                      "{\"name\":\"corp\",\"size_kb\":16,\"domains\":[\"^admin\\\\.\"]},"
                      "{\"name\":\"mine\",\"size_kb\":16,\"plugins\":[\"p*\"]},"
                      "{\"name\":\"theirs\",\"size_kb\":16,\"plugins\":[\"other*\"]}]}";
    fixture f;
    fx_open(&f, pol, NULL, 1);
    fx_engine(&f, "local s = ngx.shared\n"
                  "ngx.say(type(s.open), type(s.corp), type(s.mine), type(s.theirs), "
                  "type(s.undeclared))\n"
                  "if s.corp then s.corp:set('k', 1) end\n"
                  "_G.kept = _G.kept or s.corp\n"
                  "if _G.kept and not s.corp then ngx.say(pcall(_G.kept.get, _G.kept, 'k')) end\n");
    ck_assert_str_eq(fx_run(&f, "www.example.com"), "tablenil" "tablenilnil\n");
    ck_assert_str_eq(fx_run(&f, "admin.example.com"), "tabletabletablenilnil\n");
    fx_close(&f);
}
END_TEST

/* ngx.shared is a name a policy can deny. */
START_TEST(policy_denies_name)
{
    expect("{\"shared_dicts\":[{\"name\":\"d\",\"size_kb\":16}],"
           "\"api\":{\"deny\":[\"ngx.shared\"]}}",
           "ngx.say(pcall(function() return ngx.shared.d end))\n",
           "falsep1:1: ngx.shared is denied by policy\n");
}
END_TEST

static void refused(const char *json, const char *want)
{
    dc_policy *p = NULL;
    char err[512] = "";
    ck_assert_int_eq(dc_policy_load(json, strlen(json), "bad.json", &p, err, sizeof err),
                     DC_EPOLICY);
    ck_assert_msg(strstr(err, want) != NULL, "want \"%s\" in \"%s\"", want, err);
    ck_assert_msg(strncmp(err, "bad.json: ", 10) == 0, "%s", err);
}

START_TEST(policy_errors)
{
    refused("{\"shared_dicts\":[{\"size_kb\":16}]}", "shared_dicts[0]: missing key \"name\"");
    refused("{\"shared_dicts\":[{\"name\":\"a\"}]}", "shared_dicts[0]: missing key \"size_kb\"");
    refused("{\"shared_dicts\":[{\"name\":\"a\",\"size_kb\":16},{\"name\":\"a\",\"size_kb\":16}]}",
            "shared_dicts[1]: duplicate dictionary name \"a\"");
    refused("{\"shared_dicts\":[{\"name\":\"a\",\"size_kb\":1}]}",
            "shared_dicts[0].size_kb: expected an integer from 8 to");
    refused("{\"shared_dicts\":[{\"name\":\"a\",\"size_kb\":99999999}]}",
            "shared_dicts[0].size_kb");
    refused("{\"shared_dicts\":[{\"name\":\"a\",\"size_kb\":16,\"domains\":[\"(\"]}]}",
            "shared_dicts[0].domains[0]: ");
    refused("{\"shared_dicts\":[{\"name\":\"a b\",\"size_kb\":16}]}", "shared_dicts[0].name");
    refused("{\"shared_dicts\":[{\"name\":\"a\",\"size_kb\":16,\"color\":1}]}",
            "shared_dicts[0].color: unknown key");
    refused("{\"shared_dicts\":{}}", "shared_dicts: expected an array");
    /* the default policy declares none */
    dc_policy *p = NULL;
    ck_assert_int_eq(dc_policy_default(&p, NULL, 0), DC_OK);
    ck_assert_uint_eq(dc_policy_shdicts_size(p), 0);
    dc_policy_free(p);
}
END_TEST

/* Attaching checks that the region was formatted for the same declarations. */
START_TEST(attach_checks)
{
    fixture f;
    fx_open(&f, POLICY_D, NULL, 1);
    dc_policy *other = NULL;
    const char *j = "{\"shared_dicts\":[{\"name\":\"cats\",\"size_kb\":1024},"
                    "{\"name\":\"small\",\"size_kb\":100}]}";
    ck_assert_int_eq(dc_policy_load(j, strlen(j), "o", &other, NULL, 0), DC_OK);
    dc_shdicts *s = NULL;
    char err[256] = "";
    ck_assert_int_eq(dc_shdicts_open(f.region, f.size, 0, other, &s, err, sizeof err),
                     DC_ECORRUPT);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(dc_shdicts_open(f.region, f.size - 8, 0, f.policy, &s, err, sizeof err),
                     DC_EINVAL);
    dc_policy_free(other);
    fx_close(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("shdict");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, values_and_types);
    tcase_add_test(tc, get_delete_nil_and_errors);
    tcase_add_test(tc, add_replace_incr);
    tcase_add_test(tc, ttl_expire_flush_keys);
    tcase_add_test(tc, expiry);
    tcase_add_test(tc, eviction);
    tcase_add_test(tc, two_processes);
    tcase_add_test(tc, policy_restricts);
    tcase_add_test(tc, policy_denies_name);
    tcase_add_test(tc, policy_errors);
    tcase_add_test(tc, attach_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
