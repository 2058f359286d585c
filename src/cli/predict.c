/* predict.c - `stylenet predict --model M [--labels L] PHOTO|FOLDER...`: the classes of each photo
 * (classifier/ensemble.h scores them; this prints them, and writes --csv). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "classifier/ensemble.h"
#include "classifier/metrics.h"
#include "cli/cli.h"
#include "core/error.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet predict --model FILE [options] PHOTO|FOLDER...\n"
            "Scores each photo; a folder stands for its photos (.png, .jpg, .jpeg, .webp), in\n"
            "name order.  A photo that cannot be read is reported by name, the others are still scored,\n"
            "and the exit status is then 1.  Probabilities are calibrated by the model's temperature\n"
            "(`stylenet info` shows it; fitted by `train`, or `stylenet calibrate`).\n"
            "  --model FILE     stylenet model, torchvision/EfficientNet-Lite state dict (safetensors or .pth), or TFLite;\n"
            "                   several --model flags (up to %d): the mean of their probabilities (an ensemble;\n"
            "                   the same classes in the same order, each model at its own size)\n"
            "  --labels FILE    class names, one per line (TFLite and plain state dicts)\n"
            "  --arch NAME      architecture of a plain state dict (default: recognised from its parameter names)\n"
            "  --size N         input side in pixels (default: the model's)\n"
            "  --top K          classes to show per image (default 5)\n"
            "  --batch N        images per forward pass (default 16)\n"
            "  --recursive      folders: their subfolders' photos too\n"
            "  --csv FILE       also write FILE: a header row, then per photo its path, the most probable\n"
            "                   class of each label group (or of all classes) and every class's probability\n"
            "  --threads N      CPU threads (default: all cores)\n"
            "  --json           one JSON document on stdout\n",
            ENSEMBLE_MAX);
    fputs(CLI_PHOTO_FORMATS, f);
}

typedef struct {
    const char *paths[ENSEMBLE_MAX];
    int n_models, top, batch, json, recursive;
    const char *csv;
    classifier_load_opts lo;
} predict_args;

/* 0 to run (optind at the first photo), else the exit status (-1: help) */
static int parse(int argc, char **argv, predict_args *a) {
    enum { O_RECURSIVE = 256, O_CSV };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"labels", required_argument, 0, 'l'},
        {"arch", required_argument, 0, 'a'},  {"size", required_argument, 0, 's'},
        {"top", required_argument, 0, 'k'},   {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
        {"recursive", no_argument, 0, O_RECURSIVE}, {"csv", required_argument, 0, O_CSV},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:a:s:k:b:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (a->n_models == ENSEMBLE_MAX) return cli_fail("at most %d --model flags", ENSEMBLE_MAX);
            a->paths[a->n_models++] = optarg;
            break;
        case 'l': a->lo.labels = optarg; break;
        case 'a': a->lo.arch = optarg; break;
        case 's': bad = cli_int("--size", optarg, 32, 1024, &a->lo.size); break;
        case 'k': bad = cli_int("--top", optarg, 1, 100000, &a->top); break;
        case 'b': bad = cli_int("--batch", optarg, 1, 4096, &a->batch); break;
        case 't': bad = cli_threads(optarg); break;
        case 'j': a->json = 1; break;
        case O_RECURSIVE: a->recursive = 1; break;
        case O_CSV: a->csv = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("predict", usage);
    }
    if (!a->n_models || optind >= argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* a photo in the text form: each group's best class, then the top classes */
static void print_photo(const classifier *m, const char *path, const float *pr, const ranked_class *order, int top) {
    printf("%s\n", path);
    for (int g = 0; g < m->n_groups; g++) {
        int b = classifier_group_best(m, g, pr);
        printf("  %-10s %-28s %6.2f%%\n", m->group_names[g], m->classes[b], 100 * pr[b]);
    }
    if (m->n_groups > 0) printf("  tags by probability:\n");
    for (int k = 0; k < top; k++)
        printf("  %d. %-32s %6.2f%%  (class %d)\n", k + 1, m->classes[order[k].idx], 100 * order[k].p, order[k].idx);
}

/* a photo in the JSON form */
static cJSON *photo_json(const classifier *m, const char *path, const float *pr, const ranked_class *order, int top) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "image", path);
    if (m->n_groups > 0) { /* grouped tags (Style: brand and product): the best of each */
        cJSON *gr = cJSON_AddObjectToObject(r, "groups");
        for (int g = 0; g < m->n_groups; g++) {
            int b = classifier_group_best(m, g, pr);
            cJSON *e = cJSON_AddObjectToObject(gr, m->group_names[g]);
            cJSON_AddStringToObject(e, "class", m->classes[b]);
            cJSON_AddNumberToObject(e, "probability", pr[b]);
        }
    }
    cJSON_AddItemToObject(r, "top", classifier_ranked_json(m, order, top));
    return r;
}

