/* recipe.c - models for transfer learning and the training recipes (see recipe.h). */
#include "train/recipe.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "classifier/metrics.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "io/state.h"
#include "io/model_file.h"
#include "io/tflite_net.h"
#include "models/zoo.h"
#include "train/evaluate.h"

recipe_opts recipe_defaults(void) {
    recipe_opts o = {.recipe = "seed", .arch = NULL, .pretrained = NULL, .sizes = {104, 128}, .lr = 0,
                     .lrs = {1e-4f, 3e-4f, 1e-3f}, .lr_div = 0, .head_epochs = 2, .head_aug_epochs = 1, .cycles = 5, .cycle_len = 1,
                     .cycle_mult = 2, .resize_after = 3, .epochs = 5, .ps = 0.25f, .tta = 4, .split_seed = -1,
                     .calibrate = true};
    o.lo = learner_defaults();
    aug_shift_preset(&o.lo.aug); /* photos in the wild: measured by cross-validation (README) */
    return o;
}

uint64_t recipe_split_seed(const recipe_opts *o) {
    return o->split_seed >= 0 ? (uint64_t)o->split_seed : o->lo.seed;
}

/* the photos of folder dir as the validation share of ds, read with ds's classes, task and pattern */
static int add_valid_data(dataset *ds, const ds_options *dso, const char *dir) {
    const char **gn = malloc(sizeof(char *) * (size_t)ds->n_groups);
    char source[4200];
    snprintf(source, sizeof source, "the training data %s", ds->root);
    if (!gn) return sn_error("out of memory");
    ds_scheme s = ds_scheme_of(ds, gn, source);
    ds_options vo = *dso;
    vo.root = dir;
    vo.scheme = &s;
    vo.valid_list = NULL;
    dataset *v = ds_open(&vo);
    int r = v ? ds_append_valid(ds, v) : -1;
    ds_free(v);
    free(gn);
    return r < 0 ? sn_error_prefix("--valid-data") : 0;
}

dataset *recipe_open_data(const ds_options *dso, const recipe_opts *o, float valid_pct, ds_split *sp) {
    memset(sp, 0, sizeof *sp);
    dataset *ds = ds_open(dso);
    if (!ds) return NULL;
    ds_decode_opts dd = {.max_side = o->sizes[1] > o->sizes[0] ? o->sizes[1] : o->sizes[0]};
    if (o->test_size > dd.max_side) dd.max_side = o->test_size;
    dd.max_side = dd.max_side * 5 / 4; /* zoom and rotation read a little outside the crop */
    if ((o->valid_data && add_valid_data(ds, dso, o->valid_data) < 0) || ds_decode(ds, &dd) < 0) {
        ds_free(ds);
        return NULL;
    }
    for (int i = 0; i < ds->n_problems && i < 10; i++) learner_message(&o->lo, LEARNER_WARNING, "skipped: %s", ds->problems[i]);
    int r = valid_pct == 0 && !o->valid_data ? ds_split_all(ds, false, sp)
                                             : ds_make_split(ds, recipe_split_seed(o), valid_pct, true, sp);
    if (r < 0) {
        ds_free(ds);
        return NULL;
    }
    return ds;
}

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* the architecture of a run into buf: o->arch, checked against the pretrained weights' own (TFLite:
 * mobilenet_v2_tf; a stylenet model's metadata; a state dict's parameter names), else theirs, else
 * resnet34.  With fp, *fp gets the open weights file (NULL for TFLite or none).  -1 on error */
static int run_arch(const recipe_opts *o, st_file **fp, char *buf, size_t n) {
    const char *arch = o->arch;
    const bool tflite = o->pretrained && tflite_is_file(o->pretrained);
    if (tflite) arch = "mobilenet_v2_tf";
    st_file *f = NULL;
    if (o->pretrained && !tflite) {
        if (!(f = weights_open_st(o->pretrained))) return -1;
        const char *march = st_meta(f, "arch");
        if (!march) march = model_file_guess_arch(f);
        if (march && arch && strcmp(march, arch) != 0) {
            sn_error("%s: a %s model, but the architecture asked for is %s", o->pretrained, march, arch);
            st_close(f);
            return -1;
        }
        if (!arch) arch = march;
    }
    snprintf(buf, n, "%s", arch ? arch : "resnet34");
    if (fp) *fp = f;
    else st_close(f);
    return 0;
}

