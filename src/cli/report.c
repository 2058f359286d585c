/* report.c - `stylenet report RUN_DIR`: a training run as PNG plots and one HTML page (report/report.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "core/error.h"
#include "report/report.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet report RUN_DIR [--out DIR] [--top-losses N] [--json]\n"
               "Turns the run directory of `stylenet train --run-dir RUN_DIR` into PNG plots and one\n"
               "self-contained HTML page (plots embedded) in DIR (default RUN_DIR/report):\n"
               "  loss.png              training loss per batch (raw and smoothed), validation loss per epoch,\n"
               "                        phase boundaries, and the learning rate of each layer group below\n"
               "  metrics.png           validation metrics per epoch (F2 or accuracy, per label group)\n"
               "  lr_find.png           the LR finder's loss against the rate, the suggested rate marked\n"
               "  confusion_<group>.png confusion matrix of each label group (confusion.png: single-label)\n"
               "  precision_recall.png  per-class precision and recall\n"
               "  reliability.png       calibration: how often each probability came true (15 bins), with the ECE\n"
               "  top_losses.png        the N validation images with the highest loss (--top-losses, 16)\n"
               "  report.html           everything above, summary and final metrics, per-epoch table\n"
               "A run that has not finished gives the plots its history allows and says what is missing.\n"
               "--json prints the files written, what is missing, the confusion matrices and the top losses.\n");
}

int cmd_report(int argc, char **argv) {
    enum { O_OUT = 256, O_TOP, O_JSON };
    static const struct option opts[] = {{"out", required_argument, 0, O_OUT}, {"top-losses", required_argument, 0, O_TOP},
                                         {"json", no_argument, 0, O_JSON}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    report_opts ro = {.top_losses = 16};
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_OUT: ro.out_dir = optarg; break;
        case O_TOP:
            if (cli_int("--top-losses", optarg, 0, 100, &ro.top_losses) < 0) return cli_usage_error("report", usage);
            break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    ro.run_dir = argv[optind];
    cJSON *res = report_make(&ro);
    if (!res) return cli_fail("report: %s", sn_last_error());
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(res, "warnings")) fprintf(stderr, "stylenet: warning: %s\n", w->valuestring);
    if (json) {
        char *s = cJSON_Print(res);
        if (s) puts(s);
        free(s);
    } else {
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(res, "missing")) printf("not in the report: %s\n", w->valuestring);
        const cJSON *files = cJSON_GetObjectItem(res, "files");
        printf("report of %s: %d files in %s\n", ro.run_dir, cJSON_GetArraySize(files),
               cJSON_GetStringValue(cJSON_GetObjectItem(res, "out_dir")));
        cJSON_ArrayForEach(w, files) printf("  %s\n", w->valuestring);
    }
    cJSON_Delete(res);
    return 0;
}