/* a CSV field (RFC 4180: quoted when it holds a comma, a quote or a line break) */
static void csv_field(FILE *f, const char *s, bool first) {
    if (!first) fputc(',', f);
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_header(FILE *f, const classifier *m) {
    csv_field(f, "path", true);
    for (int g = 0; g < (m->n_groups ? m->n_groups : 1); g++) csv_field(f, m->n_groups ? m->group_names[g] : "class", false);
    for (int c = 0; c < m->n_classes; c++) csv_field(f, m->classes[c], false);
    fputc('\n', f);
}

static void csv_row(FILE *f, const classifier *m, const char *path, const float *pr) {
    csv_field(f, path, true);
    for (int g = 0; g < (m->n_groups ? m->n_groups : 1); g++) csv_field(f, m->classes[classifier_group_best(m, g, pr)], false);
    for (int c = 0; c < m->n_classes; c++) fprintf(f, ",%.6g", (double)pr[c]);
    fputc('\n', f);
}

/* where the results go: stdout (text, or one JSON document at the end) and the CSV file */
typedef struct {
    const classifier *m;
    int top;
    ranked_class *order;
    cJSON *doc, *results;
    FILE *csv;
} sink;

static void emit(sink *s, const char *path, const float *pr) {
    const classifier *m = s->m;
    metrics_rank_classes(pr, 0, m->n_classes, s->order);
    if (s->results) cJSON_AddItemToArray(s->results, photo_json(m, path, pr, s->order, s->top));
    else print_photo(m, path, pr, s->order, s->top);
    if (s->csv) csv_row(s->csv, m, path, pr);
}

/* scores the photos batch by batch; a photo that cannot be read is reported and counted */
static int score(ensemble *e, const cli_paths *photos, int batch, sink *s, int *failed) {
    const int K = e->members[0]->n_classes;
    image *ims = calloc((size_t)batch, sizeof(image));
    bool *ok = calloc((size_t)batch, sizeof(bool));
    float *probs = malloc(sizeof(float) * (size_t)batch * K);
    int rc = 0;
    if (!ims || !ok || !probs || ensemble_reserve(e, batch) < 0) rc = cli_fail("%s", ims && ok && probs ? sn_last_error() : "out of memory");
    for (int start = 0; rc == 0 && start < photos->n; start += batch) {
        int nb = photos->n - start < batch ? photos->n - start : batch;
        for (int i = 0; i < nb; i++) {
            ok[i] = image_load(photos->v[start + i], &ims[i]) == 0;
            if (!ok[i]) {
                fprintf(stderr, "stylenet: %s\n", sn_last_error());
                (*failed)++;
            }
        }
        if (ensemble_predict(e, ims, ok, nb, probs) < 0) {
            rc = cli_fail("%s", sn_last_error());
            *failed += nb;
        }
        for (int i = 0; i < nb; i++) {
            image_free(&ims[i]);
            if (rc == 0 && ok[i]) emit(s, photos->v[start + i], probs + (size_t)i * K);
        }
    }
    free(ims);
    free(ok);
    free(probs);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    predict_args a = {.top = 5, .batch = 16, .lo = {.infer_only = true}};
    int r = parse(argc, argv, &a);
    if (r) return r < 0 ? 0 : r;
    ensemble *e = ensemble_load(a.paths, a.n_models, &a.lo);
    if (!e) return cli_fail("%s", sn_last_error());
    const classifier *m = e->members[0];
    cli_paths photos;
    int failed = 0, rc = 0;
    if (cli_photos(argv + optind, argc - optind, a.recursive, &photos, &failed) < 0) {
        ensemble_free(e);
        return cli_fail("out of memory listing the photos");
    }
    sink s = {.m = m, .top = a.top < m->n_classes ? a.top : m->n_classes,
              .order = malloc(sizeof(ranked_class) * (size_t)m->n_classes)};
    if (a.json) {
        s.doc = cJSON_CreateObject();
        s.results = cJSON_AddArrayToObject(s.doc, "results");
        cJSON_AddStringToObject(s.doc, "model", a.paths[0]);
        if (e->n > 1) cJSON_AddItemToObject(s.doc, "models", cJSON_CreateStringArray(a.paths, e->n));
    }
    if (!s.order || (a.json && !s.results)) rc = cli_fail("out of memory");
    else if (a.csv && !(s.csv = fopen(a.csv, "w"))) rc = cli_fail("%s: cannot write: %m", a.csv);
    if (rc == 0 && s.csv) csv_header(s.csv, m);
    const bool started = rc == 0;
    if (rc == 0 && photos.n > 0) rc = score(e, &photos, a.batch < photos.n ? a.batch : photos.n, &s, &failed);
    if (s.csv && (ferror(s.csv) | fclose(s.csv)) && rc == 0) rc = cli_fail("%s: write failed (disk full?)", a.csv);
    if (s.results && started) { /* also after a failed batch: what was scored, and the failures */
        cJSON_AddNumberToObject(s.doc, "failed", failed);
        char *t = cJSON_Print(s.doc);
        if (t) puts(t);
        free(t);
    }
    cJSON_Delete(s.doc);
    free(s.order);
    cli_paths_free(&photos);
    ensemble_free(e);
    return rc ? rc : failed ? 1 : 0;
}
