/* export.c - `stylenet export`: a model for other runtimes (ONNX) and for PyTorch (safetensors). */
#include <getopt.h>
#include <stdio.h>
#include "classifier/classifier.h"
#include "classifier/export.h"
#include "cli/cli.h"
#include "core/error.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet export [--onnx OUT.onnx] [--safetensors OUT.safetensors] [options] MODEL\n"
            "Writes the classifier in MODEL (a stylenet model, a torchvision/EfficientNet-Lite state dict or a\n"
            "TFLite MobileNetV2) for other runtimes; at least one of:\n"
            "  --onnx FILE         the whole classifier as ONNX (opset 13): input \"input\" float\n"
            "                      [batch, 3, size, size] NCHW, normalised; outputs \"logits\" and \"probabilities\"\n"
            "                      [batch, classes] (sigmoid for a multi-label model, softmax otherwise: what\n"
            "                      predict reports); batch dynamic; the preprocessing, classes, label groups and\n"
            "                      threshold in the model's metadata_props\n"
            "  --safetensors FILE  the weights as a PyTorch state dict: torchvision / efficientnet-lite-pytorch\n"
            "                      names for the body, fastai's create_head indices (head.<i>) for a fastai head,\n"
            "                      conv weights OIHW, with the model's metadata (classes, preprocessing)\n"
            "  --labels FILE       class names, one per line (TFLite and plain state dicts)\n"
            "  --arch NAME         architecture of a plain state dict (default: recognised from its names)\n"
            "  --size N            input side in pixels (default: the model's)\n"
            "Files are replaced atomically.\n");
}

int cmd_export(int argc, char **argv) {
    enum { O_ONNX = 256, O_ST };
    static const struct option opts[] = {{"onnx", required_argument, 0, O_ONNX},
                                         {"safetensors", required_argument, 0, O_ST},
                                         {"labels", required_argument, 0, 'l'},
                                         {"arch", required_argument, 0, 'a'},
                                         {"size", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *onnx = NULL, *st = NULL;
    classifier_load_opts lo = {0};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:a:s:h", opts, NULL)) != -1) {
        switch (c) {
        case O_ONNX: onnx = optarg; break;
        case O_ST: st = optarg; break;
        case 'l': lo.labels = optarg; break;
        case 'a': lo.arch = optarg; break;
        case 's': bad = cli_int("--size", optarg, 32, 1024, &lo.size); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("export", usage);
    }
    if (argc - optind != 1 || (!onnx && !st)) {
        usage(stderr);
        return 2;
    }
    classifier *m = classifier_load(argv[optind], &lo);
    if (!m) return cli_fail("%s", sn_last_error());
    int r = 0;
    if (onnx && (r = classifier_export_onnx(m, onnx)) == 0) printf("wrote %s\n", onnx);
    if (r == 0 && st && (r = classifier_save(m, st)) == 0) printf("wrote %s\n", st);
    classifier_free(m);
    return r < 0 ? cli_fail("%s", sn_last_error()) : 0;
}
