/* test_install.c - `make install` and a program built against the installed tree.
 *
 * The build this test belongs to (the folder above tests/) is installed into a temporary PREFIX
 * with the Makefile's install-built (what `make install` runs after building), and with DESTDIR
 * into a staging folder.  Cases:
 *   - layout: the program, libstylenet.so -> .so.MAJOR -> .so.X.Y.Z with its soname, the header,
 *     stylenet.pc; the shared library exports the public API and nothing else;
 *   - example: examples/predict_json.c compiled with cc and `pkg-config --cflags --libs stylenet`
 *     run on a Style photo (PNG, and the same pixels as lossless WebP) with a Style model trained
 *     here in seconds, gives every class's probability and each group's best class as
 *     `stylenet predict --json` does; `stylenet predict FOLDER` takes the folder's .webp photo;
 *   - destdir: DESTDIR stages the files under it while stylenet.pc names the final PREFIX;
 *     PKG_CONFIG_SYSROOT_DIR finds the staged header and library and the example compiles;
 *   - uninstall removes what install put there. */
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "../common/check.h"
#include "../common/webp_fixture.h"
#include "core/error.h"
#include "io/image.h"
#include "stylenet.h"

#if defined(__SANITIZE_ADDRESS__)
#define SAN_FLAGS "-fsanitize=address,undefined"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN_FLAGS "-fsanitize=address,undefined"
#endif
#endif
#ifndef SAN_FLAGS
#define SAN_FLAGS ""
#endif

static char out[1 << 18];
static char repo[PATH_MAX], build[PATH_MAX], tmp[64], prefix[128];
static int ready; /* 0 not yet, 1 installed, -1 failed */

#define run(...) run_capture(out, sizeof out, __VA_ARGS__)

static bool exists(const char *path) {
    struct stat s;
    return lstat(path, &s) == 0;
}

/* the repository (the folder holding examples/) and this build's folder (three above this binary) */
static bool find_trees(void) {
    char ex[PATH_MAX], exe[PATH_MAX];
    if (!find_repo_dir("examples", ex, sizeof ex) || !realpath(ex, repo)) return false;
    *strrchr(repo, '/') = 0;
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return false;
    exe[k] = 0;
    snprintf(build, sizeof build, "%s", dirname(dirname(dirname(exe)))); /* BUILD/tests/api/test_install */
    return true;
}

/* installs into tmp/prefix once; false when that failed */
static bool installed(void) {
    if (ready) return ready > 0;
    ready = -1;
    snprintf(tmp, sizeof tmp, "/tmp/stylenet_install_XXXXXX");
    if (!check(mkdtemp(tmp) != NULL && find_trees(), "temp folder, repository and build folder found")) return false;
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    int rc = run("make -s --no-print-directory -C %s BUILD=%s PREFIX=%s install-built", repo, build, prefix);
    if (!check(rc == 0, "make install-built PREFIX=%s (build %s)%s%s", prefix, build, rc ? ": " : "",
               rc ? flat_tail(out, 400) : ""))
        return false;
    ready = 1;
    return true;
}

static void case_layout(void) {
    if (!installed()) return;
    char p[PATH_MAX], target[PATH_MAX];
    const char *files[] = {"bin/stylenet", "include/stylenet.h", "lib/pkgconfig/stylenet.pc",
                           ("lib/libstylenet.so." STYLENET_VERSION_STRING)};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", prefix, files[i]);
        check(exists(p), "installed %s", files[i]);
    }
    char soname[64];
    snprintf(soname, sizeof soname, "libstylenet.so.%d", STYLENET_VERSION_MAJOR);
    const char *links[][2] = {{"libstylenet.so", soname}, {soname, "libstylenet.so." STYLENET_VERSION_STRING}};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/lib/%s", prefix, links[i][0]);
        ssize_t k = readlink(p, target, sizeof target - 1);
        if (k > 0) target[k] = 0;
        check(k > 0 && !strcmp(target, links[i][1]), "%s -> %s", links[i][0], k > 0 ? target : "(no link)");
    }
    int rc = run("readelf -d %s/lib/libstylenet.so | grep SONAME", prefix);
    char want[80];
    snprintf(want, sizeof want, "[%s]", soname);
    check(rc == 0 && strstr(out, want), "soname %s: %s", soname, flat_tail(out, 120));
    rc = run("nm -D --defined-only %s/lib/libstylenet.so | awk '$2 ~ /^[TDBR]$/ {print $3}'", prefix);
    int api = 0, other = 0;
    char first_other[128] = "";
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "stylenet_", 9)) api++;
        else if (!other++) snprintf(first_other, sizeof first_other, "%s", line);
    }
    check(rc == 0 && api >= 15 && other == 0, "the library exports the %d API functions and nothing else (%d others%s%s)",
          api, other, other ? ", e.g. " : "", first_other);
    rc = run("%s/bin/stylenet --help", prefix);
    check(rc == 0 && strstr(out, "predict"), "the installed program runs");
}

