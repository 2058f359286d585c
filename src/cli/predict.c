/* predict.c - `stylenet predict --model M [--labels L] IMAGE...`: top-k classes per image. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "io/image.h"
#include "io/model_file.h"
#include "kernels/loss.h"
#include "train/ensemble.h"
#include "train/metrics.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet predict --model FILE [options] IMAGE...\n"
            "  --model FILE     stylenet model, torchvision state dict (.safetensors, with --arch), or TFLite;\n"
            "                   several --model flags (up to %d): the mean of their probabilities (an ensemble;\n"
            "                   the same classes in the same order, each model at its own size)\n"
            "  --labels FILE    class names, one per line (TFLite and plain state dicts)\n"
            "  --arch NAME      architecture of a plain state dict (resnet18|34|50, mobilenet_v2)\n"
            "  --size N         input side in pixels (default: the model's)\n"
            "  --top K          classes to show per image (default 5)\n"
            "  --batch N        images per forward pass (default 16)\n"
            "  --threads N      CPU threads (default: all cores)\n"
            "  --json           one JSON document on stdout\n",
            ENSEMBLE_MAX);
}

int cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"labels", required_argument, 0, 'l'},
        {"arch", required_argument, 0, 'a'},  {"size", required_argument, 0, 's'},
        {"top", required_argument, 0, 'k'},   {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *paths[ENSEMBLE_MAX];
    sn_model *models[ENSEMBLE_MAX] = {0};
    int n_models = 0;
    model_load_opts lo = {0};
    int top = 5, batch = 16, json = 0, c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:a:s:k:b:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (n_models == ENSEMBLE_MAX) return cli_fail("at most %d --model flags", ENSEMBLE_MAX);
            paths[n_models++] = optarg;
            break;
        case 'l': lo.labels = optarg; break;
        case 'a': lo.arch = optarg; break;
        case 's': bad = cli_int("--size", optarg, 32, 1024, &lo.size); break;
        case 'k': bad = cli_int("--top", optarg, 1, 100000, &top); break;
        case 'b': bad = cli_int("--batch", optarg, 1, 4096, &batch); break;
        case 't': bad = cli_threads(optarg); break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad < 0) return cli_usage_error("predict", usage);
    }
    if (!n_models || optind >= argc) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < n_models; i++) {
        models[i] = model_load(paths[i], &lo);
        if (!models[i] || (i > 0 && ensemble_compatible(models[0], paths[0], models[i], paths[i]) < 0)) {
            int r = cli_fail("%s", sn_last_error());
            for (int j = 0; j <= i; j++) model_free(models[j]);
            return r;
        }
        net_freeze_weights(models[i]->net); /* inference only */
    }
    sn_model *m = models[0];
    if (top > m->n_classes) top = m->n_classes;
    int n_img = argc - optind, failed = 0, S = 0;
    if (batch > n_img) batch = n_img;
    const int K = m->n_classes;
    for (int i = 0; i < n_models; i++) S = models[i]->size > S ? models[i]->size : S;
    bool multi = !strcmp(m->task, "multi");
    float *x = malloc(sizeof(float) * (size_t)batch * S * S * 3), *prob = malloc(sizeof(float) * (size_t)batch * K);
    float *one = malloc(sizeof(float) * (size_t)batch * K);
    image *ims = calloc((size_t)batch, sizeof(image));
    ranked_class *order = malloc(sizeof(ranked_class) * (size_t)K);
    int *ok = malloc(sizeof(int) * (size_t)batch), rc = 0;
    cJSON *doc = json ? cJSON_CreateObject() : NULL, *results = json ? cJSON_AddArrayToObject(doc, "results") : NULL;
    if (json) {
        cJSON_AddStringToObject(doc, "model", paths[0]);
        if (n_models > 1) cJSON_AddItemToObject(doc, "models", cJSON_CreateStringArray(paths, n_models));
    }
    bool batched = true;
    for (int i = 0; i < n_models; i++) batched = batched && net_set_batch(models[i]->net, batch) == 0;
    if (!x || !prob || !one || !ims || !order || !ok || !batched) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (int start = 0; start < n_img; start += batch) {
        int nb = n_img - start < batch ? n_img - start : batch;
        for (int i = 0; i < nb; i++) { /* a failed image leaves a zero input; its result is not shown */
            const char *path = argv[optind + start + i];
            memset(&ims[i], 0, sizeof ims[i]);
            ok[i] = image_load(path, &ims[i]) == 0;
            if (!ok[i]) {
                fprintf(stderr, "stylenet: %s\n", sn_last_error());
                failed++;
            }
        }
        /* each model sees the images at its own size and normalisation; the probabilities are averaged */
        memset(prob, 0, sizeof(float) * (size_t)batch * K);
        bool forward_ok = true;
        for (int k = 0; k < n_models && forward_ok; k++) {
            const sn_model *mk = models[k];
            const int Sk = mk->size;
            for (int i = 0; i < batch; i++) {
                float *xi = x + (size_t)i * Sk * Sk * 3;
                if (i < nb && ok[i] && image_to_input(&ims[i], Sk, mk->mean, mk->std, xi) < 0) {
                    fprintf(stderr, "stylenet: %s\n", sn_last_error());
                    ok[i] = 0;
                    failed++;
                }
                if (i >= nb || !ok[i]) memset(xi, 0, sizeof(float) * Sk * Sk * 3);
            }
            const float *logits = net_forward(mk->net, x, false);
            if (!logits) {
                cli_fail("%s", sn_last_error());
                failed += nb;
                forward_ok = false;
                break;
            }
            if (multi) loss_sigmoid(batch * K, logits, one);
            else loss_softmax(batch, K, logits, one);
            for (size_t j = 0; j < (size_t)batch * K; j++) prob[j] += one[j] / (float)n_models;
        }
        for (int i = 0; i < nb; i++)
            image_free(&ims[i]);
        if (!forward_ok) break;
        for (int i = 0; i < nb; i++) {
            if (!ok[i]) continue;
            const char *path = argv[optind + start + i];
            rank_classes(prob + (size_t)i * K, 0, K, order);
            const float *pr = prob + (size_t)i * K;
            if (json) {
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "image", path);
                if (m->n_groups > 0) { /* grouped tags (Style: brand and product): the best of each */
                    cJSON *gr = cJSON_AddObjectToObject(r, "groups");
                    for (int g = 0; g < m->n_groups; g++) {
                        int b = m->group_lo[g];
                        for (int k = b + 1; k < m->group_hi[g]; k++)
                            if (pr[k] > pr[b]) b = k;
                        cJSON *e = cJSON_AddObjectToObject(gr, m->group_names[g]);
                        cJSON_AddStringToObject(e, "class", m->classes[b]);
                        cJSON_AddNumberToObject(e, "probability", pr[b]);
                    }
                }
                cJSON *arr = cJSON_AddArrayToObject(r, "top");
                for (int k = 0; k < top; k++) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddNumberToObject(e, "index", order[k].idx);
                    cJSON_AddStringToObject(e, "class", m->classes[order[k].idx]);
                    cJSON_AddNumberToObject(e, "probability", order[k].p);
                    cJSON_AddItemToArray(arr, e);
                }
                cJSON_AddItemToArray(results, r);
            } else {
                printf("%s\n", path);
                for (int g = 0; g < m->n_groups; g++) {
                    int b = m->group_lo[g];
                    for (int k = b + 1; k < m->group_hi[g]; k++)
                        if (pr[k] > pr[b]) b = k;
                    printf("  %-10s %-28s %6.2f%%\n", m->group_names[g], m->classes[b], 100 * pr[b]);
                }
                if (m->n_groups > 0) printf("  tags by probability:\n");
                for (int k = 0; k < top; k++)
                    printf("  %d. %-32s %6.2f%%  (class %d)\n", k + 1, m->classes[order[k].idx], 100 * order[k].p,
                           order[k].idx);
            }
        }
    }
    if (json) {
        cJSON_AddNumberToObject(doc, "failed", failed);
        char *s = cJSON_Print(doc);
        if (s) puts(s);
        free(s);
    }
    rc = failed ? 1 : 0;
out:
    cJSON_Delete(doc);
    free(x); free(prob); free(one); free(ims); free(order); free(ok);
    for (int i = 0; i < n_models; i++) model_free(models[i]);
    return rc;
}
