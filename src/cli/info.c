/* info.c - `stylenet info MODEL` (or --model MODEL): what a model file is and how it was trained. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "core/error.h"
#include "models/zoo.h"

static void usage(FILE *f) {
    fprintf(f, "usage: stylenet info [--arch NAME] [--labels FILE] [--summary] [--json] MODEL\n"
               "       (or --model MODEL in place of MODEL)\n"
               "Describes a model file: architecture, input, parameters, task and classes, how it was trained;\n"
               "--summary adds the layers, --json prints one JSON document.\n");
}

static void print_text(const classifier *m, const char *path, bool summary) {
    printf("model         %s (%s file)\n", path, m->source);
    printf("architecture  %s, head %s\n", m->arch, m->head);
    printf("input         %dx%d RGB, normalised (x - [%g, %g, %g]) / [%g, %g, %g]\n", m->size, m->size, m->mean[0],
           m->mean[1], m->mean[2], m->std[0], m->std[1], m->std[2]);
    printf("parameters    %zu (%.1f M multiply-adds per image)\n", model_num_params(m->net), net_macs(m->net) / 1e6);
    printf("task          %s-label, %d classes:", m->task, m->n_classes);
    for (int i = 0; i < m->n_classes && i < 20; i++) printf("%s %s", i ? "," : "", m->classes[i]);
    printf("%s\n", m->n_classes > 20 ? ", ..." : "");
    if (m->temperature > 0 && m->temperature != 1)
        printf("calibration   temperature %g: probabilities of the logits / %g\n", m->temperature, m->temperature);
    else
        printf("calibration   none (temperature 1)\n");
    if (m->history) printf("training      %s\n", m->history);
    if (summary) model_summary(m->net, stdout);
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"arch", required_argument, 0, 'a'}, {"labels", required_argument, 0, 'l'},
                                         {"model", required_argument, 0, 'm'}, {"summary", no_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    classifier_load_opts lo = {0};
    const char *path = NULL;
    int summary = 0, json = 0, c, given = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "a:l:m:sh", opts, NULL)) != -1) {
        if (c == 'a') lo.arch = optarg;
        else if (c == 'l') lo.labels = optarg;
        else if (c == 'm') path = optarg, given++;
        else if (c == 's') summary = 1;
        else if (c == 'j') json = 1;
        else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) path = argv[optind], given += argc - optind;
    if (given != 1) { /* one model, named either way */
        usage(stderr);
        return 2;
    }
    classifier *m = classifier_load(path, &lo);
    if (!m) return cli_fail("%s", sn_last_error());
    int rc = 0;
    if (json) {
        char *s = classifier_info_json(m, path, true);
        if (s) puts(s);
        else rc = cli_fail("%s", sn_last_error());
        free(s);
    } else {
        print_text(m, path, summary);
    }
    classifier_free(m);
    return rc;
}
