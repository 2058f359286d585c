/* train.c - `stylenet train`: transfer learning end to end (see train/recipe.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/file.h"
#include "dist/dist.h"
#include "data/dataset.h"
#include "classifier/classifier.h"
#include "train/predictions.h"
#include "train/recipe.h"

void cli_train_help(FILE *f) {
    fprintf(f,
        "data:\n"
        "  --data DIR           image folder (folder per class, CSV with --csv, names by --pattern;\n"
        "                       the Style set is recognised by its style.txt)\n"
        "  --task T             Style: multi (brand+product tags), brand, product, combo\n"
        "  --csv F --pattern P --names F   other layouts (see `stylenet data --help`)\n"
        "  --valid-pct P        validation share (0.2), stratified, seeded; 0: every photo trains, no\n"
        "                       validation (the training loss alone)\n"
        "  --valid-data DIR     score on the photos of DIR instead of a split (every photo of --data\n"
        "                       trains); read with the training data's classes, task and file names\n"
        "model:\n"
        "  --pretrained FILE    TFLite MobileNetV2, torchvision state dict (safetensors or torch.save .pth), or a stylenet model\n"
        "  --arch A             resnet18|resnet34|resnet50|mobilenet_v2|mobilenet_v2_tf|efficientnet_lite0|1|2\n"
        "                       (default: from the file)\n"
        "  --ps P               head dropout (0.25; ps/2 before the first linear)\n"
        "recipe (every step has a flag):\n"
        "  --recipe R           seed (reference workflow), fine-tune, scratch\n"
        "  --sizes A,B          progressive resizing sizes (104,128; EfficientNet-Lite bodies 128,160);\n"
        "                       --size S for one size\n"
        "  --lr X               head learning rate (default: the LR finder's suggestion)\n"
        "  --lrs A,B,C          rates of the layer groups once unfrozen (1e-4,3e-4,1e-3)\n"
        "  --lr-div D           instead derive them from the head's rate: lr/D^2, lr/D, lr\n"
        "  --head-epochs N      precomputed head epochs (2); --head-aug-epochs N (1)\n"
        "  --cycles N --cycle-len L --cycle-mult M   SGDR over all layers (5, 1, 2: 1+2+4+8+16 epochs)\n"
        "  --resize-after N     cycles at the first size (3)\n"
        "  --epochs N           fine-tune / scratch epochs (5)\n"
        "  --opt O --wd W       sgd|adam|adamw (adamw), weight decay (0.01); --no-bn-wd\n"
        "  --freeze-bn          keep the body's batch-norm statistics frozen after unfreezing\n"
        "  --sync-bn            under mpirun: batch-norm statistics of the whole batch, summed across the\n"
        "                       ranks (default: each rank's share; see docs/cluster.md)\n"
        "  --batch B            batch size (32); --no-aug: no augmentation\n"
        "  --max-zoom Z         augmentation zoom uniform in [1, Z] (1.1)\n"
        "  --tta N              augmented views added at evaluation (4)\n"
        "  --shifted            also score the shifted stress version of the validation photos (as\n"
        "                       `eval --shifted`)\n"
        "  --test-size S        side the trained model is scored at and saved for (default: the final\n"
        "                       training size)\n"
        "  --thresh T           multi-label threshold for F2 (0.2), applied to calibrated probabilities\n"
        "  --no-calibrate       keep the raw probabilities (by default the model's temperature is fitted\n"
        "                       on the validation photos at the end: see `stylenet calibrate`)\n"
        "  --group-ce W         multi-label with label groups (Style: brand, product): add W x the\n"
        "                       per-group softmax cross-entropy to the BCE (0: BCE alone)\n"
        "  --mixup A            mixup with Beta(A, A) in the augmented phases (0: off; fastai 0.4)\n"
        "  --label-smooth E     label smoothing of the training targets, 0 <= E < 1 (0: off): multi-label\n"
        "                       tags t(1-E) + E/2, single-label t(1-E) + E/classes\n"
        "run:\n"
        "  --out MODEL          where the trained model goes (written atomically)\n"
        "  --run-dir DIR        history, LR-finder plot and a checkpoint after every epoch\n"
        "  --resume             continue from DIR's checkpoint (same options)\n"
        "  --stop-after N       stop after N epochs as if killed (exit status 3; then --resume)\n"
        "  --seed S (42)  --threads N  --json  --quiet\n"
        "  --split-seed S       seed of the validation split (default: --seed), to vary training alone\n");
    fputs(CLI_AUG_HELP, f);
    fputs(CLI_PHOTO_FORMATS, f);
}

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet train --data DIR --out MODEL [options]\n");
    cli_train_help(f);
}

static int parse_pair(const char *s, int *a, int *b) { return sscanf(s, "%d,%d", a, b) == 2 ? 0 : -1; }

#define NUM(flag, lo, hi, dst)                                                                                         \
    if (cli_float(flag, optarg, lo, hi, dst) < 0) return cli_usage_error(verb, usage);                                 \
    break
#define INT(flag, lo, hi, dst)                                                                                         \
    if (cli_int(flag, optarg, lo, hi, dst) < 0) return cli_usage_error(verb, usage);                                   \
    break

enum { O_VPCT = CLI_O_VERB, O_PRE, O_ARCH, O_PS, O_RECIPE, O_SIZES, O_SIZE, O_LR, O_LRS, O_LRDIV, O_HEADE, O_HEADAE,
       O_CYC, O_CYCLEN, O_CYCMULT, O_RESIZE, O_EPOCHS, O_OPT, O_WD, O_NOBNWD, O_FREEZEBN, O_BATCH, O_NOAUG, O_TTA,
       O_THRESH, O_OUT, O_RUN, O_RESUME, O_SEED, O_THREADS, O_JSON, O_QUIET, O_STOP, O_SPLITSEED, O_GROUPCE,
       O_MIXUP, O_LSMOOTH, O_TESTSIZE, O_MAXZOOM, O_NOCAL, O_VDATA, O_SHIFTED, O_SYNCBN };
static const struct option train_flags[] = {
    CLI_DATA_FLAGS, CLI_AUG_FLAGS,
    {"valid-pct", required_argument, 0, O_VPCT}, {"pretrained", required_argument, 0, O_PRE},
    {"arch", required_argument, 0, O_ARCH}, {"ps", required_argument, 0, O_PS},
    {"recipe", required_argument, 0, O_RECIPE}, {"sizes", required_argument, 0, O_SIZES},
    {"size", required_argument, 0, O_SIZE}, {"lr", required_argument, 0, O_LR}, {"lrs", required_argument, 0, O_LRS},
    {"lr-div", required_argument, 0, O_LRDIV}, {"head-epochs", required_argument, 0, O_HEADE},
    {"head-aug-epochs", required_argument, 0, O_HEADAE}, {"cycles", required_argument, 0, O_CYC},
    {"cycle-len", required_argument, 0, O_CYCLEN}, {"cycle-mult", required_argument, 0, O_CYCMULT},
    {"resize-after", required_argument, 0, O_RESIZE}, {"epochs", required_argument, 0, O_EPOCHS},
    {"opt", required_argument, 0, O_OPT}, {"wd", required_argument, 0, O_WD}, {"no-bn-wd", no_argument, 0, O_NOBNWD},
    {"freeze-bn", no_argument, 0, O_FREEZEBN}, {"sync-bn", no_argument, 0, O_SYNCBN}, {"batch", required_argument, 0, O_BATCH},
    {"no-aug", no_argument, 0, O_NOAUG}, {"tta", required_argument, 0, O_TTA},
    {"thresh", required_argument, 0, O_THRESH}, {"out", required_argument, 0, O_OUT},
    {"run-dir", required_argument, 0, O_RUN}, {"resume", no_argument, 0, O_RESUME},
    {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
    {"json", no_argument, 0, O_JSON}, {"quiet", no_argument, 0, O_QUIET},
    {"stop-after", required_argument, 0, O_STOP}, {"help", no_argument, 0, 'h'},
    {"split-seed", required_argument, 0, O_SPLITSEED}, {"group-ce", required_argument, 0, O_GROUPCE},
    {"mixup", required_argument, 0, O_MIXUP}, {"label-smooth", required_argument, 0, O_LSMOOTH},
    {"test-size", required_argument, 0, O_TESTSIZE}, {"max-zoom", required_argument, 0, O_MAXZOOM},
    {"no-calibrate", no_argument, 0, O_NOCAL},
    {"valid-data", required_argument, 0, O_VDATA}, {"shifted", no_argument, 0, O_SHIFTED}, {0, 0, 0, 0}};

int cli_train_parse(int argc, char **argv, cli_train_args *a, const char *verb, void (*usage)(FILE *)) {
    recipe_opts *ro = &a->ro;
    bool no_aug = false, sizes_given = false;
    uint64_t split_seed;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", train_flags, NULL)) != -1) {
        if (cli_data_flag(c, optarg, &a->dso)) continue;
        int aug = cli_aug_flag(c, optarg, &ro->lo.aug);
        if (aug < 0) return cli_usage_error(verb, usage);
        if (aug) continue;
        switch (c) {
        case O_VPCT:
            a->vpct_given = true;
            NUM("--valid-pct", 0, 0.99, &a->vpct);
        case O_VDATA: ro->valid_data = optarg; break;
        case O_SHIFTED: ro->shifted = true; break;
        case O_PRE: ro->pretrained = optarg; break;
        case O_ARCH: ro->arch = optarg; break;
        case O_PS: NUM("--ps", 0, 0.99, &ro->ps);
        case O_RECIPE: ro->recipe = optarg; break;
        case O_SIZES:
            sizes_given = true;
            if (parse_pair(optarg, &ro->sizes[0], &ro->sizes[1]) < 0 || ro->sizes[0] < 32 || ro->sizes[1] < 32 ||
                ro->sizes[0] > 1024 || ro->sizes[1] > 1024) {
                sn_error("--sizes takes two sides A,B from 32 to 1024, not '%s'", optarg);
                return cli_usage_error(verb, usage);
            }
            break;
        case O_SIZE:
            sizes_given = true;
            if (cli_int("--size", optarg, 32, 1024, &ro->sizes[0]) < 0) return cli_usage_error(verb, usage);
            ro->sizes[1] = ro->sizes[0];
            break;
        case O_LR: NUM("--lr", 1e-8, 10, &ro->lr);
        case O_LRS:
            if (sscanf(optarg, "%f,%f,%f", &ro->lrs[0], &ro->lrs[1], &ro->lrs[2]) != 3 || !(ro->lrs[0] > 0) ||
                !(ro->lrs[1] > 0) || !(ro->lrs[2] > 0)) {
                sn_error("--lrs takes three rates A,B,C > 0, not '%s'", optarg);
                return cli_usage_error(verb, usage);
            }
            break;
        case O_LRDIV: NUM("--lr-div", 1, 1000, &ro->lr_div);
        case O_HEADE: INT("--head-epochs", 0, 10000, &ro->head_epochs);
        case O_HEADAE: INT("--head-aug-epochs", 0, 10000, &ro->head_aug_epochs);
        case O_CYC: INT("--cycles", 0, 30, &ro->cycles);
        case O_CYCLEN: INT("--cycle-len", 1, 10000, &ro->cycle_len);
        case O_CYCMULT: INT("--cycle-mult", 1, 100, &ro->cycle_mult);
        case O_RESIZE: INT("--resize-after", 0, 30, &ro->resize_after);
        case O_EPOCHS: INT("--epochs", 1, 100000, &ro->epochs);
        case O_OPT:
            if (optim_parse(optarg, &ro->lo.opt) < 0) return cli_usage_error(verb, usage);
            break;
        case O_WD: NUM("--wd", 0, 10, &ro->lo.wd);
        case O_NOBNWD: ro->lo.bn_wd = false; break;
        case O_FREEZEBN: ro->lo.freeze_bn = true; break;
        case O_SYNCBN: ro->lo.sync_bn = true; break;
        case O_BATCH: INT("--batch", 1, 4096, &ro->lo.batch);
        case O_NOAUG: no_aug = true; break;
        case O_NOCAL: ro->calibrate = false; break;
        case O_TTA: INT("--tta", 0, 64, &ro->tta);
        case O_THRESH: NUM("--thresh", 0, 1, &ro->lo.thresh);
        case O_OUT: a->out = optarg; break;
        case O_RUN: ro->lo.run_dir = optarg; break;
        case O_RESUME: a->resume = 1; break;
        case O_SEED:
            if (cli_seed("--seed", optarg, &ro->lo.seed) < 0) return cli_usage_error(verb, usage);
            break;
        case O_THREADS:
            if (cli_threads(optarg) < 0) return cli_usage_error(verb, usage);
            break;
        case O_JSON: a->json = 1; break;
        case O_QUIET: ro->lo.quiet = true; break;
        case O_STOP: INT("--stop-after", 1, 1000000, &ro->lo.stop_after);
        case O_GROUPCE: NUM("--group-ce", 0, 100, &ro->lo.group_ce);
        case O_MIXUP: NUM("--mixup", 0, 100, &ro->lo.mixup);
        case O_LSMOOTH: NUM("--label-smooth", 0, 0.99, &ro->lo.label_smooth);
        case O_TESTSIZE: INT("--test-size", 32, 1024, &ro->test_size);
        case O_MAXZOOM: NUM("--max-zoom", 1, 10, &ro->lo.aug.max_zoom);
        case O_SPLITSEED:
            if (cli_seed("--split-seed", optarg, &split_seed) < 0) return cli_usage_error(verb, usage);
            ro->split_seed = (int64_t)split_seed;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!a->dso.root || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (no_aug) ro->lo.aug = (aug_opts){0};
    if (a->resume && !ro->lo.run_dir) return cli_fail("--resume needs --run-dir");
    if (a->vpct_given && ro->valid_data) {
        sn_error("--valid-pct and --valid-data: one or the other");
        return cli_usage_error(verb, usage);
    }
    if (a->json) ro->lo.quiet = true;
    if (!strcmp(ro->recipe, "scratch")) ro->pretrained = NULL;
    if (!sizes_given && recipe_default_sizes(ro) < 0) return cli_fail("%s", sn_last_error());
    return -1;
}

/* the final metrics and where the model went */
static void print_results(const cli_train_args *a, const dataset *ds, const classifier *m, const recipe_result *r,
                          double wall) {
    const recipe_opts *ro = &a->ro;
    bool multi = ds->kind == DS_MULTI;
    if (r->plain.n == 0) printf("no validation: every one of the %d photos trained\n", ds->n_items);
    for (int k = 0; r->plain.n > 0 && k < 3; k++) {
        if ((k == 1 && ro->tta <= 0) || (k == 2 && !ro->shifted)) continue;
        const eval_result *e = k == 2 ? &r->shifted : k ? &r->tta : &r->plain;
        printf("%-18s", k == 2 ? "valid shifted:" : k ? "valid with TTA:" : "valid:");
        if (multi) printf(" F2@%.2f %.4f (best %.4f at %.2f)", ro->lo.thresh, e->fbeta, e->best_fbeta, e->best_thresh);
        else printf(" accuracy %.4f", e->accuracy);
        for (int g = 0; g < m->n_groups; g++) printf("  %s %.4f", m->group_names[g], e->group_acc[g]);
        if (m->n_groups) printf("  both %.4f", e->all_right);
        printf("\n");
    }
    printf("model written to %s; training %.1f s, wall time %.1f s\n", a->out, r->seconds, wall);
}

