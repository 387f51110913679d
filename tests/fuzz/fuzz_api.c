/* fuzz_api.c - libFuzzer target for the plugin API: the input bytes are read as a program, a
 * sequence of ngx.* and library calls with arbitrary arguments (numbers such as NaN, huge and
 * negative, strings with NUL, CR or LF, long strings, nested tables, tables with metamethods,
 * values earlier calls returned and the functions of their metatables), written out as a Lua
 * chunk. That chunk becomes one plugin per phase of a bundle, run through a simulated request
 * under the default policy's quotas, as `dynacode run` would. Plugin code is compiled in this
 * process (fuzz_compile.c); everything after that is the real sandbox.
 */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_table.h"
#include "fuzz.h"
#include "sim.h"

#define MAX_STMTS 24
#define MAX_DEPTH 3
#define MAX_SRC (48u * 1024u)

/* ---- the byte reader: past the end every read gives 0 ---- */
typedef struct rd {
    const uint8_t *p;
    size_t n, off;
} rd;

static unsigned byte(rd *r)
{
    return r->off < r->n ? r->p[r->off++] : 0;
}

static int more(const rd *r)
{
    return r->off < r->n;
}

/* ---- the chunk being written ---- */
typedef struct out {
    char *s;
    size_t len, cap;
    int full;
} out;

static void emit(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = 1;
        o->s[o->len] = '\0';
        return;
    }
    o->len += (size_t)n;
}

/* Every function of the plugin API, then a few from the base library that take values a
 * plugin controls and hand them to C. */
static const char *const functions[] = {
/* the names of the ngx areas, json and print (the base library is listed below) */
#define FUZZ_NAME(area, kind, path, field, fn, phases, allow) FUZZ_##area(path)
#define FUZZ_OUTPUT(p) p,
#define FUZZ_VAR(p) p,
#define FUZZ_HEADER(p) p,
#define FUZZ_REQ(p) p,
#define FUZZ_CTX(p) p,
#define FUZZ_ARG(p) p,
#define FUZZ_LOG(p) p,
#define FUZZ_TIME(p) p,
#define FUZZ_CONSTS(p) p,
#define FUZZ_RE(p) p,
#define FUZZ_CODEC(p) p,
#define FUZZ_SHARED(p) p, /* "ngx.shared": no dictionary is declared here */
#define FUZZ_JSON(p) p,
#define FUZZ_BASE(p)
#define FUZZ_LIB(p)
#define FUZZ_OS(p)
    DC_API_TABLE(FUZZ_NAME)
#undef FUZZ_NAME
    "tostring", "tonumber", "select", "unpack", "type", "rawget", "rawset", "rawequal", "next",
    "pairs", "ipairs", "getmetatable", "setmetatable", "error", "assert", "pcall", "xpcall",
    "string.format", "string.rep", "string.sub", "string.byte", "string.char", "string.upper",
    "string.len", "string.reverse", "string.find", "string.match", "string.gmatch", "string.gsub",
    "table.concat", "table.insert", "table.remove", "table.sort", "math.floor", "math.max",
    "math.fmod", "bit.band", "bit.tohex", "coroutine.wrap", "coroutine.resume", "os.date",
    "collectgarbage", "print",
};
#define NFUNCTIONS (sizeof functions / sizeof *functions)

/* Tables whose fields are properties with C getters and setters. */
static const char *const targets[] = {"ngx.var", "ngx.header", "ngx.ctx", "ngx.arg", "ngx",
                                      "ngx.req", "json", "string", "R"};

static const char *const keys[] = {
    "'status'", "'uri'", "'args'", "'host'", "'request_uri'", "'Content-Type'", "'X-A'",
    "'Set-Cookie'", "'x\\0y'", "'a\\r\\nb: c'", "1", "2", "0", "-1", "0/0", "'ctx'",
    "'__index'", "'request_method'", "'http_host'", "''",
};

