/* test_data_cli.c - `stylenet data` as a user runs it: text and --json on the Style set, the
 * sample grid PNG, bad input with and without --strict, misuse. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "../common/check.h"
#include "io/image.h"

static char out[1 << 18];

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static int num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

int main(void) {
    const char *bin = getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet";
    char style[4096];
    snprintf(style, sizeof style, "%s", shared_path("data/style"));

    int rc = run("%s data --data %s --task multi", bin, style);
    check(rc == 0, "data --task multi exits 0 (%d)", rc);
    check(strstr(out, "images   894") && strstr(out, "style preset"), "text: 894 images, the Style layout recognised");
    check(strstr(out, "Chanel") && strstr(out, "earrings") && strstr(out, "brand") && strstr(out, "product"),
          "text: tags with their groups");
    check(strstr(out, "715 train, 179 valid") && strstr(out, "fewer than 10 images"),
          "text: split counts and the rare-class line");

    rc = run("%s data --data %s --task combo --json", bin, style);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *classes = cJSON_GetObjectItem(doc, "classes"), *rare = cJSON_GetObjectItem(doc, "rare_classes");
    check(rc == 0 && doc && num(doc, "images") == 894 && cJSON_GetArraySize(classes) == 62,
          "--json combo: 894 images, 62 classes (rc %d)", rc);
    int sum = 0, bad = 0, n_rare = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        sum += num(c, "total");
        bad += num(c, "train") + num(c, "valid") != num(c, "total");
        n_rare += num(c, "total") < 10;
    }
    check(sum == 894 && bad == 0 && num(doc, "train") + num(doc, "valid") == 894,
          "--json: per-class train + valid = total, summing to 894");
    check(cJSON_GetArraySize(rare) == n_rare && n_rare > 0, "--json: rare_classes lists the %d classes under 10 images",
          n_rare);
    cJSON_Delete(doc);

    rc = run("%s data --data %s --task multi --json --seed 3 --valid-pct 0.25", bin, style);
    doc = cJSON_Parse(out);
    classes = cJSON_GetObjectItem(doc, "classes");
    sum = 0;
    cJSON_ArrayForEach(c, classes) sum += num(c, "total");
    const cJSON *split = cJSON_GetObjectItem(doc, "split");
    check(rc == 0 && cJSON_GetArraySize(classes) == 17 && sum == 2 * 894 && num(doc, "valid") == 224 &&
              num(split, "seed") == 3 && cJSON_IsTrue(cJSON_GetObjectItem(split, "stratified")),
          "--json multi: 17 tags, every image counted twice (brand + product), --valid-pct 0.25 -> 224");
    const cJSON *first = cJSON_GetArrayItem(classes, 0), *last = cJSON_GetArrayItem(classes, 16);
    check(first && last && !strcmp(cJSON_GetObjectItem(first, "group")->valuestring, "brand") &&
              !strcmp(cJSON_GetObjectItem(last, "group")->valuestring, "product"),
          "--json: groups tell brand tags from product tags");
    cJSON_Delete(doc);

    char tmp[] = "/tmp/stylenet_cli_XXXXXX", grid[600];
    if (!check(mkdtemp(tmp) != NULL, "temp folder")) return check_exit();
    snprintf(grid, sizeof grid, "%s/grid.png", tmp);
    rc = run("%s data --data %s --task combo --grid %s --grid-n 6 --size 64", bin, style, grid);
    image g;
    int r = image_load(grid, &g);
    /* 3 columns x 2 rows of 64 px cells + 4 px padding, and 4 label lines of 9 px under each */
    check(rc == 0 && r == 0 && g.w == 3 * 68 + 4 && g.h == 2 * (64 + 36 + 4) + 4,
          "--grid writes a PNG of 6 labelled samples (%dx%d)", r == 0 ? g.w : 0, r == 0 ? g.h : 0);
    if (r == 0) {
        long dark = 0; /* label text was drawn under the first cell */
        for (int y = 4 + 64; y < 4 + 64 + 36; y++)
            for (int x = 4; x < 68; x++) dark += g.rgb[((size_t)y * g.w + x) * 3] < 64;
        check(dark > 20, "labels drawn under the images (%ld dark pixels)", dark);
        image_free(&g);
    }

    /* bad input: skipped and reported by default, fatal with --strict */
    char d[700], cmd[1600];
    snprintf(d, sizeof d, "%s/set", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/a %s/b && cp %s/0_0_001.png %s/0_0_002.png %s/a/ && "
             "cp %s/1_1_001.png %s/1_1_002.png %s/b/ && : > %s/b/zero.png", d, d, style, style, d, style, style, d, d);
    if (system(cmd) != 0) note("setup failed: %s", cmd);
    rc = run("%s data --data %s --valid-pct 0", bin, d);
    check(rc == 0 && strstr(out, "images   4 (1 bad input skipped)") && strstr(out, "zero.png") &&
              strstr(out, "empty file"),
          "a zero-byte image is skipped, counted and named: %.300s", out);
    rc = run("%s data --data %s --strict", bin, d);
    check(rc == 1 && strstr(out, "zero.png") && strstr(out, "empty file"), "--strict: exit 1 naming it: %.200s", out);
    rc = run("%s data --data %s/nope", bin, tmp);
    check(rc == 1 && strstr(out, "nope") && strstr(out, "no such folder"), "missing folder: exit 1 naming it");
    rc = run("%s data", bin);
    check(rc == 2 && strstr(out, "usage"), "data without --data: usage, exit 2");
    rc = run("%s data --data %s --task colour", bin, style);
    check(rc == 1 && strstr(out, "colour") && strstr(out, "brand, product, multi, combo"),
          "an unknown task lists the known ones: %.200s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) note("could not remove %s", tmp);
    return check_exit();
}
