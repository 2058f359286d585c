/* convert.c - `stylenet convert IN OUT.safetensors`: any weights file stylenet reads, as safetensors. */
#include <getopt.h>
#include <stdio.h>
#include "classifier/convert.h"
#include "cli/cli.h"
#include "core/error.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet convert [--labels FILE] IN OUT.safetensors\n"
               "Writes the weights in IN as a safetensors file that Python's safetensors and PyTorch load:\n"
               "  a TFLite model        -> a stylenet model file (safetensors; metadata: architecture, classes,\n"
               "                           preprocessing; the net's parameter names)\n"
               "  a PyTorch checkpoint  -> the same tensors under the same names (torch.save, zip or legacy;\n"
               "                           float tensors as F32, integer ones as I64)\n"
               "  safetensors or a stylenet model -> copied with its metadata\n"
               "  --labels FILE  class names of a TFLite model, one per line\n"
               "The format of IN is read from its bytes; OUT is replaced atomically.\n");
}

int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {{"labels", required_argument, 0, 'l'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *labels = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        if (c == 'l') {
            labels = optarg;
            continue;
        }
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    if (classifier_convert(argv[optind], argv[optind + 1], labels) < 0) return cli_fail("%s", sn_last_error());
    printf("wrote %s\n", argv[optind + 1]);
    return 0;
}