int recipe_default_sizes(recipe_opts *o) {
    char arch[64];
    if (run_arch(o, NULL, arch, sizeof arch) < 0) return -1;
    const bool lite = !strncmp(arch, "efficientnet_lite", 17);
    o->sizes[0] = lite ? 128 : 104;
    o->sizes[1] = lite ? 160 : 128;
    return 0;
}

classifier *recipe_model(const dataset *ds, const recipe_opts *o, int size) {
    char arch[64];
    st_file *f = NULL; /* pretrained weights by name */
    if (run_arch(o, &f, arch, sizeof arch) < 0) return NULL;
    const bool tflite = o->pretrained && !f;
    classifier *m = calloc(1, sizeof *m);
    if (!m) {
        sn_error("out of memory for a model");
        st_close(f);
        return NULL;
    }
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    snprintf(m->head, sizeof m->head, "fastai");
    snprintf(m->task, sizeof m->task, "%s", ds->kind == DS_MULTI ? "multi" : "single");
    snprintf(m->source, sizeof m->source, "stylenet");
    m->head_ps = o->ps;
    m->head_lin_ftrs = 512;
    m->size = size;
    m->threshold = o->lo.thresh;
    m->temperature = 1;
    if (!strcmp(arch, "mobilenet_v2_tf")) {
        for (int c = 0; c < 3; c++) m->mean[c] = m->std[c] = 0.5f;
    } else if (!strncmp(arch, "efficientnet_lite", 17)) { /* TF lite preprocessing: (x - 127) / 128 */
        for (int c = 0; c < 3; c++) m->mean[c] = 127.0f / 255, m->std[c] = 128.0f / 255;
    } else {
        memcpy(m->mean, imagenet_mean, sizeof m->mean);
        memcpy(m->std, imagenet_std, sizeof m->std);
    }
    m->n_classes = ds->n_classes;
    m->classes = calloc((size_t)ds->n_classes, sizeof(char *));
    if (!m->classes) goto oom;
    for (int c = 0; c < ds->n_classes; c++)
        if (!(m->classes[c] = strdup(ds->classes[c]))) goto oom;
    if (ds->n_groups > 1 && ds->n_groups <= 8) {
        int g = -1;
        for (int c = 0; c < ds->n_classes; c++) {
            if (c == 0 || ds->group[c] != ds->group[c - 1]) {
                if (++g >= 8) break;
                snprintf(m->group_names[g], sizeof m->group_names[g], "%s", ds->group_names[ds->group[c]]);
                m->group_lo[g] = c;
            }
            m->group_hi[g] = c + 1;
        }
        m->n_groups = g + 1 == ds->n_groups ? g + 1 : 0; /* only contiguous groups */
    }
    model_opts mo = model_default_opts();
    mo.in_h = mo.in_w = size;
    mo.head = MODEL_HEAD_FASTAI;
    mo.ps = o->ps;
    mo.seed = o->lo.seed;
    m->net = model_build(arch, ds->n_classes, &mo);
    if (!m->net) goto fail;
    if (o->pretrained) {
        if (tflite) {
            if (net_load_tflite_body(m->net, o->pretrained) < 0) goto fail;
        } else {
            /* a body from any classifier: its own head is skipped, ours keeps its init */
            net_load_opts lo = {.allow_missing = "head.", .ignore_extra = "fc.,_fc.,classifier.,head."};
            int r = net_load_st(m->net, f, &lo);
            st_close(f);
            f = NULL;
            if (r < 0) goto fail;
        }
    }
    return m;
oom:
    sn_error("out of memory for a model of %d classes", ds->n_classes);
fail:
    st_close(f);
    classifier_free(m);
    return NULL;
}

