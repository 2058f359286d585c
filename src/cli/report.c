/* report.c - placeholder while the verb is being written (replaced by its implementation). */
#include "cli/cli.h"

int cmd_report(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("report: not written yet");
}
