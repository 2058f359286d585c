/* test_export.c - `stylenet export --onnx / --safetensors`.
 *
 * One case per zoo architecture (fastai head, random weights with non-trivial batch norms, 64 px,
 * single- and multi-label): tools/onnx_check.py builds the PyTorch reference, writes it as a
 * stylenet model file, exports it and checks the ONNX file (onnx.checker, inputs, outputs,
 * metadata), ONNX Runtime against `stylenet predict --json` within 1e-5 at batch 3 and batch 1,
 * and the exported safetensors loaded back into PyTorch; each of its "ok"/"not ok" lines is a
 * check here.  "tflite": the shared TFLite MobileNetV2 (trained weights, TensorFlow SAME padding,
 * 224 px) the same way.  "errors": usage and failures name what is wrong and leave no file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../common/check.h"

static char out[1 << 16];

static const char *bin(void) { return getenv("STYLENET_BIN") ? getenv("STYLENET_BIN") : "build/stylenet"; }
static const char *python(void) {
    const char *p = getenv("STYLENET_PY");
    return p && p[0] ? p : "build/venv/bin/python";
}

/* runs tools/onnx_check.py ARCH in a fresh folder and turns its lines into checks */
static void oracle(const char *arch) {
    char tools[4096], dir[] = "/tmp/stylenet_export_XXXXXX";
    if (!check(find_repo_dir("tools", tools, sizeof tools), "find tools/")) return;
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    int rc = run_capture(out, sizeof out, "STYLENET_BIN=%s %s %s/onnx_check.py %s %s", bin(), python(), tools, arch, dir);
    int failed = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "ok ", 3)) check(true, "%s: %s", arch, line + 3);
        else if (!strncmp(line, "not ok ", 7)) failed += !check(false, "%s: %s", arch, line + 7);
        else if (!strncmp(line, "# ", 2)) note("%s", line + 2);
        else if (rc != 0) note("%s", line);
    }
    check(rc == 0 || failed > 0, "%s: onnx_check.py exits 0 (status %d)", arch, rc);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

static void resnet18(void) { oracle("resnet18"); }
static void resnet34(void) { oracle("resnet34"); }
static void resnet50(void) { oracle("resnet50"); }
static void mobilenet_v2(void) { oracle("mobilenet_v2"); }
static void mobilenet_v2_tf(void) { oracle("mobilenet_v2_tf"); }
static void efficientnet_lite0(void) { oracle("efficientnet_lite0"); }
static void efficientnet_lite1(void) { oracle("efficientnet_lite1"); }
static void efficientnet_lite2(void) { oracle("efficientnet_lite2"); }
static void tflite(void) { oracle("tflite"); }

static bool exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

/* no output flag: usage (2); a missing model or an unwritable output: status 1 and a message naming
 * the file, and no temporary file left behind */
static void errors(void) {
    char dir[] = "/tmp/stylenet_export_XXXXXX", model[4200], keep[4200];
    if (!check(mkdtemp(dir) != NULL, "temp dir")) return;
    snprintf(model, sizeof model, "%s", shared_path("weights/mobilenet_v2_1.0_224_quant.tflite"));
    int rc = run_capture(out, sizeof out, "%s export %s", bin(), model);
    check(rc == 2 && strstr(out, "usage: stylenet export"), "no --onnx / --safetensors: usage, status 2 (%d)", rc);
    rc = run_capture(out, sizeof out, "%s export --onnx %s/a.onnx %s/missing.stn", bin(), dir, dir);
    snprintf(keep, sizeof keep, "%s/a.onnx", dir);
    check(rc == 1 && strstr(out, "missing.stn") && !exists(keep), "a missing model: status 1 naming it, no output (%d: %s)",
          rc, flat_tail(out, 160));
    rc = run_capture(out, sizeof out, "%s export --onnx %s/no/such/dir/a.onnx %s", bin(), dir, model);
    check(rc == 1 && strstr(out, "no/such/dir/a.onnx"), "an unwritable output: status 1 naming it (%d: %s)", rc,
          flat_tail(out, 160));
    snprintf(keep, sizeof keep, "%s/taken.onnx", dir);
    mkdir(keep, 0700);
    rc = run_capture(out, sizeof out, "%s export --onnx %s %s", bin(), keep, model);
    check(rc == 1 && strstr(out, "taken.onnx"), "an output path that is a folder: status 1 naming it (%d: %s)", rc,
          flat_tail(out, 160));
    rc = run_capture(out, sizeof out, "ls -A %s", dir);
    check(rc == 0 && !strstr(out, ".tmp."), "no temporary file left behind (%s)", flat_tail(out, 160));
    rc = run_capture(out, sizeof out, "%s export --help", bin());
    check(rc == 0 && strstr(out, "--onnx FILE") && strstr(out, "--safetensors FILE"), "--help lists the outputs");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) note("could not remove %s", dir);
}

static const test_case cases[] = {
    {"resnet18", resnet18},
    {"resnet34", resnet34},
    {"resnet50", resnet50},
    {"mobilenet_v2", mobilenet_v2},
    {"mobilenet_v2_tf", mobilenet_v2_tf},
    {"efficientnet_lite0", efficientnet_lite0},
    {"efficientnet_lite1", efficientnet_lite1},
    {"efficientnet_lite2", efficientnet_lite2},
    {"tflite", tflite},
    {"errors", errors},
};
TEST_MAIN(cases)
