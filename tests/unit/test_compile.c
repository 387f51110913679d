/* test_compile.c - dc_compile: Lua source to LuaJIT bytecode, bytecode refused, nothing run. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "compiler.h"
#include "testutil.h"

static dc_rc compile(const char *name, const char *code, unsigned char **bc, size_t *bclen,
                     char *err, size_t errlen)
{
    return dc_compile(name, code, strlen(code), bc, bclen, err, errlen);
}

/* Runs bytecode in a plain state; returns the error message (malloc'd) or NULL. */
static char *run_bytecode(const unsigned char *bc, size_t bclen)
{
    lua_State *L = luaL_newstate();
    ck_assert_ptr_nonnull(L);
    luaL_openlibs(L);
    char *msg = NULL;
    ck_assert_int_eq(luaL_loadbuffer(L, (const char *)bc, bclen, "ignored"), 0);
    if (lua_pcall(L, 0, 0, 0) != 0)
        msg = strdup(lua_tostring(L, -1));
    lua_close(L);
    return msg;
}

START_TEST(good_source_gives_bytecode)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[256] = "";
    ck_assert_int_eq(compile("hello", "local x = 1 + 2\nreturn x", &bc, &n, err, sizeof err),
                     DC_OK);
    ck_assert_ptr_nonnull(bc);
    ck_assert_uint_gt(n, 3);
    ck_assert_mem_eq(bc, "\033LJ", 3);
    ck_assert_str_eq(err, "");
    free(bc);
}
END_TEST

START_TEST(empty_source_compiles)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    ck_assert_int_eq(compile("empty", "", &bc, &n, NULL, 0), DC_OK);
    ck_assert_mem_eq(bc, "\033LJ", 3);
    free(bc);
}
END_TEST

START_TEST(runtime_errors_carry_the_plugin_name)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    ck_assert_int_eq(compile("my plugin", "local a = 1\nerror('boom')", &bc, &n, NULL, 0), DC_OK);
    char *msg = run_bytecode(bc, n);
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(msg, "my plugin:2: boom");
    free(msg);
    free(bc);
}
END_TEST

START_TEST(syntax_error_names_the_line)
{
    unsigned char *bc = (unsigned char *)"sentinel";
    size_t n = 99;
    char err[256] = "";
    dc_rc rc = compile("broken", "local a = 1\nlocal = 2\n", &bc, &n, err, sizeof err);
    ck_assert_int_eq(rc, DC_ECOMPILE);
    ck_assert_ptr_null(bc);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strncmp(err, "broken:2:", 9) == 0, "err: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "near"));
}
END_TEST

START_TEST(bytecode_is_refused)
{
    unsigned char *bc = NULL, *bc2 = NULL;
    size_t n = 0, n2 = 0;
    char err[256] = "";
    ck_assert_int_eq(compile("p", "return 1", &bc, &n, NULL, 0), DC_OK);
    /* LuaJIT's own bytecode, then a PUC Lua header: both refused */
    ck_assert_int_eq(dc_compile("p", (const char *)bc, n, &bc2, &n2, err, sizeof err),
                     DC_ECOMPILE);
    ck_assert_ptr_null(bc2);
    ck_assert_str_eq(err, "bytecode is refused, source only");
    err[0] = '\0';
    ck_assert_int_eq(compile("p", "\033Lua\x51\x00", &bc2, &n2, err, sizeof err), DC_ECOMPILE);
    ck_assert_str_eq(err, "bytecode is refused, source only");
    free(bc);
}
END_TEST

START_TEST(nothing_runs_at_compile_time)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[256] = "";
    /* each would end, hang or fail the process if it ran */
    const char *codes[] = {"os.exit(1)", "while true do end", "error('ran')",
                           "local t = {} repeat t[#t+1] = t until false"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_int_eq(compile("c", codes[i], &bc, &n, err, sizeof err), DC_OK);
        ck_assert_mem_eq(bc, "\033LJ", 3);
        free(bc);
    }
}
END_TEST

START_TEST(bad_arguments)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[64] = "";
    ck_assert_int_eq(dc_compile(NULL, "x = 1", 5, &bc, &n, err, sizeof err), DC_EINVAL);
    ck_assert_int_eq(dc_compile("p", NULL, 5, &bc, &n, err, sizeof err), DC_EINVAL);
    ck_assert_int_eq(dc_compile("p", "x = 1", 5, NULL, &n, err, sizeof err), DC_EINVAL);
    ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(error_message_fits_a_small_buffer)
{
    unsigned char *bc = NULL;
    size_t n = 0;
    char err[8];
    memset(err, 'x', sizeof err);
    ck_assert_int_eq(compile("p", "local = 1", &bc, &n, err, sizeof err), DC_ECOMPILE);
    ck_assert_uint_eq(strlen(err), sizeof err - 1);
}
END_TEST

static Suite *compile_suite(void)
{
    Suite *s = suite_create("compile");
    TCase *tc = tcase_create("compile");
    tcase_add_test(tc, good_source_gives_bytecode);
    tcase_add_test(tc, empty_source_compiles);
    tcase_add_test(tc, runtime_errors_carry_the_plugin_name);
    tcase_add_test(tc, syntax_error_names_the_line);
    tcase_add_test(tc, bytecode_is_refused);
    tcase_add_test(tc, nothing_runs_at_compile_time);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, error_message_fits_a_small_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(compile_suite());
}
