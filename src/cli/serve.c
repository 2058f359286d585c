/* serve.c - placeholder while the verb is being written (replaced by its implementation). */
#include "cli/cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("serve: not written yet");
}
