/* api_sha1.c - SHA-1 (FIPS 180-4) for ngx.sha1_bin, and HMAC-SHA1 over it for
 * ngx.hmac_sha1: incremental, 64-byte blocks, constant memory.
 */
#include <string.h>

#include "api_hash.h"

static uint32_t rol(uint32_t x, int c)
{
    return (x << c) | (x >> (32 - c));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* Feeds whole blocks straight from the input, keeps a partial one in c->buf. */
void dc_sha1_init(dc_sha1_ctx *c)
{
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                                   0xc3d2e1f0};
    memcpy(c->h, h0, sizeof h0);
    c->total = 0;
    c->n = 0;
}

void dc_sha1_update(dc_sha1_ctx *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->total += len;
    if (c->n) {
        size_t k = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, k);
        c->n += k;
        p += k;
        len -= k;
        if (c->n < 64)
            return;
        sha1_block(c->h, c->buf);
        c->n = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha1_block(c->h, p);
    memcpy(c->buf, p, len);
    c->n = len;
}

void dc_sha1_final(dc_sha1_ctx *c, unsigned char out[20])
{
    unsigned char tail[128] = {0};
    size_t n = c->n;
    memcpy(tail, c->buf, n);
    tail[n] = 0x80;
    size_t tl = n < 56 ? 64 : 128;
    uint64_t bits = c->total * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(c->h, tail);
    if (tl == 128)
        sha1_block(c->h, tail + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

/* The inner hash starts on key XOR 0x36.., the outer one (at the end) on key XOR 0x5c..; a
 * key shorter than a block is padded with zeros. */
void dc_hmac_sha1_init(dc_hmac_sha1_ctx *c, const void *key, size_t klen)
{
    unsigned char ikey[64] = {0};
    if (klen > 64)
        klen = 64; /* the caller hashes a longer key first */
    memcpy(ikey, key, klen);
    for (int i = 0; i < 64; i++) {
        c->okey[i] = ikey[i] ^ 0x5c;
        ikey[i] ^= 0x36;
    }
    dc_sha1_init(&c->inner);
    dc_sha1_update(&c->inner, ikey, 64);
}

void dc_hmac_sha1_update(dc_hmac_sha1_ctx *c, const void *data, size_t len)
{
    dc_sha1_update(&c->inner, data, len);
}

void dc_hmac_sha1_final(dc_hmac_sha1_ctx *c, unsigned char out[20])
{
    unsigned char ih[20];
    dc_sha1_final(&c->inner, ih);
    dc_sha1_ctx o;
    dc_sha1_init(&o);
    dc_sha1_update(&o, c->okey, 64);
    dc_sha1_update(&o, ih, 20);
    dc_sha1_final(&o, out);
}