/* the example's and the CLI's answers for the photos: every class's probability within 1e-5 and
 * each group's class the same */
static void compare(const cJSON *ex, const cJSON *cli, const char *what) {
    const cJSON *er = cJSON_GetObjectItem(ex, "results"), *cr = cJSON_GetObjectItem(cli, "results");
    int n = cJSON_GetArraySize(er), same_groups = 1, classes = 0;
    double worst = 0;
    for (int i = 0; i < n && i < cJSON_GetArraySize(cr); i++) {
        const cJSON *e = cJSON_GetArrayItem(er, i), *c = cJSON_GetArrayItem(cr, i);
        const cJSON *probs = cJSON_GetObjectItem(e, "probabilities");
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "top")) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(t, "class"));
            const cJSON *p = name ? cJSON_GetObjectItem(probs, name) : NULL;
            double d = p ? fabs(cJSON_GetNumberValue(p) - cJSON_GetNumberValue(cJSON_GetObjectItem(t, "probability"))) : 1;
            worst = fmax(worst, d);
            classes++;
        }
        const cJSON *g;
        cJSON_ArrayForEach(g, cJSON_GetObjectItem(c, "groups")) {
            const cJSON *eg = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "groups"), g->string);
            const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(eg, "class"));
            const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(g, "class"));
            same_groups &= a && b && !strcmp(a, b);
        }
    }
    check(n > 0 && n == cJSON_GetArraySize(cr) && classes > 0 && worst <= 1e-5 && same_groups,
          "%s: %d photos, %d class probabilities as `stylenet predict --json` (worst |dp| %.2g), the same class per group",
          what, n, classes, worst);
}

static void case_example(void) {
    if (!installed()) return;
    char pc[256], flags[2048] = "", photo[PATH_MAX], webp_path[256], model[256], data[PATH_MAX], weights[PATH_MAX];
    snprintf(pc, sizeof pc, "%s/lib/pkgconfig", prefix);
    int rc = run("PKG_CONFIG_PATH=%s pkg-config --cflags --libs stylenet", pc);
    if (rc == 0) snprintf(flags, sizeof flags, "%.*s", (int)strcspn(out, "\n"), out);
    check(rc == 0 && strstr(flags, "-lstylenet") && strstr(flags, prefix), "pkg-config --cflags --libs stylenet: %s",
          flags);
    rc = run("cc -std=c11 -Wall -Wextra -Werror %s %s/examples/predict_json.c %s -o %s/predict_json", SAN_FLAGS, repo,
             flags, tmp);
    if (!check(rc == 0, "examples/predict_json.c compiles against the installed tree%s%s", rc ? ": " : "",
               rc ? flat_tail(out, 400) : ""))
        return;
    /* a Style model in seconds (as test_serve trains one), a Style photo and its pixels as WebP */
    snprintf(model, sizeof model, "%s/style.stn", tmp);
    snprintf(photo, sizeof photo, "%s", shared_path("data/style/3_2_001.png"));
    snprintf(data, sizeof data, "%s", shared_path("data/style")); /* shared_path's buffer is static */
    snprintf(weights, sizeof weights, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    rc = run("%s/bin/stylenet train --data %s --task multi --pretrained %s --recipe seed --lr 0.03 --head-epochs 3 "
             "--head-aug-epochs 0 --cycles 0 --size 64 --tta 0 --threads 1 --quiet --out %s",
             prefix, data, weights, model);
    if (!check(rc == 0, "a Style model trained with the installed program%s%s", rc ? ": " : "", rc ? flat_tail(out, 400) : ""))
        return;
    image im;
    size_t wn = 0;
    uint8_t *webp = image_load(photo, &im) == 0 ? webp_encode(im.rgb, im.w, im.h, 3, 1, 0, &wn) : NULL;
    image_free(&im);
    snprintf(webp_path, sizeof webp_path, "%s/3_2_001.webp", tmp);
    check(webp && webp_write(webp_path, webp, wn) == 0, "the photo as lossless WebP (%zu bytes)", wn);
    free(webp);
    rc = run("LD_LIBRARY_PATH=%s/lib %s/predict_json %s %s %s", prefix, tmp, model, photo, webp_path);
    const char *brace = strchr(out, '{');
    cJSON *ex = rc == 0 && brace ? cJSON_Parse(brace) : NULL;
    check(ex != NULL, "the example runs and prints JSON (exit %d)%s%s", rc, ex ? "" : ": ", ex ? "" : flat_tail(out, 300));
    rc = run("%s/bin/stylenet predict --json --threads 1 --top 1000 --model %s %s %s", prefix, model, photo, webp_path);
    brace = strchr(out, '{');
    cJSON *cli = rc == 0 && brace ? cJSON_Parse(brace) : NULL;
    check(cli != NULL, "stylenet predict --json on the PNG and the WebP (exit %d)", rc);
    if (ex && cli) compare(ex, cli, "the example's answer");
    const cJSON *r = cJSON_GetObjectItem(ex, "results");
    char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "probabilities"));
    char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "probabilities"));
    check(a && b && !strcmp(a, b), "the WebP of the PNG's pixels: the same probabilities");
    free(a);
    free(b);
    cJSON_Delete(ex);
    cJSON_Delete(cli);
    rc = run("%s/bin/stylenet predict --json --model %s %s", prefix, model, tmp);
    cJSON *folder = rc == 0 && (brace = strchr(out, '{')) ? cJSON_Parse(brace) : NULL;
    const cJSON *results = cJSON_GetObjectItem(folder, "results");
    const char *only = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(results, 0), "image"));
    check(cJSON_GetArraySize(results) == 1 && only && !strcmp(only, webp_path),
          "stylenet predict on the folder: its one photo, the .webp (%s)", only ? only : flat_tail(out, 200));
    cJSON_Delete(folder);
    rc = run("LD_LIBRARY_PATH=%s/lib %s/predict_json %s %s/nothing.webp", prefix, tmp, model, tmp);
    check(rc == 1 && strstr(out, "nothing.webp") && strstr(out, "cannot open"),
          "a missing photo: exit 1, the library's message names it: %s", flat_tail(out, 200));
}

