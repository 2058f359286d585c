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
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", argv[optind]);
        cJSON_AddStringToObject(o, "source", m->source);
        cJSON_AddStringToObject(o, "arch", m->arch);
        cJSON_AddStringToObject(o, "head", m->head);
        cJSON_AddNumberToObject(o, "size", m->size);
        cJSON_AddItemToObject(o, "mean", cJSON_CreateFloatArray(m->mean, 3));
        cJSON_AddItemToObject(o, "std", cJSON_CreateFloatArray(m->std, 3));
        cJSON_AddNumberToObject(o, "parameters", (double)model_num_params(m->net));
        cJSON_AddNumberToObject(o, "macs_per_image", net_macs(m->net));
        cJSON_AddStringToObject(o, "task", m->task);
        cJSON *cl = cJSON_AddArrayToObject(o, "classes");
        for (int i = 0; i < m->n_classes; i++) cJSON_AddItemToArray(cl, cJSON_CreateString(m->classes[i]));
        cJSON *gr = cJSON_AddArrayToObject(o, "groups");
        for (int g = 0; g < m->n_groups; g++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", m->group_names[g]);
            cJSON_AddNumberToObject(e, "first", m->group_lo[g]);
            cJSON_AddNumberToObject(e, "end", m->group_hi[g]);
            cJSON_AddItemToArray(gr, e);
        }
        cJSON *h = m->history ? cJSON_Parse(m->history) : NULL;
        if (h) cJSON_AddItemToObject(o, "training", h);
        char *s = cJSON_Print(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
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
