/* api_hash.h - the digests behind ngx.md5, ngx.md5_bin, ngx.sha1_bin and ngx.crc32_long,
 * written out here (OpenSSL is not a dependency). One-shot functions over a buffer.
 */
#ifndef DC_API_HASH_H
#define DC_API_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

DC_HIDDEN void dc_md5(const void *data, size_t len, unsigned char out[16]);   /* RFC 1321 */
DC_HIDDEN void dc_sha1(const void *data, size_t len, unsigned char out[20]);  /* FIPS 180-4 */
DC_HIDDEN uint32_t dc_crc32(const void *data, size_t len);                    /* IEEE 802.3 */

#endif /* DC_API_HASH_H */
