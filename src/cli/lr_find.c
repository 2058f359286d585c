/* lr_find.c - `stylenet lr-find`: the learning-rate finder on its own (see train/learner.h).
 *
 * The model and data are set up as `train` sets them up (train/recipe.h: recipe_open_data,
 * recipe_model) or come from a saved model (--model); the sweep is the recipe's (recipe_lr_find):
 * exponential from --start to --end over --iters mini-batches, the body frozen unless --unfreeze
 * (or no pretrained weights), stopping once the smoothed loss diverges.  Prints the suggestion with
 * the minimum and steepest points and writes the plot of loss against rate on a log axis. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/progress.h"
#include "core/error.h"
#include "data/dataset.h"
#include "classifier/classifier.h"
#include "train/recipe.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: stylenet lr-find --data DIR [options]\n"
        "Sweeps the learning rate exponentially over mini-batches of the training share, stops when the\n"
        "loss diverges, suggests a rate (the minimum of the smoothed loss / 10, or the steepest descent\n"
        "if lower) and plots the smoothed loss against the rate on a log axis.\n"
        "data:\n"
        "  --data DIR           image folder (as for train); --task T; --csv F --pattern P --names F\n"
        "  --valid-pct P        validation share kept out of the sweep (0.2); --seed S (42)\n"
        "model (as train builds it, or a saved one):\n"
        "  --pretrained FILE    TFLite MobileNetV2, torchvision state dict (safetensors or torch.save .pth), or a stylenet model\n"
        "  --model M            a saved stylenet model, head included (e.g. to pick a rate for more training)\n"
        "  --arch A             architecture (default: from the file; resnet34 without one)\n"
        "  --ps P               head dropout of a new model (0.25)\n"
        "sweep:\n"
        "  --size S             image side (104, the seed recipe's first size; a saved model's own size)\n"
        "  --batch B            batch size (32)\n"
        "  --start X --end Y    range of rates (1e-7, 10)\n"
        "  --iters N            mini-batches in the sweep (100)\n"
        "  --unfreeze           every layer trains (default: only the head, the body frozen)\n"
        "  --opt O --wd W       sgd|adam|adamw (adamw), weight decay (0.01); --freeze-bn\n"
        "output:\n"
        "  --png FILE           the plot (lr_find.png); --no-png: none\n"
        "  --json               the result as JSON (suggestion, min_lr, steepest_lr, the sweep)\n"
        "  --threads N\n");
    fputs(CLI_PHOTO_FORMATS, f);
}

#define BAD(...)                                                                                                       \
    do {                                                                                                               \
        fprintf(stderr, "stylenet lr-find: " __VA_ARGS__);                                                             \
        fputc('\n', stderr);                                                                                           \
        usage(stderr);                                                                                                 \
        return 2;                                                                                                      \
    } while (0)

/* what the sweep was asked to do */
typedef struct {
    double start, end;
    int iters, size, batch;
    bool frozen;
    const char *png;         /* NULL: no plot */
} sweep_settings;

