/* libFuzzer harness for io/tflite: open from memory, walk every subgraph, tensor and operator
 * (touching every field and index), and dequantise every tensor.  Build and run: make fuzz. */
#include "core/error.h"
#include "io/tflite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                              \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "fuzz_tflite: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                            \
        }                                                                       \
    } while (0)

static volatile unsigned long sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tfl_model *m = tfl_open_mem(data, size, "fuzz.tflite");
    if (!m) {
        const char *e = sn_last_error();
        REQUIRE(e && e[0] && strncmp(e, "fuzz.tflite", 11) == 0);
        return 0;
    }
    unsigned long acc = (unsigned long)tfl_version(m) + (long)strlen(tfl_description(m)) + tfl_num_buffers(m) + tfl_num_opcodes(m);
    REQUIRE(tfl_num_subgraphs(m) >= 1);
    REQUIRE(tfl_subgraph_at(m, -1) == NULL && tfl_subgraph_at(m, tfl_num_subgraphs(m)) == NULL);
    for (int s = 0; s < tfl_num_subgraphs(m); s++) {
        const tfl_subgraph *g = tfl_subgraph_at(m, s);
        acc += (long)strlen(g->name);
        for (int i = 0; i < g->n_inputs; i++) REQUIRE(g->inputs[i] >= 0 && g->inputs[i] < g->n_tensors);
        for (int i = 0; i < g->n_outputs; i++) REQUIRE(g->outputs[i] >= 0 && g->outputs[i] < g->n_tensors);
        for (int i = 0; i < g->n_tensors; i++) {
            const tfl_tensor *t = &g->tensors[i];
            acc += (unsigned long)strlen(t->name) + (unsigned long)t->type + t->ndim + t->is_variable + t->quantized_dimension;
            for (int d = 0; d < t->ndim; d++) acc += t->shape[d];
            for (int k = 0; k < t->n_min; k++) acc += t->min[k] > 0;
            for (int k = 0; k < t->n_max; k++) acc += t->max[k] > 0;
            for (int k = 0; k < t->n_scale; k++) acc += (long)(t->scale[k] != 0);
            for (int k = 0; k < t->n_zero_point; k++) acc += (unsigned long)t->zero_point[k];
            for (size_t k = 0; k < t->data_len; k++) acc += t->data[k];
            int64_t n = tfl_numel(t);
            float dummy[1];
            if (n < 0 || !t->data || (uint64_t)n > t->data_len) {
                /* cannot hold that much data: must fail without writing */
                if (n > 0) REQUIRE(tfl_dequantize_tensor(m, t, dummy, 0) < 0);
                continue;
            }
            float *o = malloc((size_t)n * sizeof(float) + 1);
            REQUIRE(o);
            if (tfl_dequantize_tensor(m, t, o, (size_t)n) == 0)
                for (int64_t k = 0; k < n; k++) acc += o[k] == o[k];
            else
                REQUIRE(sn_last_error()[0]);
            free(o);
            if (s == 0) {
                float *o2 = malloc((size_t)n * sizeof(float) + 1);
                REQUIRE(o2);
                (void)tfl_dequantize(m, i, o2, (size_t)n);
                free(o2);
            }
        }
        for (int i = 0; i < g->n_ops; i++) {
            const tfl_op *o = &g->ops[i];
            REQUIRE(o->opcode_index >= 0 && o->opcode_index < tfl_num_opcodes(m));
            acc += (unsigned long)o->builtin + (unsigned)o->version + (long)strlen(tfl_op_name(o->builtin));
            if (o->custom_code) acc += (long)strlen(o->custom_code);
            for (int k = 0; k < o->n_inputs; k++) {
                REQUIRE(o->inputs[k] >= -1 && o->inputs[k] < g->n_tensors);
                if (o->inputs[k] >= 0) acc += g->tensors[o->inputs[k]].ndim;
            }
            for (int k = 0; k < o->n_outputs; k++) {
                REQUIRE(o->outputs[k] >= 0 && o->outputs[k] < g->n_tensors);
                acc += g->tensors[o->outputs[k]].ndim;
            }
            for (int k = 0; k < o->n_new_shape; k++) acc += o->new_shape[k];
            acc += (unsigned long)o->padding + (unsigned)o->stride_w + o->stride_h + o->dilation_w + o->dilation_h + o->depth_multiplier +
                   o->filter_w + o->filter_h + o->activation + o->axis + (long)(o->beta > 0) + o->options_type;
        }
    }
    REQUIRE(tfl_dequantize(m, -1, NULL, 0) < 0);
    sink = acc;
    tfl_close(m);
    return 0;
}
