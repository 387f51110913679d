/* api_ctx.c - ngx.ctx across plugin states: the request keeps a serialized copy (call->ctx);
 * the first ngx.ctx of a call builds a table from it, dc_api_ctx_flush writes that table back
 * after the call. Plain values only (nil, boolean, number, string, json.null, tables of
 * these), at most 16 levels and 64 KiB; the write-back runs no metamethod.
 *
 * Format: a value is 'F' | 'T' (booleans), 'Z' (json.null), 'N' + 8-byte double,
 * 'S' + u32 length + bytes, or 'H' + u32 count + count (key, value) pairs; keys are 'N' or 'S'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_util.h"

#define CTX_MAX_DEPTH 16
#define CTX_MAX_BYTES (64u << 10)
#define CTX_PATH_MAX 200
#define CTX_PLAIN "ngx.ctx holds only plain values (nil, boolean, number, string, table): "

/* ---- write-back ---- */
typedef struct ser {
    dc_buf out;
    const void *seen[CTX_MAX_DEPTH + 1];  /* the tables being written, outermost first */
    char path[CTX_PATH_MAX + 48];
    char err[CTX_PATH_MAX + 160];
} ser;

static int ser_put(ser *s, const void *p, size_t n)
{
    if (s->out.len + n > CTX_MAX_BYTES) {
        snprintf(s->err, sizeof s->err, "ngx.ctx is too large (over %u bytes once copied)",
                 CTX_MAX_BYTES);
        return -1;
    }
    if (dc_buf_append(&s->out, p, n) != 0) {
        snprintf(s->err, sizeof s->err, "ngx.ctx: not enough memory");
        return -1;
    }
    return 0;
}

static int ser_u32(ser *s, char tag, uint32_t v)
{
    char b[5] = {tag};
    memcpy(b + 1, &v, 4);
    return ser_put(s, b, 5);
}

static int ser_num(ser *s, double d)
{
    char b[9] = {'N'};
    memcpy(b + 1, &d, 8);
    return ser_put(s, b, 9);
}

/* Writes the string or number key/value at idx (already type-checked). Stack: [-0, +0] */
static int ser_scalar(lua_State *L, ser *s, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return ser_num(s, lua_tonumber(L, idx));
    size_t len;
    const char *p = lua_tolstring(L, idx, &len);  /* a string: no conversion */
    if (len > CTX_MAX_BYTES)
        return ser_put(s, p, len);                /* fails with the size message */
    return ser_u32(s, 'S', (uint32_t)len) || ser_put(s, p, len) ? -1 : 0;
}

/* Appends the key at idx to the error path; returns the old path length. Stack: [-0, +0] */
static size_t path_push(lua_State *L, ser *s, int idx)
{
    size_t old = strlen(s->path);
    if (old >= CTX_PATH_MAX) {
        if (!strstr(s->path, "..."))
            strcat(s->path, "...");
        return old;
    }
    char *d = s->path + old;
    size_t room = sizeof s->path - old;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *k = lua_tolstring(L, idx, &len);
        snprintf(d, room, ".%.*s", (int)(len > 64 ? 64 : len), k);
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
        snprintf(d, room, "[%.14g]", lua_tonumber(L, idx));
    } else {
        snprintf(d, room, "[%s key]", luaL_typename(L, idx));
    }
    return old;
}

static int ser_value(lua_State *L, ser *s, int idx, int depth);

/* Writes the table at idx (absolute). Stack: [-0, +0] */
static int ser_table(lua_State *L, ser *s, int idx, int depth)
{
    const void *p = lua_topointer(L, idx);
    for (int i = 0; i < depth - 1; i++)
        if (s->seen[i] == p) {
            snprintf(s->err, sizeof s->err, CTX_PLAIN "got a cycle at %s", s->path);
            return -1;
        }
    if (depth > CTX_MAX_DEPTH) {
        snprintf(s->err, sizeof s->err, "ngx.ctx is nested too deeply (over %d levels) at %s",
                 CTX_MAX_DEPTH, s->path);
        return -1;
    }
    s->seen[depth - 1] = p;
    size_t at = s->out.len;
    if (ser_u32(s, 'H', 0) != 0)
        return -1;
    uint32_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {  /* key at -2, value at -1 */
        int top = lua_gettop(L);
        size_t old = path_push(L, s, top - 1);
        int kt = lua_type(L, top - 1);
        int rc = -1;
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
            snprintf(s->err, sizeof s->err, CTX_PLAIN "got a %s key at %s",
                     luaL_typename(L, top - 1), s->path);
        else
            rc = ser_scalar(L, s, top - 1) || ser_value(L, s, top, depth) ? -1 : 0;
        s->path[old] = '\0';
        if (rc != 0) {
            lua_pop(L, 2);
            return -1;
        }
        count++;
        lua_pop(L, 1);
    }
    memcpy(s->out.data + at + 1, &count, 4);
    return 0;
}

