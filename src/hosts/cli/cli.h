/* cli.h - the `dynacode` command's shared helpers: reading a BUNDLE argument, loading it, and
 * printing values quoted for one-line output.
 */
#ifndef DC_CLI_H
#define DC_CLI_H

#include <stdio.h>

#include "dynacode.h"

/* Exit codes of the command (its usage text and README.md list them). */
#define DC_EXIT_OK 0
#define DC_EXIT_PROBLEMS 1
#define DC_EXIT_UNUSABLE 2

/* Reads BUNDLE (a path, "-" for standard input, or an http://, https:// or file:// URL,
 * fetched with the poller's code and limits) into a malloc'd buffer. Returns 0, or -1 with a
 * message in err. */
int cli_read_bundle(const char *arg, size_t max, char **data, size_t *len, char *err,
                    size_t errlen);
/* --follow-redirects: cli_read_bundle follows an API's redirects (off by default: a redirect
 * is an error naming where it led). */
void cli_follow_redirects(int on);
/* Loads the policy FILE, or the built-in default when path is NULL; on failure prints the
 * reason (file, key, why) and returns NULL. */
dc_policy *cli_load_policy(const char *path);
/* The --verify-key files given to a command (repeatable: any one of them verifying is enough). */
#define CLI_MAX_VERIFY_KEYS 16
typedef struct cli_keys {
    const char *paths[CLI_MAX_VERIFY_KEYS];
    size_t n;
} cli_keys;
/* Adds one --verify-key FILE; prints why and returns -1 when there are too many. */
int cli_keys_add(cli_keys *k, const char *cmd, const char *path);
/* With keys (k->n > 0): verifies the signature of data (the bytes of BUNDLE arg), read from
 * the path or URL plus ".sig". Returns 0, or -1 after printing why. */
int cli_verify_bundle(const char *arg, const char *data, size_t len, const cli_keys *k);
/* Reads and loads BUNDLE with the policy's limits, after checking its signature when keys
 * (may be NULL) has any; on failure prints the reason, returns NULL. */
dc_bundle *cli_load_bundle(const char *arg, const dc_policy *policy, const cli_keys *keys);
/* Writes s as a double-quoted string with \", \\, \n, \r, \t and \xHH escapes. */
void cli_put_quoted(FILE *out, const char *s);
/* Writes s as a JSON string (bytes >= 0x80 pass through: the input is UTF-8). */
void cli_put_json_string(FILE *out, const char *s);

int cmd_check(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sign(int argc, char **argv);

#endif
