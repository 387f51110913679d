/* sim_check.c - what plugins hand over (header names and values, a new path, a variable's
 * value), checked again as nginx's host does before the simulated request takes it.
 */
#include <string.h>

#include "sim_priv.h"

int dc_sim_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* No control byte (tab too when !tab_ok). */
int dc_sim_clean(dc_str v, int tab_ok)
{
    for (size_t i = 0; i < v.len; i++)
        if (dc_sim_is_ctl((unsigned char)v.data[i]) && !(tab_ok && v.data[i] == '\t'))
            return 0;
    return 1;
}

int dc_sim_header_ok(dc_str name, const dc_str *values, size_t n)
{
    if (name.len == 0 || !dc_sim_clean(name, 0) || memchr(name.data, ':', name.len) ||
        memchr(name.data, ' ', name.len))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!dc_sim_clean(values[i], 1))
            return 0;
    return 1;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A path as nginx may take it: starts with '/'; %XX-decoded, no "." or ".." segment, no
 * control byte, NUL or backslash. */
int dc_sim_path_ok(dc_str u)
{
    if (u.len == 0 || u.data[0] != '/')
        return 0;
    size_t seg = 0, dots = 0;
    for (size_t i = 0; i <= u.len; i++) {
        int c = i < u.len ? (unsigned char)u.data[i] : '/';
        if (i < u.len && dc_sim_is_ctl((unsigned char)c))
            return 0;
        if (c == '%' && i + 2 < u.len && hexval((unsigned char)u.data[i + 1]) >= 0 &&
            hexval((unsigned char)u.data[i + 2]) >= 0) {
            c = hexval((unsigned char)u.data[i + 1]) * 16 + hexval((unsigned char)u.data[i + 2]);
            i += 2;
            if (dc_sim_is_ctl((unsigned char)c))
                return 0;
        }
        if (c == '\\')
            return 0;
        if (c == '/') {
            if (seg > 0 && seg == dots && dots <= 2)
                return 0;
            seg = dots = 0;
            continue;
        }
        seg++;
        dots += c == '.';
    }
    return 1;
}
