/* test_cli.c - the stylenet binary as a user runs it: predict on the ImageNet check photos with
 * the TFLite MobileNetV2 (text and JSON; a folder of photos, --recursive, --batch, --csv, an
 * unreadable photo among them), info (the model named either way), and the exit codes and
 * messages of misuse: every number flag of every verb takes only a whole number in its range (no
 * trailing junk, no silent 0 from "abc"), and a bad one is a usage error (exit 2) naming the flag
 * and the argument. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/check.h"

static char out[1 << 18];
static const char *bin;
static char model[4096], labels[4096], imgs[4096];

/* runs a shell command line, captures stdout+stderr into out, returns the exit status */
#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static void paths(void) {
    bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    snprintf(model, sizeof model, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(labels, sizeof labels, "%s", shared_path("weights/imagenet_labels.txt"));
    snprintf(imgs, sizeof imgs, "%s", shared_path("weights/imagenet-check"));
}

static void predict_text(void) {
    paths();
    int rc = run("%s predict --model %s --labels %s %s/bird.png %s/sunflower.png %s/cat.png", bin, model, labels,
                 imgs, imgs, imgs);
    check(rc == 0, "predict exits 0 (%d)", rc);
    char *b = strstr(out, "bird.png"), *s = strstr(out, "sunflower.png"), *c = strstr(out, "cat.png");
    check(b && s && c && b < s && s < c, "one block per image, in argument order");
    check(b && strstr(b, "1. chickadee") && strstr(b, "1. chickadee") < s, "bird.png: top-1 chickadee");
    check(s && strstr(s, "1. daisy") && strstr(s, "1. daisy") < c, "sunflower.png: top-1 daisy");
    check(c && strstr(c, "1. Egyptian cat"), "cat.png: top-1 Egyptian cat");
    check(c && strstr(c, "5. ") && !strstr(c, "6. "), "top-5 by default");
}

static void predict_json(void) {
    paths();
    int rc = run("%s predict --json --top 3 --model %s --labels %s %s/bird.png %s/cat.png", bin, model, labels, imgs, imgs);
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
}

static void predict_errors(void) {
    paths();
    int rc = run("%s predict --model %s --labels %s %s/bird.png /nonexistent/x.png", bin, model, labels, imgs);
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
}

/* a folder of photos: dir/bird.png, dir/cat.png, dir/sub/sunflower.png, dir/broken.png (text),
 * dir/notes.txt and dir/.hidden.png (neither is a photo to score); dir/empty/ holds nothing */
static bool make_folder(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/stylenet_cli_XXXXXX");
    if (!mkdtemp(dir)) return false;
    char a[4400], b[4400];
    static const char *const copies[][2] = {
        {"bird.png", "bird.png"}, {"cat.png", "cat.png"}, {"sunflower.png", "sub/sunflower.png"}, {"cat.png", ".hidden.png"}};
    snprintf(a, sizeof a, "%s/sub", dir);
    mkdir(a, 0777);
    snprintf(a, sizeof a, "%s/empty", dir);
    mkdir(a, 0777);
    bool ok = true;
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", imgs, copies[i][0]);
        snprintf(b, sizeof b, "%s/%s", dir, copies[i][1]);
        ok &= copy_file(a, b) == 0;
    }
    static const char *const text[] = {"broken.png", "notes.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(b, sizeof b, "%s/%s", dir, text[i]);
        FILE *f = fopen(b, "w");
        ok &= f && fputs("not a photo\n", f) >= 0 && fclose(f) == 0;
    }
    return ok;
}

static void remove_folder(const char *dir) {
    char o[256];
    if (run_capture(o, sizeof o, "rm -rf %s", dir) != 0) note("could not remove %s", dir);
}