static const char *const numbers[] = {
    "0", "1", "-1", "0/0", "1/0", "-1/0", "2^31", "2^31-1", "-2^31", "2^53", "2^63", "-2^63",
    "2^64", "1e308", "-1e308", "0.5", "-0.0", "4294967295", "2147483647", "200", "302", "404",
    "599", "1000", "65536", "1e-300",
};

static const char *const strings[] = {
    "''", "'a\\0b'", "'\\r\\n'", "'X-Foo'", "'/../../etc/passwd'", "'/%2e%2e/%2f'",
    "'a\\r\\nSet-Cookie: x'", "'%s%s%s%n'", "'(.*)*'", "'\\255\\254'", "'^(a+)+$'", "'%'",
    "'[%w_]+'", "'{\"a\":[1,{\"b\":null}]}'", "'[[[[[[[[[['", "'\\\\'", "'http://x/'",
    "'a=1&b=2&a=3'", "'%zz%'", "'ijo'", "'jo'", "'U'", "'x'", "'*'", "'ngx'",
};

static const char *const lengths[] = {"16", "1000", "5000", "70000", "1000000", "-1", "0/0"};

static const char *const apivalues[] = {
    "ngx", "ngx.var", "ngx.header", "ngx.ctx", "ngx.arg", "ngx.req", "json", "json.null",
    "string", "ngx.re", "_G", "ngx.null",
};

static const char *const metamethods[] = {
    "__tostring", "__index", "__newindex", "__len", "__concat", "__call", "__eq", "__lt",
    "__le", "__add", "__unm", "__gc", "__mode", "__metatable",
};

#define PICK(r, list) (list)[byte(r) % (sizeof(list) / sizeof *(list))]

static void value(rd *r, out *o, int depth);

static void short_string(rd *r, out *o)
{
    unsigned n = byte(r) % 12;
    emit(o, "'");
    for (unsigned i = 0; i < n; i++)
        emit(o, "\\%u", byte(r));
    emit(o, "'");
}

static void table(rd *r, out *o, int depth)
{
    unsigned n = byte(r) % 4;
    emit(o, "{");
    for (unsigned i = 0; i < n; i++) {
        if (byte(r) & 1) {
            emit(o, "[");
            value(r, o, depth + 1);
            emit(o, "] = ");
        }
        value(r, o, depth + 1);
        emit(o, ", ");
    }
    emit(o, "}");
}

static void value(rd *r, out *o, int depth)
{
    unsigned k = byte(r) % (depth >= MAX_DEPTH ? 7 : 14);
    switch (k) {
    case 0: emit(o, "nil"); break;
    case 1: emit(o, (byte(r) & 1) ? "true" : "false"); break;
    case 2: emit(o, "(%s)", PICK(r, numbers)); break;
    case 3: emit(o, "%d", (int)(int8_t)byte(r)); break;
    case 4: short_string(r, o); break;
    case 5: emit(o, "%s", PICK(r, strings)); break;
    case 6: emit(o, "R[%u]", byte(r) % 8 + 1); break;
    case 7:
        emit(o, "string.rep(");
        value(r, o, depth + 1);
        emit(o, ", %s)", PICK(r, lengths));
        break;
    case 8: table(r, o, depth); break;
    case 9: /* a table with metamethods that return, raise or recurse */
        emit(o, "setmetatable(");
        table(r, o, depth);
        emit(o, ", {");
        for (unsigned i = 0, n = 1 + byte(r) % 3; i < n; i++) {
            emit(o, "%s = ", PICK(r, metamethods));
            switch (byte(r) % 4) {
            case 0: emit(o, "function(...) return "); value(r, o, depth + 1); emit(o, " end"); break;
            case 1: emit(o, "function() error("); value(r, o, depth + 1); emit(o, ") end"); break;
            case 2: emit(o, "function(t, ...) return tostring(t) .. tostring(...) end"); break;
            default: value(r, o, depth + 1); break;
            }
            emit(o, ", ");
        }
        emit(o, "})");
        break;
    case 10:
        emit(o, "function(...) return ");
        value(r, o, depth + 1);
        emit(o, " end");
        break;
    case 11: emit(o, "%s", PICK(r, apivalues)); break;
    case 12: /* a table nested deeper than the encoders like */
        emit(o, "deep(%u)", byte(r) % 4 == 0 ? 300u : byte(r) % 40);
        break;
    default: emit(o, "%s", PICK(r, numbers)); break;
    }
}

