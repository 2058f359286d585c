/* lr_find.c - placeholder while the verb is being written (replaced by its implementation). */
#include "cli/cli.h"

int cmd_lr_find(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("lr_find: not written yet");
}