void recipe_add_result(cJSON *o, const char *key, const char *loss_key, const eval_result *r, bool multi,
                       char *const *group_names) {
    cJSON *e = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(e, loss_key, r->loss);
    if (multi) {
        cJSON_AddNumberToObject(e, "fbeta", r->fbeta);
        cJSON_AddNumberToObject(e, "best_thresh", r->best_thresh);
        cJSON_AddNumberToObject(e, "best_fbeta", r->best_fbeta);
    } else {
        cJSON_AddNumberToObject(e, "accuracy", r->accuracy);
    }
    for (int g = 0; g < r->n_groups; g++) cJSON_AddNumberToObject(e, group_names[g], r->group_acc[g]);
    if (r->n_groups) cJSON_AddNumberToObject(e, "all_right", r->all_right);
}

double recipe_lr_find(learner *l, classifier *m, const recipe_opts *o, bool unfrozen, int size, double start,
                      double end, int n, const char *png, lr_find_info *info) {
    net_freeze_groups(m->net, unfrozen ? 0 : 2);
    net_freeze_bn(m->net, 2, !unfrozen || o->lo.freeze_bn);
    return learner_lr_find_info(l, size, start, end, n, png, info);
}

/* the trained model alone on the shifted stress version of the validation photos, as eval scores it */
static int score_shifted(classifier *m, dataset *ds, const ds_split *split, const recipe_opts *o, eval_result *r) {
    ensemble one = {.n = 1, .members = {m}, .paths = {"the trained model"}};
    evaluation ev;
    int rc = evaluate_shifted(&one, ds, split, &o->lo, 0, &ev);
    if (rc == 0) *r = ev.mean;
    evaluate_free(&ev);
    return rc;
}

/* the model remembers how it was made: the recipe, the data, the results and the epochs (m->history) */
static int record_history(const learner *l, classifier *m, const dataset *ds, const ds_split *split,
                          const recipe_opts *o, double lr, int train_size, int test_size, const recipe_result *res) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return sn_error("out of memory");
    cJSON_AddStringToObject(h, "recipe", o->recipe);
    cJSON_AddStringToObject(h, "pretrained", o->pretrained ? o->pretrained : "none");
    cJSON_AddStringToObject(h, "data", ds->root);
    cJSON_AddStringToObject(h, "task", ds->task ? ds->task : "");
    if (ds->pattern) cJSON_AddStringToObject(h, "pattern", ds->pattern); /* eval reads folders of photos with it */
    if (o->valid_data) cJSON_AddStringToObject(h, "valid_data", o->valid_data);
    cJSON_AddNumberToObject(h, "seed", (double)o->lo.seed);
    cJSON_AddNumberToObject(h, "split_seed", (double)recipe_split_seed(o));
    cJSON_AddNumberToObject(h, "lr", lr);
    if (o->lo.label_smooth > 0) { /* as given (0.1, not the float's 0.10000000149) */
        char ls[32];
        snprintf(ls, sizeof ls, "%g", o->lo.label_smooth);
        cJSON_AddNumberToObject(h, "label_smooth", atof(ls));
    }
    if (aug_shift_enabled(&o->lo.aug)) { /* the shift augmentations, as their flags */
        char flags[1024];
        aug_shift_describe(&o->lo.aug, flags, sizeof flags);
        cJSON_AddStringToObject(h, "shift_aug", flags);
    }
    cJSON_AddNumberToObject(h, "train_size", train_size);
    cJSON_AddNumberToObject(h, "test_size", test_size);
    cJSON_AddNumberToObject(h, "train_images", split->n_train);
    cJSON_AddNumberToObject(h, "valid_images", split->n_valid);
    cJSON_AddNumberToObject(h, "seconds", res->seconds);
    if (split->n_valid > 0)
        recipe_add_result(h, "valid", "valid_loss", &res->plain, ds->kind == DS_MULTI, ds->group_names);
    if (res->cal[1].temperature > 0) {
        cJSON *c = cJSON_AddObjectToObject(h, "calibration");
        cJSON_AddNumberToObject(c, "temperature", res->cal[1].temperature);
        cJSON_AddNumberToObject(c, "ece_uncalibrated", res->cal[0].ece);
        cJSON_AddNumberToObject(c, "ece", res->cal[1].ece);
        cJSON_AddNumberToObject(c, "nll_uncalibrated", res->cal[0].nll);
        cJSON_AddNumberToObject(c, "nll", res->cal[1].nll);
    }
    if (split->n_valid > 0 && o->tta > 0)
        recipe_add_result(h, "valid_tta", "valid_loss", &res->tta, ds->kind == DS_MULTI, ds->group_names);
    if (split->n_valid > 0 && o->shifted)
        recipe_add_result(h, "valid_shifted", "valid_loss", &res->shifted, ds->kind == DS_MULTI, ds->group_names);
    char *hist = learner_history_json(l);
    if (hist) cJSON_AddItemToObject(h, "epochs", cJSON_Parse(hist));
    free(hist);
    free(m->history);
    m->history = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return m->history ? 0 : sn_error("out of memory");
}