static void args(rd *r, out *o)
{
    unsigned n = byte(r) % 5;
    for (unsigned i = 0; i < n; i++) {
        if (i)
            emit(o, ", ");
        value(r, o, 0);
    }
}

static void statement(rd *r, out *o)
{
    switch (byte(r) % 17) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: /* call an API or library function */
        emit(o, "pcall(function() keep(%s(", functions[byte(r) % NFUNCTIONS]);
        args(r, o);
        emit(o, ")) end)\n");
        break;
    case 7: case 8: case 9: /* write a property */
        emit(o, "pcall(function() %s[%s] = ", PICK(r, targets), PICK(r, keys));
        value(r, o, 0);
        emit(o, " end)\n");
        break;
    case 10: case 11: /* read a property */
        emit(o, "pcall(function() keep(%s[", PICK(r, targets));
        if (byte(r) & 1)
            emit(o, "%s", PICK(r, keys));
        else
            value(r, o, 0);
        emit(o, "]) end)\n");
        break;
    case 12: case 13: /* call a value kept from earlier, or each function of its metatable */
        emit(o, "pcall(calls, R[%u], ", byte(r) % 8 + 1);
        args(r, o);
        emit(o, ")\n");
        break;
    case 14: /* an unprotected call: its error ends the plugin */
        emit(o, "keep(%s(", functions[byte(r) % NFUNCTIONS]);
        args(r, o);
        emit(o, "))\n");
        break;
    case 15: /* walk what a call returned */
        emit(o, "pcall(walk, R[%u])\n", byte(r) % 8 + 1);
        break;
    default: /* a function that calls itself back through C: as a replacement or callback
                argument, or as a metamethod (__tostring, __index...) of an argument */
        emit(o, "pcall(function() local f; f = function(...) return %s(",
             functions[byte(r) % NFUNCTIONS]);
        if (byte(r) & 1) {
            emit(o, "setmetatable({}, {%s = f}), ", PICK(r, metamethods));
            value(r, o, 1);
        } else {
            value(r, o, 1);
            emit(o, ", ");
            value(r, o, 1);
            emit(o, ", f");
        }
        emit(o, ") end; keep(f()) end)\n");
        break;
    }
}

static const char prelude[] =
    "local R = {ngx.var, ngx.header, ngx.req.get_headers, ngx.re.gmatch, json, 'x', 1, {}}\n"
    "local n = 0\n"
    "local function keep(v, ...) n = n % 8 + 1; R[n] = v end\n"
    "local function deep(d) local t = {} for i = 1, d do t = {t} end return t end\n"
    "local function calls(f, ...)\n"
    "  if type(f) == 'function' then keep(f(...)) end\n"
    "  local m = getmetatable(f)\n"
    "  if type(m) == 'table' then\n"
    "    for k, g in pairs(m) do if type(g) == 'function' then pcall(g, ...) pcall(g, f, ...) end end\n"
    "  end\n"
    "end\n"
    "local function walk(t)\n"
    "  if type(t) ~= 'table' then return tostring(t) end\n"
    "  local c = 0\n"
    "  for k, v in pairs(t) do c = c + 1 if c > 100 then break end keep(v) end\n"
    "  return c\n"
    "end\n";

/* The chunk for data; NULL when it is empty or memory ran out. */
static char *program(const uint8_t *data, size_t size)
{
    out o = {malloc(MAX_SRC), 0, MAX_SRC, 0};
    if (!o.s)
        return NULL;
    rd r = {data, size, 0};
    emit(&o, "%s", prelude);
    for (int i = 0; i < MAX_STMTS && more(&r) && !o.full; i++) {
        size_t before = o.len;
        statement(&r, &o);
        if (o.full) { /* keep the chunk whole: drop the statement that did not fit */
            o.len = before;
            o.s[before] = '\0';
        }
    }
    return o.s;
}

