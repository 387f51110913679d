/* log_escape.c - the one escape of text written into log and trace lines: control bytes as \n,
 * \r, \t or \xNN (no message can start a line of its own or hide text behind terminal escapes),
 * and for a quoted name '"' and '\' too.
 */
#include <string.h>

#include "base.h"

size_t dc_log_escape_byte(unsigned char c, int quote, char out[4])
{
    static const char hex[] = "0123456789abcdef";
    if (c == '\n' || c == '\r' || c == '\t') {
        out[0] = '\\';
        out[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[c >> 4];
        out[3] = hex[c & 0xf];
        return 4;
    }
    if (quote && (c == '"' || c == '\\')) {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    out[0] = (char)c;
    return 1;
}

size_t dc_log_escape(char *dst, size_t cap, const char *src, int quote)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p; p++) {
        char e[4];
        size_t k = dc_log_escape_byte(*p, quote, e);
        if (k >= cap - n) {  /* keep room for the NUL; cut whole escapes only */
            if (cap - n > 3) {
                memcpy(dst + n, "...", 3);
                n += 3;
            }
            break;
        }
        memcpy(dst + n, e, k);
        n += k;
    }
    dst[n] = '\0';
    return n;
}