static void predict_folder(void) {
    paths();
    char dir[64];
    if (!check(make_folder(dir, sizeof dir), "a folder of photos in /tmp")) return;
    int rc = run("%s predict --model %s --labels %s %s", bin, model, labels, dir);
    char *b = strstr(out, "/bird.png\n"), *c = strstr(out, "/cat.png\n");
    bool ok = rc == 1 && b && c && b < c && strstr(b, "1. chickadee") && strstr(c, "1. Egyptian cat");
    check(ok, "a folder: each photo in it scored, in name order (exit %d) %s", rc, ok ? "" : flat_tail(out, 300));
    ok = strstr(out, "broken.png") && strstr(out, "not a PNG, JPEG or WebP");
    check(ok, "a photo that cannot be read: an error line naming it %s", ok ? "" : flat_tail(out, 300));
    check(!strstr(out, "sunflower") && !strstr(out, "notes.txt") && !strstr(out, "hidden"),
          "without --recursive: not the subfolder's photos; no other files, no hidden ones");
    rc = run("%s predict --recursive --model %s --labels %s %s", bin, model, labels, dir);
    char *s = strstr(out, "/sub/sunflower.png\n");
    check(rc == 1 && s && strstr(s, "1. daisy") && strstr(out, "/cat.png\n") < s,
          "--recursive: the subfolder's photos too, after the folder's own (exit %d)", rc);

    /* --json: one record per photo, the same whatever the batch size */
    cJSON *docs[2];
    const int batches[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        rc = run("%s predict --json --recursive --top 2 --batch %d --model %s --labels %s %s", bin, batches[k], model,
                 labels, dir);
        const char *brace = strchr(out, '{');
        docs[k] = brace ? cJSON_Parse(brace) : NULL;
        const cJSON *res = cJSON_GetObjectItem(docs[k], "results");
        check(rc == 1 && cJSON_GetArraySize(res) == 3 && cJSON_GetNumberValue(cJSON_GetObjectItem(docs[k], "failed")) == 1,
              "--json --batch %d: 3 records and 1 failure (exit %d)", batches[k], rc);
    }
    bool same = true;
    for (int i = 0; i < 3; i++) {
        const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(docs[0], "results"), i);
        const cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(docs[1], "results"), i);
        const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r0, "top"), 0), *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(r1, "top"), 0);
        same &= r0 && r1 && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r0, "image")),
                                    cJSON_GetStringValue(cJSON_GetObjectItem(r1, "image")));
        same &= t0 && t1 && cJSON_GetNumberValue(cJSON_GetObjectItem(t0, "index")) == cJSON_GetNumberValue(cJSON_GetObjectItem(t1, "index")) &&
                fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(t0, "probability")) -
                     cJSON_GetNumberValue(cJSON_GetObjectItem(t1, "probability"))) < 1e-4;
    }
    check(same, "--batch 1 and --batch 2 give the same photos, classes and probabilities");
    cJSON_Delete(docs[0]);
    cJSON_Delete(docs[1]);

    char sub[128];
    snprintf(sub, sizeof sub, "%s/empty", dir);
    rc = run("%s predict --model %s --labels %s %s %s/bird.png", bin, model, labels, sub, dir);
    ok = rc == 1 && strstr(out, "empty") && strstr(out, "no photos") && strstr(out, "1. chickadee");
    check(ok, "a folder without photos: an error naming it, the other photos scored, exit 1 %s",
          ok ? "" : flat_tail(out, 300));
    remove_folder(dir);
}

/* the fields of one CSV line (RFC 4180 quoting) into f[cap][256]; returns the count */
static int csv_fields(const char *line, char f[][256], int cap) {
    int n = 0;
    for (const char *p = line;; p++) {
        size_t k = 0;
        bool quoted = *p == '"';
        if (quoted) p++;
        for (; *p && (quoted ? !(*p == '"' && p[1] != '"') : *p != ','); p++) {
            if (quoted && *p == '"') p++; /* a doubled quote */
            if (n < cap && k < 255) f[n][k++] = *p;
        }
        if (quoted && *p == '"') p++;
        if (n < cap) f[n][k] = 0;
        n++;
        if (*p != ',') return n;
    }
}

