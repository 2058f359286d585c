/* train_fixture.c - see train_fixture.h. */
#include "train_fixture.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "check.h"
#include "io/safetensors.h"

int style_product_folders(const char *dst, int n_products, int per_class) {
    char path[4400], to[4400];
    char style_dir[4096];
    snprintf(style_dir, sizeof style_dir, "%s", shared_path("data/style"));
    int copied = 0, per[10] = {0};
    const char *products[10] = {"shoes", "lipstick", "handbag", "nail_polish", "necklace",
                                "watches", "ring", "bracelet", "boots", "earrings"};
    mkdir(dst, 0777);
    for (int p = 0; p < n_products; p++) {
        snprintf(path, sizeof path, "%s/%s", dst, products[p]);
        mkdir(path, 0777);
    }
    char **names;
    int nn = style_names(&names);
    for (int i = 0; i < nn; i++) {
        int prod = names[i][2] - '0';
        if (strlen(names[i]) == 11 && prod >= 0 && prod < n_products && per[prod] < per_class) {
            snprintf(path, sizeof path, "%s/%s", style_dir, names[i]);
            snprintf(to, sizeof to, "%s/%s/%s", dst, products[prod], names[i]);
            if (copy_file(path, to) == 0) {
                per[prod]++;
                copied++;
            }
        }
    }
    style_names_free(names, nn);
    return copied;
}

bool same_tensors(const char *a, const char *b, char *why, size_t cap) {
    st_file *fa = st_open(a), *fb = st_open(b);
    bool same = fa && fb && st_count(fa) == st_count(fb);
    snprintf(why, cap, "%s", same ? "" : "could not open both or counts differ");
    for (size_t i = 0; same && i < st_count(fa); i++) {
        const st_tensor *t = st_tensor_at(fa, i), *u = st_find(fb, t->name);
        if (!u || u->nbytes != t->nbytes || memcmp(t->data, u->data, t->nbytes) != 0) {
            snprintf(why, cap, "tensor %s differs", t->name);
            same = false;
        }
    }
    st_close(fa);
    st_close(fb);
    return same;
}

cJSON *history_rows(const char *path, int *lines) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    cJSON *rows = cJSON_CreateArray();
    static char line[1 << 16];
    *lines = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *row = cJSON_Parse(line);
        cJSON_DeleteItemFromObject(row, "seconds");
        cJSON_DeleteItemFromObject(row, "train_images_per_s");
        cJSON_AddItemToArray(rows, row ? row : cJSON_CreateNull());
        (*lines)++;
    }
    fclose(f);
    return rows;
}
