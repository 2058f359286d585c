/* train_fixture.h - what the tests of training runs share (tests/train, tests/faults): a small
 * folder-per-class set from the Style photos, bitwise comparison of two weight files, and a
 * history.jsonl without its timings.
 *
 * style_product_folders(dst, n_products, per_class) copies up to per_class photos of each of the
 * first n_products Style products (shoes, lipstick, ...) into dst/<product>/ and returns how many
 * it copied.  same_tensors(a, b, why, cap) is true when every tensor of the safetensors files a
 * and b is byte-equal (metadata such as timings may differ); else why says which differs.
 * history_rows(path, &lines) is the rows of a history.jsonl without "seconds" and
 * "train_images_per_s", as a cJSON array (cJSON_Delete it), NULL if the file cannot be read. */
#ifndef STYLENET_TEST_TRAIN_FIXTURE_H
#define STYLENET_TEST_TRAIN_FIXTURE_H
#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

int style_product_folders(const char *dst, int n_products, int per_class);
bool same_tensors(const char *a, const char *b, char *why, size_t cap);
cJSON *history_rows(const char *path, int *lines);
#endif