static void predict_csv(void) {
    paths();
    char dir[64], csv[128];
    if (!check(make_folder(dir, sizeof dir), "a folder of photos in /tmp")) return;
    snprintf(csv, sizeof csv, "%s/out.csv", dir);
    int rc = run("%s predict --recursive --csv %s --model %s --labels %s %s", bin, csv, model, labels, dir);
    FILE *f = fopen(csv, "r");
    static char line[1 << 16], fields[1010][256], header[1010][256];
    int rows = 0, good = 0, nh = 0;
    bool header_ok = false;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (rows++ == 0) {
            nh = csv_fields(line, header, 1010);
            header_ok = nh == 1003 && !strcmp(header[0], "path") && !strcmp(header[1], "class") &&
                        !strcmp(header[3], "tench, Tinca tinca");
            continue;
        }
        int n = csv_fields(line, fields, 1010);
        /* path, the top class, then the probabilities: they sum to 1 and the top one is the class's */
        double sum = 0, best = -1;
        int arg = -1;
        for (int k = 2; k < n && n == 1003; k++) {
            double p = atof(fields[k]);
            sum += p;
            if (p > best) best = p, arg = k;
        }
        bool known = strstr(fields[0], "bird.png") || strstr(fields[0], "cat.png") || strstr(fields[0], "sunflower.png");
        good += n == 1003 && known && arg > 0 && fabs(sum - 1) < 1e-3 && !strcmp(fields[1], header[arg]);
    }
    if (f) fclose(f);
    check(rc == 1 && header_ok, "--csv: a header row 'path,class,<1001 class names>' (%d fields, exit %d)", nh, rc);
    check(rows == 4 && good == 3, "--csv: one row per photo scored: its path, top class and probabilities (%d of %d)",
          good, rows - 1);
    rc = run("%s predict --csv /nonexistent/dir/out.csv --model %s --labels %s %s/bird.png", bin, model, labels, imgs);
    check(rc == 1 && strstr(out, "/nonexistent/dir/out.csv"), "--csv to a folder that does not exist: exit 1 naming it");
    remove_folder(dir);
}

static void number_flags(void) {
    paths();
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
        int rc = run("%s %s", bin, bad[i][0]);
        check(rc == 2 && strstr(out, bad[i][1]) && strstr(out, "not '") && strstr(out, "usage"),
              "'%s': usage error naming %s, exit 2 (%d): %.120s", bad[i][0], bad[i][1], rc, out);
    }
}

static void info(void) {
    paths();
    int rc = run("%s info --labels %s %s", bin, labels, model);
    check(rc == 0 && strstr(out, "mobilenet_v2_tf") && strstr(out, "1001 classes"), "info names the architecture and "
          "classes");
    check(strstr(out, "parameters    3") != NULL, "info counts ~3.5 M parameters: %.400s", out);
}

static void info_model_flag(void) {
    paths();
    static char positional[1 << 16];
    int rc = run("%s info --json --labels %s %s", bin, labels, model);
    snprintf(positional, sizeof positional, "%s", out);
    int rc2 = run("%s info --json --labels %s --model %s", bin, labels, model);
    check(rc == 0 && rc2 == 0 && !strcmp(out, positional) && strstr(out, "\"mobilenet_v2_tf\""),
          "info --model M says what info M says (exit %d, %d)", rc, rc2);
    rc = run("%s info --model %s %s", bin, model, model);
    check(rc == 2 && strstr(out, "usage"), "info with two models: usage, exit 2");
    rc = run("%s info --json", bin);
    check(rc == 2 && strstr(out, "usage"), "info without a model: usage, exit 2");
    rc = run("%s info --model /nonexistent/m.stn", bin);
    check(rc == 1 && strstr(out, "/nonexistent/m.stn"), "info --model of a missing file: exit 1 naming it");
}