static const char *const phases[] = {"rewrite", "access", "content", "header_filter",
                                     "body_filter", "log"};

static char *bundle_json(const char *code)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *gen = cJSON_AddObjectToObject(root, "general");
    cJSON_AddStringToObject(gen, "status", "enabled");
    cJSON *doms = cJSON_AddArrayToObject(root, "domains");
    cJSON *dom = cJSON_CreateObject();
    cJSON_AddItemToArray(doms, dom);
    cJSON_AddStringToObject(dom, "name", "*");
    cJSON *plugins = cJSON_AddArrayToObject(dom, "plugins");
    for (size_t i = 0; i < sizeof phases / sizeof *phases; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", phases[i]);
        cJSON_AddStringToObject(p, "phase", phases[i]);
        cJSON_AddStringToObject(p, "code", code);
        cJSON_AddItemToArray(plugins, p);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
}

static void on_run(void *ud, const dc_run_info *info)
{
    (void)ud;
    if ((int)info->result < DC_RESULT_OK || info->result > DC_RESULT_DENIED || !info->plugin)
        abort();
    if (getenv("FUZZ_API_TRACE"))
        fprintf(stderr, "%s %s %s\n", info->plugin, dc_result_name(info->result),
                info->message ? info->message : "");
}

/* The default policy, but sleeps of a few milliseconds at most: ngx.sleep is taken up as in
 * `dynacode run` (which really waits), and inputs must stay fast. */
static dc_policy *fuzz_policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("DC_PCRE2_NO_JIT", "1", 0);
    fuzz_max_code = MAX_SRC;
    static const char pj[] = "{\"bounds\":{\"sleep_ms_per_call\":2,\"sleep_ms_per_request\":4}}";
    char err[256];
    if (dc_policy_load(pj, sizeof pj - 1, "fuzz", &fuzz_policy, err, sizeof err) != DC_OK) {
        fprintf(stderr, "fuzz_api: policy: %s\n", err);
        abort();
    }
    return 0;
}

/* An engine per input: everything it allocates is freed before the input ends, so that
 * libFuzzer's leak check (which runs when an input's mallocs and frees do not match) stays
 * quiet unless something really leaks. */
static dc_engine *new_engine(void)
{
    dc_engine_config cfg;
    dc_engine_config_default(&cfg);
    cfg.host = dc_sim_host();
    cfg.policy = fuzz_policy;
    cfg.seed = 1;
    dc_engine *e = NULL;
    char err[256];
    if (dc_engine_new(&cfg, &e, err, sizeof err) != DC_OK) {
        fprintf(stderr, "fuzz_api: engine: %s\n", err);
        abort();
    }
    dc_engine_on_run(e, on_run, NULL);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *code = program(data, size);
    if (!code)
        return 0;
    if (getenv("FUZZ_API_PRINT"))
        fprintf(stderr, "---- chunk ----\n%s---- end ----\n", code);
    char *json = bundle_json(code);
    free(code);
    if (!json)
        return 0;
    dc_bundle *b = NULL;
    char err[512];
    dc_rc rc = dc_bundle_load(json, strlen(json), NULL, NULL, &b, err, sizeof err);
    free(json);
    if (rc != DC_OK)
        return 0;
    dc_engine *engine = new_engine();
    dc_engine_set_bundle(engine, b);
    dc_bundle_unref(b);
    static const char *const headers[] = {"Host: fuzz.test", "Cookie: a=1; b=2", "X-A: 1",
                                          "X-A: 2", "Content-Type: text/plain"};
    dc_sim_opts o = {.host = "fuzz.test", .method = "POST", .uri = "/a/b?x=1&y=%41&x=2&z",
                     .headers = headers, .nheaders = sizeof headers / sizeof *headers,
                     .upstream_body = "upstream body\n", .upstream_body_len = 14};
    dc_sim *s = dc_sim_new(&o);
    if (s) {
        (void)dc_sim_run(s, engine);
        dc_sim_free(s);
    }
    dc_engine_free(engine);
    return 0;
}