int cmd_train(int argc, char **argv) {
    cli_train_args a = {.ro = recipe_defaults(), .vpct = 0.2f};
    cli_progress prog;
    a.ro.lo.events = cli_progress_init(&prog);
    int st = cli_train_parse(argc, argv, &a, "train", usage);
    if (st >= 0) return st;
    if (!a.out) {
        usage(stderr);
        return 2;
    }
    const recipe_opts *ro = &a.ro;
    const char *out = a.out;
    const int unwritable = dist_rank() == 0 && sn_check_writable(out) < 0; /* rank 0 writes the model */
    if (dist_max_i(unwritable)) return dist_rank() == 0 ? cli_fail("--out %s", sn_last_error()) : 1;
    double t0 = omp_get_wtime();
    if (!a.resume && ro->lo.run_dir && dist_rank() == 0) { /* a fresh run must not pick up an old checkpoint */
        char ck[4096];
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", ro->lo.run_dir);
        remove(ck);
    }
    dist_barrier(); /* under mpirun: no rank looks for a checkpoint before rank 0 has removed it */
    ds_split sp;
    dataset *ds = recipe_open_data(&a.dso, ro, a.vpct, &sp);
    if (!ds) return cli_fail("%s", sn_last_error());
    classifier *m = recipe_model(ds, ro, ro->sizes[0]);
    if (!m) {
        ds_split_free(&sp);
        ds_free(ds);
        return cli_fail("%s", sn_last_error());
    }
    if (!ro->lo.quiet)
        printf("stylenet train: %s, %d images (%d train, %d valid), %d %s classes, %s%s, recipe %s\n", ds->root,
               ds->n_items, sp.n_train, sp.n_valid, ds->n_classes, ds->kind == DS_MULTI ? "multi-label" : "single-label",
               m->arch, ro->pretrained ? " pretrained" : " from scratch", ro->recipe);
    recipe_result r;
    int rc = recipe_run(m, ds, &sp, ro, &r);
    double wall = omp_get_wtime() - t0;
    if (rc == 0 && dist_rank() == 0 && classifier_save(m, out) < 0) rc = -1; /* rank 0 writes */
    /* what `stylenet report` needs besides the history: validation predictions, class names */
    if (rc == 0 && ro->lo.run_dir && predictions_write(ro->lo.run_dir, m, ds, &sp, &ro->lo, out, wall) < 0) rc = -1;
    if (rc == 1) {
        fprintf(stderr, "stylenet: stopped after %d epochs (--stop-after); continue with --resume --run-dir %s\n",
                ro->lo.stop_after, ro->lo.run_dir ? ro->lo.run_dir : "DIR");
    } else if (rc < 0) {
        fprintf(stderr, "stylenet: %s\n", sn_last_error());
    } else if (a.json) {
        cJSON *h = cJSON_Parse(m->history);
        cJSON_AddStringToObject(h, "model", out);
        cJSON_AddNumberToObject(h, "wall_seconds", wall);
        char *s = cJSON_Print(h);
        puts(s);
        free(s);
        cJSON_Delete(h);
    } else {
        print_results(&a, ds, m, &r, wall);
    }
    classifier_free(m);
    ds_split_free(&sp);
    ds_free(ds);
    return rc < 0 ? 1 : rc == 1 ? 3 : 0;
}
