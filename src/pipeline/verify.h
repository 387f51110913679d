/* verify.h - signatures and the rollback guard (verify.c): the pieces the poller and the
 * command use beyond the public keyring. */
#ifndef DC_VERIFY_H
#define DC_VERIFY_H

#include "base.h"

/* Decodes padded standard base64 (white space around it ignored) into out (outcap bytes).
 * DC_ESIG with err saying where it is not base64. */
DC_HIDDEN dc_rc dc_sig_decode(const char *text, size_t len, unsigned char *out, size_t outcap,
                              size_t *outlen, char *err, size_t errlen);
/* Where the signature of the bundle at url is: ".sig" added to the path (before any query or
 * fragment). malloc'd; NULL on ENOMEM. */
DC_HIDDEN char *dc_sig_url(const char *url);
/* Where the signature of a file is: path plus ".sig". malloc'd; NULL on ENOMEM. */
DC_HIDDEN char *dc_sig_path(const char *path);
/* The most bytes of signature text read or fetched. */
DC_HIDDEN size_t dc_sig_text_max(void);
/* 1 (and msg says both versions) when next's general.version is lower than in_force's, an
 * absent version counting as 0, and downgrades are not allowed; 0 otherwise. */
DC_HIDDEN int dc_version_refused(const dc_bundle *in_force, const dc_bundle *next,
                                 int allow_downgrade, char *msg, size_t len);

#endif
