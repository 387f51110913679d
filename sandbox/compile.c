/* compile.c - turns one plugin's Lua source into LuaJIT bytecode (dc_compile). Relies on LuaJIT's
 * parser in a scratch state of its own; the chunk is only parsed and dumped, never run, and
 * bytecode input is refused so that only code LuaJIT itself produced reaches a sandbox.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* lua_dump writer: appends each piece to the dc_buf in ud; nonzero stops the dump. */
static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    return dc_buf_append(ud, p, sz) != 0;
}

/* Stack: [-0, +0]. Copies the message at the top (a string, or something else on OOM). */
static void top_message(lua_State *L, char *err, size_t errlen)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    dc_set_err(err, errlen, "%s", msg ? msg : "unknown Lua error");
}

/* Parses the chunk in L (never runs it) and dumps it into out. Stack: [-0, +1] (the function
 * or the error message; the caller closes L). */
static dc_rc parse_and_dump(lua_State *L, const char *chunkname, const char *code, size_t len,
                            dc_buf *out, char *err, size_t errlen)
{
    int st = luaL_loadbufferx(L, code, len, chunkname, "t");
    if (st == LUA_ERRMEM) {
        dc_set_err(err, errlen, "out of memory while compiling");
        return DC_ENOMEM;
    }
    if (st != 0) {
        top_message(L, err, errlen);
        return DC_ECOMPILE;
    }
    if (lua_dump(L, dump_writer, out) != 0 || out->len == 0) {
        dc_set_err(err, errlen, "out of memory while writing bytecode");
        return DC_ENOMEM;
    }
    return DC_OK;
}

dc_rc dc_compile(const char *name, const char *code, size_t len, unsigned char **bc,
                 size_t *bclen, char *err, size_t errlen)
{
    if (!name || (!code && len) || !bc || !bclen) {
        dc_set_err(err, errlen, "dc_compile: bad argument");
        return DC_EINVAL;
    }
    *bc = NULL;
    *bclen = 0;
    /* Mode "t" refuses it too; say plainly why, before LuaJIT's own wording. */
    if (len > 0 && code[0] == '\033') {
        dc_set_err(err, errlen, "bytecode is refused, source only");
        return DC_ECOMPILE;
    }
    size_t nlen = strlen(name);
    char *chunkname = malloc(nlen + 2);
    if (!chunkname) {
        dc_set_err(err, errlen, "out of memory");
        return DC_ENOMEM;
    }
    chunkname[0] = '='; /* "=NAME": messages read "NAME:1: ..." rather than [string "..."] */
    memcpy(chunkname + 1, name, nlen + 1);

    lua_State *L = luaL_newstate();
    if (!L) {
        free(chunkname);
        dc_set_err(err, errlen, "cannot create a Lua state to compile in");
        return DC_ELUA;
    }
    dc_buf out = {0};
    dc_rc rc = parse_and_dump(L, chunkname, code ? code : "", len, &out, err, errlen);
    lua_close(L);
    free(chunkname);
    if (rc != DC_OK) {
        dc_buf_free(&out);
        return rc;
    }
    *bc = (unsigned char *)out.data;
    *bclen = out.len;
    return DC_OK;
}
