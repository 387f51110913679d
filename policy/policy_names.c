/* policy_names.c - the API names a policy may write: the names of the API table
 * (api_table.h) plus the Lua library functions, the names the sandbox forbids outright, and
 * how an allow/deny entry ("ngx.say", "ngx.req.*") covers a name. Used by policy.c.
 */
#include <string.h>

#include "policy.h"
#include "api_table.h"

#define DC_NAME_STR(area, kind, path, field, fn, phases, allow) path,
#define DC_CONST_STR(name, value) DC_API_CONST_PATH(name, value),

/* The plugin API and the Lua names env.c opens; an entry "T.*" makes T a table. */
static const char *const api_names[] = {DC_API_TABLE(DC_NAME_STR) DC_API_CONSTS(DC_CONST_STR)};

/* The functions of the library tables env.c copies (LuaJIT 2.1), so that a policy can name
 * one of them ("string.rep") rather than the whole table. string.dump is not here: it is
 * forbidden (bytecode is never loaded, so no plugin may make any). */
static const char *const lua_lib_names[] = {
    "string.byte", "string.char", "string.find", "string.format", "string.gmatch",
    "string.gsub", "string.len", "string.lower", "string.match", "string.rep",
    "string.reverse", "string.sub", "string.upper",
    "table.concat", "table.foreach", "table.foreachi", "table.getn", "table.insert",
    "table.maxn", "table.move", "table.remove", "table.sort",
    "math.abs", "math.acos", "math.asin", "math.atan", "math.atan2", "math.ceil", "math.cos",
    "math.cosh", "math.deg", "math.exp", "math.floor", "math.fmod", "math.frexp", "math.huge",
    "math.ldexp", "math.log", "math.log10", "math.max", "math.min", "math.modf", "math.pi",
    "math.pow", "math.rad", "math.random", "math.randomseed", "math.sin", "math.sinh",
    "math.sqrt", "math.tan", "math.tanh",
    "bit.arshift", "bit.band", "bit.bnot", "bit.bor", "bit.bswap", "bit.bxor", "bit.lshift",
    "bit.rol", "bit.ror", "bit.rshift", "bit.tobit", "bit.tohex",
    "coroutine.create", "coroutine.isyieldable", "coroutine.resume", "coroutine.running",
    "coroutine.status", "coroutine.wrap", "coroutine.yield",
};

/* Never in a plugin's environment, whatever a policy says (docs/security.md). */
static const char *const forbidden_names[] = {
    "load", "loadstring", "loadfile", "dofile", "require", "module", "getfenv", "setfenv",
    "newproxy", "string.dump", "os.execute",
};
static const char *const forbidden_tables[] = {"debug", "io", "ffi", "jit"};
#define OS_KEEP(area, kind, path, field, fn, phases, allow) DC_API_WHEN(OS, area, #field, )
static const char *const os_kept[] = {DC_API_TABLE(OS_KEEP)};
#undef OS_KEEP

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Length of entry without its trailing ".*", or (size_t)-1 when it has none. */
static size_t table_part(const char *entry)
{
    size_t n = strlen(entry);
    if (n >= 2 && entry[n - 2] == '.' && entry[n - 1] == '*')
        return n - 2;
    return (size_t)-1;
}

int dc_api_name_covers(const char *entry, const char *name)
{
    size_t n = table_part(entry);
    if (n == (size_t)-1)
        return strcmp(entry, name) == 0;
    return strncmp(entry, name, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

static int in_list(const char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

/* 1 when name (or, for "T.*", the table T) is something the sandbox keeps out of every plugin:
 * the base functions that load code or reach outside, the debug, io, ffi and jit tables,
 * string.dump, and everything of os but time, clock and date. */
int dc_api_name_forbidden(const char *name)
{
    size_t len = table_part(name);
    if (len == (size_t)-1)
        len = strlen(name);
    if (in_list(forbidden_names, COUNT(forbidden_names), name, len))
        return 1;
    size_t head = strcspn(name, ".");
    if (head > len)
        head = len;
    if (in_list(forbidden_tables, COUNT(forbidden_tables), name, head))
        return 1;
    if (head == 2 && memcmp(name, "os", 2) == 0 && len > 3)
        return !in_list(os_kept, COUNT(os_kept), name + 3, len - 3);
    return 0;
}

/* 1 when s (len bytes) is a name of the list, or (prefix) a strict dotted prefix of one. */
static int list_has(const char *const *list, size_t n, const char *s, size_t len, int prefix)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = list[i];
        if (strncmp(k, s, len) != 0)
            continue;
        if (prefix ? k[len] == '.' : (k[len] == '\0' && table_part(k) == (size_t)-1))
            return 1;
    }
    return 0;
}

static int known(const char *s, size_t len, int prefix)
{
    return list_has(api_names, COUNT(api_names), s, len, prefix) ||
           list_has(lua_lib_names, COUNT(lua_lib_names), s, len, prefix);
}

/* A known name is a function, property or constant of the API ("ngx.say", "ngx.var",
 * "pairs"); "T.*" is known when T is a table of the API ("ngx", "ngx.req", "string") or a
 * known name (ngx.var.* reads as ngx.var). */
int dc_api_name_known(const char *name)
{
    size_t len = table_part(name);
    if (len == (size_t)-1)
        return name[0] != '\0' && known(name, strlen(name), 0);
    return len > 0 && (known(name, len, 1) || known(name, len, 0));
}
