/* main.c - the `dynacode` command: dispatches to check, run, watch, keygen and sign. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fputs("usage: dynacode COMMAND [OPTIONS] BUNDLE\n"
          "\n"
          "commands:\n"
          "  check   validate and compile a bundle; one line per problem\n"
          "  run     take one simulated request through every phase\n"
          "  watch   run the background pipeline in the foreground, one JSON event per line\n"
          "  keygen  make an Ed25519 key pair for signing bundles (--out NAME)\n"
          "  sign    write BUNDLE.sig, the signature of a bundle file (--key NAME.key)\n"
          "\n"
          "BUNDLE is a file path, - for standard input, or an http://, https:// or file://\n"
          "URL (fetched with the poller's code and limits).\n"
          "`dynacode COMMAND --help` describes each command.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DC_EXIT_UNUSABLE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return DC_EXIT_OK;
    }
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "watch") == 0)
        return cmd_watch(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "sign") == 0)
        return cmd_sign(argc - 1, argv + 1);
    fprintf(stderr, "dynacode: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return DC_EXIT_UNUSABLE;
}
