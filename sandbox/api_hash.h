/* api_hash.h - the digests behind ngx.md5, ngx.md5_bin, ngx.sha1_bin, ngx.hmac_sha1,
 * ngx.crc32_long and ngx.crc32_short, written out here (OpenSSL is not a dependency). Each runs incrementally (init, update over
 * any number of pieces, final) so that the API can charge the quota between pieces.
 */
#ifndef DC_API_HASH_H
#define DC_API_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

typedef struct dc_md5_ctx {
    uint32_t h[4];
    uint64_t total;           /* bytes fed so far */
    unsigned char buf[64];    /* a partial block */
    size_t n;                 /* bytes in buf */
} dc_md5_ctx;

typedef struct dc_sha1_ctx {
    uint32_t h[5];
    uint64_t total;
    unsigned char buf[64];
    size_t n;
} dc_sha1_ctx;

DC_HIDDEN void dc_md5_init(dc_md5_ctx *c);                                    /* RFC 1321 */
DC_HIDDEN void dc_md5_update(dc_md5_ctx *c, const void *data, size_t len);
DC_HIDDEN void dc_md5_final(dc_md5_ctx *c, unsigned char out[16]);
DC_HIDDEN void dc_sha1_init(dc_sha1_ctx *c);                                  /* FIPS 180-4 */
DC_HIDDEN void dc_sha1_update(dc_sha1_ctx *c, const void *data, size_t len);
DC_HIDDEN void dc_sha1_final(dc_sha1_ctx *c, unsigned char out[20]);
/* HMAC-SHA1 (RFC 2104) over the SHA-1 above. The key is at most 64 bytes (one block): a
 * longer key is replaced by its SHA-1 before, by the caller, who can charge for it. */
typedef struct dc_hmac_sha1_ctx {
    dc_sha1_ctx inner;
    unsigned char okey[64];   /* the key XOR the outer pad */
} dc_hmac_sha1_ctx;

DC_HIDDEN void dc_hmac_sha1_init(dc_hmac_sha1_ctx *c, const void *key, size_t klen);
DC_HIDDEN void dc_hmac_sha1_update(dc_hmac_sha1_ctx *c, const void *data, size_t len);
DC_HIDDEN void dc_hmac_sha1_final(dc_hmac_sha1_ctx *c, unsigned char out[20]);
/* IEEE 802.3: start with crc = 0 and feed each piece's result into the next call. */
DC_HIDDEN uint32_t dc_crc32_update(uint32_t crc, const void *data, size_t len);

#endif /* DC_API_HASH_H */