int recipe_run(classifier *m, dataset *ds, const ds_split *split, const recipe_opts *o, recipe_result *res) {
    memset(res, 0, sizeof *res);
    learner *l = learner_create(m, ds, split, &o->lo);
    if (!l) return -1;
    int rc = -1;
    if (learner_resume(l) < 0) goto done;
    const int s0 = o->sizes[0], s1 = o->sizes[1] > 0 ? o->sizes[1] : s0;
    const bool scratch = !strcmp(o->recipe, "scratch");
    double lr = o->lr;
    if (!(lr > 0) && !learner_get_note(l, "lr", &lr)) {
        char png[4096];
        if (o->lo.run_dir) snprintf(png, sizeof png, "%s/lr_find.png", o->lo.run_dir);
        lr = recipe_lr_find(l, m, o, scratch, s0, 1e-7, 10, 100, o->lo.run_dir ? png : NULL, NULL);
        if (lr < 0) {
            rc = -1;
            goto done;
        }
        if (lr > 1e-1) lr = 1e-1;
        if (lr < 1e-5) lr = 1e-5;
        learner_message(&o->lo, LEARNER_NOTE, "lr_find: suggested learning rate %.3g", lr);
    }
    learner_set_note(l, "lr", lr);
    res->lr = lr;
    /* rates of the unfrozen phases: explicit (the default, 1e-4, 3e-4, 1e-3: a pretrained body,
     * batch norm folded or not, moves little), or lr/div^2, lr/div, lr from the head's rate */
    float diff[3];
    if (o->lr_div > 0) {
        float d = o->lr_div;
        diff[0] = (float)(lr / (d * d));
        diff[1] = (float)(lr / d);
        diff[2] = (float)lr;
    } else {
        memcpy(diff, o->lrs, sizeof diff);
    }
    if (!strcmp(o->recipe, "seed")) {
        phase head = {.name = "head", .epochs = o->head_epochs, .size = s0, .frozen = true, .augment = false,
                      .sched = SCHED_SGDR, .cycle_len = 1, .cycle_mult = 1, .lrs = {(float)lr, (float)lr, (float)lr}};
        phase head_aug = head;
        head_aug.name = "head+aug";
        head_aug.epochs = o->head_aug_epochs;
        head_aug.augment = true;
        int first = o->resize_after < o->cycles ? o->resize_after : o->cycles;
        phase all0 = {.name = "all", .size = s0, .frozen = false, .augment = true, .sched = SCHED_SGDR,
                      .cycles = first, .cycle_len = o->cycle_len, .cycle_mult = o->cycle_mult};
        memcpy(all0.lrs, diff, sizeof diff);
        phase all1 = all0;
        int len1 = o->cycle_len;
        for (int c = 0; c < first; c++) len1 *= o->cycle_mult;
        all1.cycles = o->cycles - first;
        all1.cycle_len = len1;
        all1.size = s1;
        if (o->head_epochs > 0 && (rc = learner_fit(l, &head)) != 0) goto done;
        if (o->head_aug_epochs > 0 && (rc = learner_fit(l, &head_aug)) != 0) goto done;
        if (all0.cycles > 0 && (rc = learner_fit(l, &all0)) != 0) goto done;
        if (all1.cycles > 0 && (rc = learner_fit(l, &all1)) != 0) goto done;
    } else if (!strcmp(o->recipe, "fine-tune")) {
        phase head = {.name = "head", .epochs = 1, .size = s0, .frozen = true, .augment = true, .sched = SCHED_ONECYCLE,
                      .lrs = {(float)lr, (float)lr, (float)lr}};
        phase all = {.name = "all", .epochs = o->epochs, .size = s1, .frozen = false, .augment = true,
                     .sched = SCHED_ONECYCLE, .lrs = {diff[0] / 2, diff[1] / 2, diff[2] / 2}};
        if ((rc = learner_fit(l, &head)) != 0 || (rc = learner_fit(l, &all)) != 0) goto done;
    } else if (scratch) {
        phase all = {.name = "scratch", .epochs = o->epochs, .size = s1, .frozen = false, .augment = true,
                     .sched = SCHED_ONECYCLE, .lrs = {(float)lr, (float)lr, (float)lr}};
        if ((rc = learner_fit(l, &all)) != 0) goto done;
    } else {
        sn_error("unknown recipe '%s' (seed, fine-tune, scratch)", o->recipe);
        rc = -1;
        goto done;
    }
    rc = -1;
    const int st = o->test_size > 0 ? o->test_size : s1; /* scored (and later used) at st */
    m->size = st;
    if (o->calibrate && split->n_valid > 0) {
        if (recipe_calibrate(l, m, ds, split, st, res->cal) < 0) goto done;
        learner_message(&o->lo, LEARNER_NOTE, "calibration: temperature %.3f, ECE %.4f -> %.4f, NLL %.4f -> %.4f",
                        res->cal[1].temperature, res->cal[0].ece, res->cal[1].ece, res->cal[0].nll, res->cal[1].nll);
    }
    const bool scored = split->n_valid > 0;
    if (scored && learner_validate(l, st, 0, &res->plain, NULL) < 0) goto done;
    if (scored && o->tta > 0 && learner_validate(l, st, o->tta, &res->tta, NULL) < 0) goto done;
    if (scored && o->shifted && score_shifted(m, ds, split, o, &res->shifted) < 0) goto done;
    res->seconds = learner_seconds(l);
    if (record_history(l, m, ds, split, o, lr, s1, st, res) < 0) goto done;
    rc = 0;
done:
    learner_free(l);
    return rc;
}

int recipe_calibrate(learner *l, classifier *m, const dataset *ds, const ds_split *split, int size,
                     calibration_stats cal[2]) {
    const int n = split->n_valid, C = m->n_classes;
    float *logits = malloc(sizeof(float) * ((size_t)n * C + 1));
    const uint8_t **hot = malloc(sizeof(uint8_t *) * ((size_t)n + 1));
    int rc = -1;
    eval_result r;
    if (!logits || !hot) {
        sn_error("out of memory calibrating on %d photos", n);
        goto done;
    }
    m->temperature = 1;
    if (learner_validate_logits(l, size, 0, &r, NULL, logits) < 0) goto done;
    for (int i = 0; i < n; i++) hot[i] = ds_hot(ds, split->valid[i]);
    const double T = (float)calibration_fit(n, C, logits, hot, classifier_is_multi(m)); /* as the model keeps it */
    if (calibration_measure(m, n, logits, hot, 1, METRICS_ECE_BINS, &cal[0]) < 0 ||
        calibration_measure(m, n, logits, hot, T, METRICS_ECE_BINS, &cal[1]) < 0)
        goto done;
    m->temperature = (float)T;
    rc = 0;
done:
    free(logits);
    free(hot);
    return rc;
}
