/* test_cli.c - the stylenet binary as a user runs it: predict on the ImageNet check photos with
 * the TFLite MobileNetV2 (text and JSON), info, and the exit codes and messages of misuse: every
 * number flag of every verb takes only a whole number in its range (no trailing junk, no silent 0
 * from "abc"), and a bad one is a usage error (exit 2) naming the flag and the argument. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "../common/check.h"

static char out[1 << 16];

/* runs a shell command line, captures stdout+stderr into out, returns the exit status */
#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

int main(void) {
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    char model[4096], labels[4096], imgs[4096];
    snprintf(model, sizeof model, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels, sizeof labels, "%s", shared_path("weights/imagenet_labels.txt"));
    snprintf(imgs, sizeof imgs, "%s", shared_path("weights/imagenet-check"));

    int rc = run("%s predict --model %s --labels %s %s/bird.png %s/sunflower.png %s/cat.png", bin, model, labels,
                 imgs, imgs, imgs);
    check(rc == 0, "predict exits 0 (%d)", rc);
    char *b = strstr(out, "bird.png"), *s = strstr(out, "sunflower.png"), *c = strstr(out, "cat.png");
    check(b && s && c && b < s && s < c, "one block per image, in argument order");
    check(b && strstr(b, "1. chickadee") && strstr(b, "1. chickadee") < s, "bird.png: top-1 chickadee");
    check(s && strstr(s, "1. daisy") && strstr(s, "1. daisy") < c, "sunflower.png: top-1 daisy");
    check(c && strstr(c, "1. Egyptian cat"), "cat.png: top-1 Egyptian cat");
    check(c && strstr(c, "5. ") && !strstr(c, "6. "), "top-5 by default");

    rc = run("%s predict --json --top 3 --model %s --labels %s %s/bird.png %s/cat.png", bin, model, labels, imgs, imgs);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *res = cJSON_GetObjectItem(doc, "results");
    check(rc == 0 && cJSON_IsArray(res) && cJSON_GetArraySize(res) == 2, "--json: a results array of 2 (rc %d)", rc);
    const cJSON *top = cJSON_GetObjectItem(cJSON_GetArrayItem(res, 1), "top");
    const cJSON *first = cJSON_GetArrayItem(top, 0);
    check(cJSON_GetArraySize(top) == 3, "--top 3 gives 3 classes");
    check(first && !strcmp(cJSON_GetObjectItem(first, "class")->valuestring, "Egyptian cat") &&
          cJSON_GetObjectItem(first, "index")->valueint == 286, "JSON top-1 of cat.png is 286 Egyptian cat");
    double p0 = first ? cJSON_GetObjectItem(first, "probability")->valuedouble : 0;
    double p1 = cJSON_GetArraySize(top) > 1 ? cJSON_GetObjectItem(cJSON_GetArrayItem(top, 1), "probability")->valuedouble : 1;
    check(p0 > 0.5 && p0 <= 1 && p1 <= p0, "probabilities sorted, top-1 %.3f", p0);
    cJSON_Delete(doc);

    rc = run("%s predict --model %s --labels %s %s/bird.png /nonexistent/x.png", bin, model, labels, imgs);
    check(rc == 1 && strstr(out, "/nonexistent/x.png") && strstr(out, "1. chickadee"),
          "a missing image is reported by name, the others still predicted, exit 1");
    rc = run("%s predict --model /nonexistent/m.tflite %s/bird.png", bin, imgs);
    check(rc == 1 && strstr(out, "/nonexistent/m.tflite"), "a missing model: exit 1 naming it");
    rc = run("%s predict --model %s --labels %s %s/bird.png", bin, labels, labels, imgs);
    check(rc == 1 && strstr(out, "imagenet_labels.txt"), "a text file as model: exit 1 naming it: %.200s", out);
    rc = run("%s predict", bin);
    check(rc == 2 && strstr(out, "usage"), "predict without arguments: usage, exit 2");
    rc = run("%s frobnicate", bin);
    check(rc == 2 && strstr(out, "unknown verb"), "unknown verb: exit 2");

    /* number flags: checked before any file is opened, so the paths need not exist */
    static const char *bad[][2] = {
        {"train --data d --out m --batch abc", "--batch"},     {"train --data d --out m --lr 1e-3x", "--lr"},
        {"train --data d --out m --wd -1", "--wd"},            {"train --data d --out m --cycles 2.5", "--cycles"},
        {"train --data d --out m --valid-pct 1", "--valid-pct"}, {"train --data d --out m --seed -1", "--seed"},
        {"train --data d --out m --sizes 128", "--sizes"},     {"train --data d --out m --lrs 1e-4,3e-4", "--lrs"},
        {"train --data d --out m --label-smooth 1", "--label-smooth"}, {"train --data d --out m --ps nan", "--ps"},
        {"train --data d --out m --split-seed 1e3", "--split-seed"}, {"train --data d --out m --threads -2", "--threads"},
        {"eval --model m --data d --tta four", "--tta"},       {"eval --model m --data d --size 8", "--size"},
        {"eval --model m --data d --batch 0", "--batch"},      {"predict --model m --top 0 x.png", "--top"},
        {"predict --model m --size 12345 x.png", "--size"},    {"lr-find --data d --iters 1", "--iters"},
        {"lr-find --data d --wd x", "--wd"},                   {"data --data d --grid-n 0", "--grid-n"},
        {"data --data d --seed 4x", "--seed"},                 {"report rd --top-losses 101", "--top-losses"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = run("%s %s", bin, bad[i][0]);
        check(rc == 2 && strstr(out, bad[i][1]) && strstr(out, "not '") && strstr(out, "usage"),
              "'%s': usage error naming %s, exit 2 (%d): %.120s", bad[i][0], bad[i][1], rc, out);
    }

    rc = run("%s info --labels %s %s", bin, labels, model);
    check(rc == 0 && strstr(out, "mobilenet_v2_tf") && strstr(out, "1001 classes"), "info names the architecture and "
          "classes");
    check(strstr(out, "parameters    3") != NULL, "info counts ~3.5 M parameters: %.400s", out);
    return check_exit();
}