/* the result as JSON on stdout, with the sweep as the learner recorded it */
static void print_json(const learner *l, const dataset *ds, const classifier *m, const sweep_settings *ss,
                       const lr_find_info *info) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", ds->root);
    cJSON_AddStringToObject(o, "arch", m->arch);
    cJSON_AddBoolToObject(o, "frozen", ss->frozen);
    cJSON_AddNumberToObject(o, "size", ss->size);
    cJSON_AddNumberToObject(o, "batch", ss->batch);
    cJSON_AddNumberToObject(o, "start", ss->start);
    cJSON_AddNumberToObject(o, "end", ss->end);
    cJSON_AddNumberToObject(o, "iters_asked", ss->iters);
    cJSON_AddNumberToObject(o, "iters", info->iters);
    cJSON_AddBoolToObject(o, "diverged", info->diverged);
    cJSON_AddNumberToObject(o, "last_lr", info->last_lr);
    cJSON_AddNumberToObject(o, "suggestion", info->suggestion);
    cJSON_AddNumberToObject(o, "min_lr", info->min_lr);
    cJSON_AddNumberToObject(o, "min_loss", info->min_loss);
    cJSON_AddNumberToObject(o, "steepest_lr", info->steepest_lr);
    if (ss->png) cJSON_AddStringToObject(o, "png", ss->png);
    else cJSON_AddNullToObject(o, "png");
    /* the sweep (up to the divergence) as the learner recorded it */
    char *hs = learner_history_json(l);
    cJSON *h = hs ? cJSON_Parse(hs) : NULL, *row = NULL;
    free(hs);
    cJSON_ArrayForEach(row, h) {
        if (cJSON_GetObjectItem(row, "lr_find_lr")) {
            cJSON_AddItemToObject(o, "lrs", cJSON_DetachItemFromObject(row, "lr_find_lr"));
            cJSON_AddItemToObject(o, "losses", cJSON_DetachItemFromObject(row, "lr_find_loss"));
        }
    }
    cJSON_Delete(h);
    char *s = cJSON_Print(o);
    if (s) puts(s);
    free(s);
    cJSON_Delete(o);
}

static void print_text(const sweep_settings *ss, const lr_find_info *info) {
    printf("sweep: %d iterations, rates %.3g .. %.3g%s\n", info->iters, ss->start, info->last_lr,
           info->diverged ? " (stopped: the loss diverged)" : "");
    printf("minimum of the smoothed loss: %.4g at lr %.3g\n", info->min_loss, info->min_lr);
    printf("steepest descent at lr %.3g\n", info->steepest_lr);
    printf("suggested learning rate %.3g\n", info->suggestion);
    if (ss->png) printf("plot written to %s\n", ss->png);
}