/* Writes the value at idx (absolute). Stack: [-0, +0] */
static int ser_value(lua_State *L, ser *s, int idx, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return ser_put(s, lua_toboolean(L, idx) ? "T" : "F", 1);
    case LUA_TNUMBER:
    case LUA_TSTRING:
        return ser_scalar(L, s, idx);
    case LUA_TTABLE:
        return ser_table(L, s, idx, depth + 1);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return ser_put(s, "Z", 1);
        break;
    default:
        break;
    }
    snprintf(s->err, sizeof s->err, CTX_PLAIN "got %s at %s", luaL_typename(L, idx), s->path);
    return -1;
}

int dc_api_ctx_flush(lua_State *L, dc_call *call)
{
    if (call->ctx_ref == LUA_NOREF || call->ctx_ref == LUA_REFNIL)
        return 0;
    /* Enough stack for the deepest walk up front: nothing below may raise. */
    luaL_checkstack(L, 2 * CTX_MAX_DEPTH + 8, "ngx.ctx");
    lua_rawgeti(L, LUA_REGISTRYINDEX, call->ctx_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, call->ctx_ref);
    call->ctx_ref = LUA_NOREF;
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    ser *s = calloc(1, sizeof *s);
    if (!s) {
        lua_pop(L, 1);
        lua_pushliteral(L, "ngx.ctx: not enough memory");
        return -1;
    }
    strcpy(s->path, "ctx");
    int rc = ser_table(L, s, lua_gettop(L), 1);
    lua_pop(L, 1);
    if (rc != 0) {
        dc_buf_free(&s->out);
        lua_pushstring(L, s->err);
        free(s);
        return -1;
    }
    if (call->ctx) {
        dc_buf_free(call->ctx);
        *call->ctx = s->out;
    } else {
        dc_buf_free(&s->out);
    }
    free(s);
    return 0;
}

/* ---- read ---- */
typedef struct des {
    const unsigned char *p, *end;
} des;

static int des_u32(des *d, uint32_t *v)
{
    if (d->end - d->p < 4)
        return -1;
    memcpy(v, d->p, 4);
    d->p += 4;
    return 0;
}

/* Pushes the value at d->p. Returns 0, or -1 (nothing pushed) on malformed data.
 * Stack: [-0, +1|+0] */
static int des_value(lua_State *L, des *d, int depth, int key)
{
    if (d->p >= d->end)
        return -1;
    unsigned char tag = *d->p++;
    uint32_t n;
    double num;
    switch (tag) {
    case 'N':
        if (d->end - d->p < 8)
            return -1;
        memcpy(&num, d->p, 8);
        d->p += 8;
        lua_pushnumber(L, num);
        return 0;
    case 'S':
        if (des_u32(d, &n) != 0 || (size_t)(d->end - d->p) < n)
            return -1;
        lua_pushlstring(L, (const char *)d->p, n);
        d->p += n;
        return 0;
    default:
        break;
    }
    if (key)
        return -1;
    switch (tag) {
    case 'T':
    case 'F':
        lua_pushboolean(L, tag == 'T');
        return 0;
    case 'Z':
        lua_pushlightuserdata(L, NULL);
        return 0;
    case 'H':
        if (depth >= CTX_MAX_DEPTH || des_u32(d, &n) != 0 || n > (size_t)(d->end - d->p) / 2)
            return -1;
        luaL_checkstack(L, 4, "ngx.ctx");
        lua_createtable(L, 0, (int)n);
        for (uint32_t i = 0; i < n; i++) {
            if (des_value(L, d, depth + 1, 1) != 0)
                goto bad;
            if (des_value(L, d, depth + 1, 0) != 0) {
                lua_pop(L, 1);
                goto bad;
            }
            lua_rawset(L, -3);
        }
        return 0;
    bad:
        lua_pop(L, 1);
        return -1;
    default:
        return -1;
    }
}

/* ngx.ctx getter: the same table for the whole call. Stack: [-0, +1] */
static int ctx_get(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (call->ctx_ref != LUA_NOREF && call->ctx_ref != LUA_REFNIL) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, call->ctx_ref);
        return 1;
    }
    if (call->ctx && call->ctx->len > 0) {
        dc_sbx_charge(L, call->ctx->len);
        des d = {(const unsigned char *)call->ctx->data,
                 (const unsigned char *)call->ctx->data + call->ctx->len};
        if (des_value(L, &d, 0, 0) != 0 || !lua_istable(L, -1) || d.p != d.end)
            return luaL_error(L, "ngx.ctx: the request's copy is corrupted");
    } else {
        lua_createtable(L, 0, 0);
    }
    lua_pushvalue(L, -1);
    call->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* ngx.ctx setter (value at 1): replaces the table. Stack: [-0, +0] */
static int ctx_set(lua_State *L)
{
    dc_call *call = dc_sbx_current(L);
    if (!lua_istable(L, 1))
        return luaL_error(L, "ctx should be a table while getting a %s", luaL_typename(L, 1));
    lua_settop(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (call->ctx_ref != LUA_NOREF && call->ctx_ref != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, call->ctx_ref);
    call->ctx_ref = ref;
    return 0;
}

void dc_api_open_ctx(lua_State *L)
{
    dc_sbx_add_prop(L, "ctx", ctx_get, ctx_set);
}
