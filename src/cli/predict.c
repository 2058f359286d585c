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
#include "train/metrics.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stylenet predict --model FILE [options] IMAGE...\n"
            "  --model FILE     stylenet model, torchvision state dict (.safetensors, with --arch), or TFLite\n"
            "  --labels FILE    class names, one per line (TFLite and plain state dicts)\n"
            "  --arch NAME      architecture of a plain state dict (resnet18|34|50, mobilenet_v2)\n"
            "  --size N         input side in pixels (default: the model's)\n"
            "  --top K          classes to show per image (default 5)\n"
            "  --batch N        images per forward pass (default 16)\n"
            "  --threads N      CPU threads (default: all cores)\n"
            "  --json           one JSON document on stdout\n");
}

int cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"labels", required_argument, 0, 'l'},
        {"arch", required_argument, 0, 'a'},  {"size", required_argument, 0, 's'},
        {"top", required_argument, 0, 'k'},   {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model_path = NULL;
    model_load_opts lo = {0};
    int top = 5, batch = 16, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:a:s:k:b:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'l': lo.labels = optarg; break;
        case 'a': lo.arch = optarg; break;
        case 's': lo.size = atoi(optarg); break;
        case 'k': top = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 't': cli_set_threads(atoi(optarg)); break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || optind >= argc || top <= 0 || batch <= 0) {
        usage(stderr);
        return 2;
    }
    sn_model *m = model_load(model_path, &lo);
    if (!m) return cli_fail("%s", sn_last_error());
    if (top > m->n_classes) top = m->n_classes;
    int n_img = argc - optind, failed = 0;
    if (batch > n_img) batch = n_img;
    const int S = m->size, K = m->n_classes;
    bool multi = !strcmp(m->task, "multi");
    float *x = malloc(sizeof(float) * (size_t)batch * S * S * 3), *prob = malloc(sizeof(float) * (size_t)batch * K);
    ranked_class *order = malloc(sizeof(ranked_class) * (size_t)K);
    int *ok = malloc(sizeof(int) * (size_t)batch);
    cJSON *doc = json ? cJSON_CreateObject() : NULL, *results = json ? cJSON_AddArrayToObject(doc, "results") : NULL;
    if (json) cJSON_AddStringToObject(doc, "model", model_path);
    if (!x || !prob || !order || !ok || net_set_batch(m->net, batch) < 0) {
        model_free(m);
        return cli_fail("out of memory");
    }
    for (int start = 0; start < n_img; start += batch) {
        int nb = n_img - start < batch ? n_img - start : batch;
        for (int i = 0; i < nb; i++) { /* a failed image leaves a zero input; its result is not shown */
            image im;
            const char *path = argv[optind + start + i];
            ok[i] = image_load(path, &im) == 0 &&
                    image_to_input(&im, S, m->mean, m->std, x + (size_t)i * S * S * 3) == 0;
            if (!ok[i]) {
                fprintf(stderr, "stylenet: %s\n", sn_last_error());
                memset(x + (size_t)i * S * S * 3, 0, sizeof(float) * S * S * 3);
                failed++;
            }
            if (ok[i]) image_free(&im);
        }
        if (nb < batch) memset(x + (size_t)nb * S * S * 3, 0, sizeof(float) * (size_t)(batch - nb) * S * S * 3);
        const float *logits = net_forward(m->net, x, false);
        if (!logits) {
            cli_fail("%s", sn_last_error());
            failed += nb;
            break;
        }
        if (multi) sigmoid(batch * K, logits, prob);
        else softmax(batch, K, logits, prob);
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
        cJSON_Delete(doc);
    }
    free(x); free(prob); free(order); free(ok);
    model_free(m);
    return failed ? 1 : 0;
}