int cmd_lr_find(int argc, char **argv) {
    enum { O_VPCT = CLI_O_VERB, O_SEED, O_PRE, O_MODEL, O_ARCH, O_PS, O_SIZE, O_BATCH, O_START, O_END, O_ITERS,
           O_UNFREEZE, O_OPT, O_WD, O_FREEZEBN, O_PNG, O_NOPNG, O_JSON, O_THREADS };
    static const struct option opts[] = {
        CLI_DATA_FLAGS, {"valid-pct", required_argument, 0, O_VPCT},
        {"seed", required_argument, 0, O_SEED}, {"pretrained", required_argument, 0, O_PRE},
        {"model", required_argument, 0, O_MODEL}, {"arch", required_argument, 0, O_ARCH},
        {"ps", required_argument, 0, O_PS}, {"size", required_argument, 0, O_SIZE},
        {"batch", required_argument, 0, O_BATCH}, {"start", required_argument, 0, O_START},
        {"end", required_argument, 0, O_END}, {"iters", required_argument, 0, O_ITERS},
        {"unfreeze", no_argument, 0, O_UNFREEZE}, {"opt", required_argument, 0, O_OPT},
        {"wd", required_argument, 0, O_WD}, {"freeze-bn", no_argument, 0, O_FREEZEBN},
        {"png", required_argument, 0, O_PNG}, {"no-png", no_argument, 0, O_NOPNG},
        {"json", no_argument, 0, O_JSON}, {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    ds_options dso = {0};
    recipe_opts ro = recipe_defaults();
    cli_progress prog;
    ro.lo.events = cli_progress_init(&prog);
    const char *model_path = NULL, *png = "lr_find.png";
    double start = 1e-7, end = 10;
    float vpct = 0.2f;
    int iters = 100, size = 0, json = 0, unfreeze = 0, c, bad;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &dso)) continue;
        bad = 0;
        switch (c) {
        case O_VPCT: bad = cli_float("--valid-pct", optarg, 0.01, 0.99, &vpct); break;
        case O_SEED: bad = cli_seed("--seed", optarg, &ro.lo.seed); break;
        case O_PRE: ro.pretrained = optarg; break;
        case O_MODEL: model_path = optarg; break;
        case O_ARCH: ro.arch = optarg; break;
        case O_PS: bad = cli_float("--ps", optarg, 0, 0.99, &ro.ps); break;
        case O_SIZE: bad = cli_int("--size", optarg, 32, 1024, &size); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, 4096, &ro.lo.batch); break;
        case O_START: bad = cli_num("--start", optarg, 1e-12, 1e3, &start); break;
        case O_END: bad = cli_num("--end", optarg, 1e-12, 1e3, &end); break;
        case O_ITERS: bad = cli_int("--iters", optarg, 2, 100000, &iters); break;
        case O_UNFREEZE: unfreeze = 1; break;
        case O_OPT: bad = optim_parse(optarg, &ro.lo.opt); break;
        case O_WD: bad = cli_float("--wd", optarg, 0, 10, &ro.lo.wd); break;
        case O_FREEZEBN: ro.lo.freeze_bn = true; break;
        case O_PNG: png = optarg; break;
        case O_NOPNG: png = NULL; break;
        case O_JSON: json = 1; break;
        case O_THREADS: bad = cli_threads(optarg); break;
        case 'h': usage(stdout); return 0;
        default: BAD("unknown option or missing value: %s", argv[optind - 1]);
        }
        if (bad < 0) return cli_usage_error("lr-find", usage);
    }
    if (optind != argc) BAD("unexpected argument: %s", argv[optind]);
    if (!dso.root) BAD("--data DIR is required");
    if (model_path && ro.pretrained) BAD("--model and --pretrained exclude each other");
    if (!(end > start)) BAD("the sweep must rise: --start %g, --end %g", start, end);
    if (png && !*png) BAD("--png needs a file name");

    classifier *m = NULL;
    if (model_path) {
        if (!(m = classifier_load(model_path, NULL))) return cli_fail("%s", sn_last_error());
        if (!dso.task && !strcmp(m->task, "multi")) dso.task = "multi";
        if (!size) size = m->size > 0 ? m->size : ro.sizes[0];
    }
    if (!size) size = ro.sizes[0];
    ro.sizes[0] = ro.sizes[1] = size;
    ds_split sp;
    dataset *ds = recipe_open_data(&dso, &ro, vpct, &sp);
    if (!ds) {
        classifier_free(m);
        return cli_fail("%s", sn_last_error());
    }
    int rc = 1;
    learner *l = NULL;
    if (m ? classifier_check_classes(m, model_path, ds) < 0 : !(m = recipe_model(ds, &ro, size))) {
        cli_fail("%s", sn_last_error());
        goto out;
    }
    /* without trained weights of any kind nothing is worth freezing */
    const bool unfrozen = unfreeze || (!model_path && !ro.pretrained);
    ro.lo.quiet = true;
    ro.lo.progress = !json;
    if (!(l = learner_create(m, ds, &sp, &ro.lo))) {
        cli_fail("%s", sn_last_error());
        goto out;
    }
    const int batch = learner_batch(l); /* a training share smaller than --batch is one batch */
    if (!json)
        printf("stylenet lr-find: %s, %d training images, %s%s, %s, size %d, batch %d, %d iterations %g .. %g\n",
               ds->root, sp.n_train, m->arch, model_path ? " (saved model)" : ro.pretrained ? " pretrained" : " random init",
               unfrozen ? "all layers trainable" : "body frozen", size, batch, iters, start, end);
    lr_find_info info;
    double sug = recipe_lr_find(l, m, &ro, unfrozen, size, start, end, iters, png, &info);
    if (sug < 0) {
        cli_fail("%s", sn_last_error());
        goto out;
    }
    sweep_settings ss = {.start = start, .end = end, .iters = iters, .size = size, .batch = batch, .frozen = !unfrozen,
                         .png = png};
    if (json) print_json(l, ds, m, &ss, &info);
    else print_text(&ss, &info);
    rc = 0;
out:
    learner_free(l);
    classifier_free(m);
    ds_split_free(&sp);
    ds_free(ds);
    return rc;
}
