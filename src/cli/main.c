/* main.c - `stylenet VERB ...`: dispatch to the verbs in src/cli/. */
#include <malloc.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "core/openmp.h"
#include "dist/dist.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} verbs[] = {
    {"predict", cmd_predict, "classify images with a model (top-k classes and probabilities)"},
    {"train", cmd_train, "transfer learning: pretrained body, fastai head, fit, fine-tune, evaluate"},
    {"eval", cmd_eval, "score a saved model on labelled images: F2, accuracies, confusion matrices"},
    {"calibrate", cmd_calibrate, "fit a model's temperature on labelled photos so its probabilities are calibrated"},
    {"lr-find", cmd_lr_find, "learning rate finder: sweep the rate, plot loss against it, suggest one"},
    {"serve", cmd_serve, "HTTP service: POST /predict, a web page, /healthz, /model, /metrics"},
    {"cv", cmd_cv, "cross-validation: the recipe on K stratified folds, each metric's mean and spread"},
    {"report", cmd_report, "turn a run directory into PNG plots and one HTML page"},
    {"info", cmd_info, "describe a model file: architecture, classes, parameters, how it was trained"},
    {"data", cmd_data, "describe a data set: images, classes, train/valid split; --grid shows augmented samples"},
    {"convert", cmd_convert, "write any weights file stylenet reads (TFLite, .pth, model) as safetensors"},
    {"export", cmd_export, "write a model as ONNX (body, head, sigmoid/softmax) and/or as a PyTorch state dict"},
};

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("stylenet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}


static void usage(FILE *f) {
    fprintf(f, "usage: stylenet VERB [options]   (stylenet VERB --help for each verb)\n\nverbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
}

/* verb i, as one of the ranks of an mpirun job when started so (src/dist/dist.h): rank 0 alone
 * prints results; a rank that fails ends the whole job, naming itself */
static int run_verb(size_t i, int argc, char **argv) {
    if (dist_init(&argc, &argv) < 0) return cli_fail("%s", sn_last_error());
    if (dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return cli_fail("rank %d: /dev/null: %m", dist_rank());
    int rc = verbs[i].run(argc - 1, argv + 1);
    if (dist_active() && rc != 0 && rc != 3) { /* 3: stopped by --stop-after, on every rank alike */
        char msg[96];
        snprintf(msg, sizeof msg, "`%s` failed (exit status %d): the job ends", verbs[i].name, rc);
        dist_abort(rc, msg);
    }
    dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    sn_openmp_setup(argv); /* libgomp's barrier spinning, bounded (see core/openmp.h) */
    /* The kernels allocate large per-call workspaces (im2col, per-thread partial gradients).
     * glibc would return each to the kernel on free and page-fault it back on the next layer,
     * ~15-20% of a training step; keep freed memory in the process instead. */
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name)) return run_verb(i, argc, argv);
    fprintf(stderr, "stylenet: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