static void case_destdir(void) {
    if (!installed()) return;
    char stage[128], p[PATH_MAX];
    snprintf(stage, sizeof stage, "%s/stage", tmp);
    int rc = run("make -s --no-print-directory -C %s BUILD=%s DESTDIR=%s PREFIX=/opt/stylenet install-built", repo,
                 build, stage);
    snprintf(p, sizeof p, "%s/opt/stylenet/lib/libstylenet.so." STYLENET_VERSION_STRING, stage);
    check(rc == 0 && exists(p), "DESTDIR=%s PREFIX=/opt/stylenet: the library under the staging folder", stage);
    snprintf(p, sizeof p, "%s/opt/stylenet/lib/pkgconfig/stylenet.pc", stage);
    rc = run("cat %s", p);
    check(rc == 0 && strstr(out, "prefix=/opt/stylenet\n") && !strstr(out, stage), "stylenet.pc names the final prefix");
    rc = run("PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_PATH=%s/opt/stylenet/lib/pkgconfig pkg-config --cflags --libs stylenet",
             stage, stage);
    char flags[2048];
    snprintf(flags, sizeof flags, "%.*s", (int)strcspn(out, "\n"), out);
    check(rc == 0 && strstr(flags, stage), "pkg-config with the sysroot: %s", flags);
    rc = run("cc -std=c11 -Wall -Wextra -Werror %s %s/examples/predict_json.c %s -o %s/predict_json_staged", SAN_FLAGS,
             repo, flags, tmp);
    check(rc == 0, "the example compiles and links against the staged tree%s%s", rc ? ": " : "", rc ? flat_tail(out, 300) : "");
}

static void case_uninstall(void) {
    if (!installed()) return;
    int rc = run("make -s --no-print-directory -C %s BUILD=%s PREFIX=%s uninstall && find %s -type f -o -type l", repo,
                 build, prefix, prefix);
    check(rc == 0 && !strstr(out, prefix), "make uninstall leaves no file of the install (%s)", flat_tail(out, 200));
}

static const test_case cases[] = {
    {"layout", case_layout},
    {"example", case_example},
    {"destdir", case_destdir},
    {"uninstall", case_uninstall},
};

int main(int argc, char **argv) {
    int r = test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
    if (tmp[0] && strncmp(tmp, "/tmp/stylenet_install_", 22) == 0) run("rm -rf %s", tmp);
    return r;
}
