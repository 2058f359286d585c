/* info.c - `stylenet info MODEL`: what a model file is and how it was trained. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"
#include "io/model_file.h"
#include "models/zoo.h"

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"arch", required_argument, 0, 'a'}, {"labels", required_argument, 0, 'l'},
                                         {"summary", no_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    model_load_opts lo = {0};
    int summary = 0, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "a:l:sh", opts, NULL)) != -1) {
        if (c == 'a') lo.arch = optarg;
        else if (c == 'l') lo.labels = optarg;
        else if (c == 's') summary = 1;
        else if (c == 'j') json = 1;
        else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: stylenet info [--arch NAME] [--labels FILE] [--summary] [--json] MODEL\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: stylenet info [--arch NAME] [--labels FILE] [--summary] [--json] MODEL\n");
        return 2;
    }
    sn_model *m = model_load(argv[optind], &lo);
    if (!m) return cli_fail("%s", sn_last_error());
    if (json) {
        char *s = model_info_json(m, argv[optind], true);
        if (!s) {
            model_free(m);
            return cli_fail("%s", sn_last_error());
        }
        puts(s);
        free(s);
        model_free(m);
        return 0;
    }
    printf("model         %s (%s file)\n", argv[optind], m->source);
    printf("architecture  %s, head %s\n", m->arch, m->head);
    printf("input         %dx%d RGB, normalised (x - [%g, %g, %g]) / [%g, %g, %g]\n", m->size, m->size, m->mean[0],
           m->mean[1], m->mean[2], m->std[0], m->std[1], m->std[2]);
    printf("parameters    %zu (%.1f M multiply-adds per image)\n", model_num_params(m->net), net_macs(m->net) / 1e6);
    printf("task          %s-label, %d classes:", m->task, m->n_classes);
    for (int i = 0; i < m->n_classes && i < 20; i++) printf("%s %s", i ? "," : "", m->classes[i]);
    printf("%s\n", m->n_classes > 20 ? ", ..." : "");
    if (m->history) printf("training      %s\n", m->history);
    if (summary) model_summary(m->net, stdout);
    model_free(m);
    return 0;
}