/* every verb that reads photos names the same formats in its --help (one line from cli.h) */
static void photo_formats_help(void) {
    paths();
    static const char *verbs[] = {"train", "eval", "predict", "data", "lr-find", "serve"};
    char first[512] = "";
    for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++) {
        int rc = run("%s %s --help", bin, verbs[i]);
        const char *p = strstr(out, "photos: PNG");
        const char *e = p ? strstr(p, "white\n") : NULL;
        if (i == 0 && p && e) snprintf(first, sizeof first, "%.*s", (int)(e - p), p);
        check(rc == 0 && p && e && strstr(p, "JPEG") && (i == 0 || strncmp(p, first, strlen(first)) == 0),
              "%s --help names the photo formats (PNG, JPEG), the same words as train's", verbs[i]);
    }
}

/* convert: a torch.save checkpoint (zip and legacy) becomes safetensors that Python's reader loads
 * with the same tensors as PyTorch's own safetensors of that state dict; a TFLite model becomes a
 * model file that predicts what the TFLite predicts; a file that is no weights fails by name and
 * leaves nothing behind */
static void convert(void) {
    paths();
    char dir[] = "/tmp/stylenet_convert_XXXXXX";
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    const char *py = getenv("STYLENET_PY") ? getenv("STYLENET_PY") : "python3";
    static const char *pth[] = {"pth_mnv2_zip.pth", "pth_mnv2_legacy.pth"};
    for (int i = 0; i < 2; i++) {
        char in[4096];
        snprintf(in, sizeof in, "%s", fixture_path(pth[i]));
        int rc = run("%s convert %s %s/out%d.safetensors", bin, in, dir, i);
        check(rc == 0, "convert %s exits 0 (%d)", pth[i], rc);
        rc = run("%s -c \"from safetensors.numpy import load_file as L; a = L('%s/out%d.safetensors'); "
                 "b = L('%s'); print('same', len(a), set(a) == set(b) and all((a[k] == b[k]).all() and "
                 "a[k].dtype == b[k].dtype for k in a))\"",
                 py, dir, i, fixture_path("pth_mnv2.safetensors"));
        check(rc == 0 && strstr(out, "same 314 True"),
              "%s as safetensors: Python loads the same 314 tensors, values and dtypes as PyTorch's own (%s)", pth[i],
              flat_tail(out, 120));
    }
    int rc = run("%s convert --labels %s %s %s/tfl.stn", bin, labels, model, dir);
    check(rc == 0, "convert the TFLite model exits 0 (%d)", rc);
    char a[4096] = "", b[4096] = "";
    rc = run("%s predict --model %s --labels %s --top 3 --json %s/bird.png", bin, model, labels, imgs);
    const char *t = strstr(out, "\"top\"");
    if (t) snprintf(a, sizeof a, "%.*s", (int)(strstr(t, "\"model\"") ? strstr(t, "\"model\"") - t : 0), t);
    int rc2 = run("%s predict --model %s/tfl.stn --top 3 --json %s/bird.png", bin, dir, imgs);
    t = strstr(out, "\"top\"");
    if (t) snprintf(b, sizeof b, "%.*s", (int)(strstr(t, "\"model\"") ? strstr(t, "\"model\"") - t : 0), t);
    check(rc == 0 && rc2 == 0 && a[0] && strcmp(a, b) == 0 && strstr(a, "chickadee"),
          "the converted TFLite model (labels included) predicts exactly what the TFLite does (chickadee)");
    rc = run("%s convert %s %s/bad.safetensors", bin, labels, dir);
    check(rc == 1 && strstr(out, labels), "a labels file is no weights: exit 1, the file named (%d: %s)", rc,
          flat_tail(out, 120));
    check(access(dir, F_OK) == 0 && run("test -e %s/bad.safetensors", dir) != 0, "and nothing written");
    run("rm -rf %s", dir);
}

static const test_case cases[] = {
    {"predict_text", predict_text},   {"predict_json", predict_json}, {"predict_errors", predict_errors},
    {"predict_folder", predict_folder}, {"predict_csv", predict_csv}, {"number_flags", number_flags},
    {"info", info},                   {"info_model_flag", info_model_flag},
    {"photo_formats_help", photo_formats_help}, {"convert", convert},
};
TEST_MAIN(cases)
