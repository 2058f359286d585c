/* predict_json.c - an example of embedding stylenet: classify photos with the library's public
 * API (include/stylenet.h) and print, per photo, each label group's best class and every class's
 * probability as JSON.
 *
 * Build against an installed stylenet:
 *     cc -std=c11 predict_json.c $(pkg-config --cflags --libs stylenet) -o predict_json
 * Run:
 *     ./predict_json MODEL PHOTO...     (PNG, JPEG or WebP; exit 1 if a photo cannot be read)
 */
#include <stdio.h>
#include <stdlib.h>
#include <stylenet.h>

/* s as a JSON string */
static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

/* one photo's record: {"image", "groups": {name: {"class", "probability"}}, "probabilities"} */
static void print_photo(const stylenet_model *m, const char *path, const float *p) {
    printf("    {\"image\": ");
    json_string(path);
    printf(",\n     \"groups\": {");
    for (int g = 0; g < stylenet_num_groups(m); g++) {
        int best = stylenet_group_best(m, g, p);
        printf("%s", g ? ", " : "");
        json_string(stylenet_group_name(m, g));
        printf(": {\"class\": ");
        json_string(stylenet_class_name(m, best));
        printf(", \"probability\": %.9g}", p[best]);
    }
    printf("},\n     \"probabilities\": {");
    for (int k = 0; k < stylenet_num_classes(m); k++) {
        printf("%s", k ? ", " : "");
        json_string(stylenet_class_name(m, k));
        printf(": %.9g", p[k]);
    }
    printf("}}");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PHOTO...\n", argv[0]);
        return 2;
    }
    stylenet_model *m = stylenet_open(argv[1], NULL);
    if (!m) {
        fprintf(stderr, "predict_json: %s\n", stylenet_last_error());
        return 1;
    }
    float *p = malloc(sizeof(float) * (size_t)stylenet_num_classes(m));
    if (!p) {
        stylenet_close(m);
        return 1;
    }
    int failed = 0, shown = 0;
    printf("{\"library\": \"%s\", \"task\": \"%s\", \"input_size\": %d,\n \"results\": [\n", stylenet_version(),
           stylenet_task(m), stylenet_input_size(m));
    for (int i = 2; i < argc; i++) {
        if (stylenet_predict_file(m, argv[i], p) < 0) {
            fprintf(stderr, "predict_json: %s\n", stylenet_last_error());
            failed++;
            continue;
        }
        printf("%s", shown++ ? ",\n" : "");
        print_photo(m, argv[i], p);
    }
    printf("\n]}\n");
    free(p);
    stylenet_close(m);
    return failed ? 1 : 0;
}
