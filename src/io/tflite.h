/* tflite.h - read TensorFlow Lite model files (FlatBuffers, schema "TFL3") in plain C.
 *
 * Contract
 * - No TFLite runtime and no flatbuffers library: tfl_open() reads the file into memory and
 *   tfl_open_mem() copies a buffer; either walks the whole schema subset below at open and
 *   checks every offset, vtable, table size, vector length and string terminator against the
 *   file size.  Any violation is an error naming the file and the place ("subgraph 0 tensor 17:
 *   quantization.scale vector runs past the end of the file"), never a crash: after a successful
 *   open the accessors cannot fail and every pointer they return lies inside the model.
 * - Parsed: Model{version, operator_codes, subgraphs, description, buffers},
 *   OperatorCode{deprecated_builtin_code, custom_code, version, builtin_code} (the effective
 *   builtin is the larger of the two codes, as TFLite does), SubGraph{tensors, inputs, outputs,
 *   operators, name}, Tensor{shape, type, buffer, name, quantization{min, max, scale,
 *   zero_point, quantized_dimension}, is_variable}, Operator{opcode_index, inputs, outputs,
 *   builtin_options for Conv2D, DepthwiseConv2D, Pool2D, FullyConnected, Softmax,
 *   Concatenation, Add and Reshape}, Buffer{data, offset, size}, Metadata{name, buffer}.
 *   Unknown fields are ignored, and so are bytes after the FlatBuffer that nothing references
 *   (models with TFLite metadata carry e.g. a zip of label files there).
 *   Checked at open: the "TFL3" identifier, at least one subgraph, indices in range (opcode
 *   index, tensor indices of ops and subgraph inputs/outputs, where -1 = optional input absent,
 *   buffer indices of tensors and metadata), rank <= TFL_MAX_DIMS.  Vectors of scalars are copied (aligned); a file whose
 *   tables share vectors so that the copies would exceed its own size by far is rejected, so a
 *   small hostile file cannot make open allocate quadratically.
 * - Tensor data (tfl_tensor.data, data_len) points into the file image, unaligned; NULL when the
 *   tensor's buffer is empty (activations).  Pointers are valid until tfl_close().
 * - Indices: tfl_tensor_at/tfl_op_at/tfl_dequantize use the main subgraph (0); the others are
 *   reachable through tfl_subgraph_at().
 * - Dequantisation (tfl_dequantize): FLOAT32 passes through, FLOAT16/FLOAT64 convert; integer
 *   types (UINT8, INT8, INT16, INT32, INT64) need quantisation parameters: one scale =
 *   per-tensor, w = scale * (q - zero_point); several = per-channel along quantized_dimension
 *   (scale count must equal that dimension).  zero_point may be absent (0) or match the scale
 *   count; an integer tensor without scales (a reshape's shape) converts as it is.  Computed as
 *   float(double(scale) * double(q - zero_point)), i.e. exactly as numpy does with float32
 *   scales and int64 zero points.  n must equal the element count.
 * - Errors go through core/error.h.  An opened model is immutable: concurrent reads are fine.
 */
#ifndef STYLENET_TFLITE_H
#define STYLENET_TFLITE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TFL_MAX_DIMS 8

/* TensorType */
enum {
    TFL_FLOAT32 = 0, TFL_FLOAT16 = 1, TFL_INT32 = 2, TFL_UINT8 = 3, TFL_INT64 = 4, TFL_STRING = 5,
    TFL_BOOL = 6, TFL_INT16 = 7, TFL_COMPLEX64 = 8, TFL_INT8 = 9, TFL_FLOAT64 = 10,
    TFL_COMPLEX128 = 11, TFL_UINT64 = 12, TFL_RESOURCE = 13, TFL_VARIANT = 14, TFL_UINT32 = 15,
    TFL_UINT16 = 16, TFL_INT4 = 17, TFL_BFLOAT16 = 18
};
/* BuiltinOperator (the ones stylenet meets; any other code is kept as a number) */
enum {
    TFL_OP_ADD = 0, TFL_OP_AVERAGE_POOL_2D = 1, TFL_OP_CONCATENATION = 2, TFL_OP_CONV_2D = 3,
    TFL_OP_DEPTHWISE_CONV_2D = 4, TFL_OP_DEQUANTIZE = 6, TFL_OP_FULLY_CONNECTED = 9,
    TFL_OP_LOGISTIC = 14, TFL_OP_MAX_POOL_2D = 17, TFL_OP_MUL = 18, TFL_OP_RELU = 19,
    TFL_OP_RELU6 = 21, TFL_OP_RESHAPE = 22, TFL_OP_SOFTMAX = 25, TFL_OP_PAD = 34, TFL_OP_MEAN = 40,
    TFL_OP_SQUEEZE = 43, TFL_OP_HARD_SWISH = 117, TFL_OP_QUANTIZE = 114, TFL_OP_CUSTOM = 32
};
/* BuiltinOptions union types that are parsed */
enum {
    TFL_OPT_NONE = 0, TFL_OPT_CONV2D = 1, TFL_OPT_DEPTHWISE_CONV2D = 2, TFL_OPT_POOL2D = 5,
    TFL_OPT_FULLY_CONNECTED = 8, TFL_OPT_SOFTMAX = 9, TFL_OPT_CONCATENATION = 10, TFL_OPT_ADD = 11,
    TFL_OPT_RESHAPE = 17
};
enum { TFL_PAD_SAME = 0, TFL_PAD_VALID = 1 };
enum { TFL_ACT_NONE = 0, TFL_ACT_RELU = 1, TFL_ACT_RELU_N1_TO_1 = 2, TFL_ACT_RELU6 = 3, TFL_ACT_TANH = 4,
       TFL_ACT_SIGN_BIT = 5 };

typedef struct {
    const char *name;            /* "" when absent */
    int type;                    /* TFL_FLOAT32, ... */
    int ndim;
    int32_t shape[TFL_MAX_DIMS];
    uint32_t buffer;             /* index into the model's buffers */
    const uint8_t *data;         /* constant data or NULL */
    size_t data_len;
    bool is_variable;
    /* quantization (counts are 0 when absent) */
    int n_min, n_max, n_scale, n_zero_point;
    const float *min, *max, *scale;
    const int64_t *zero_point;
    int quantized_dimension;
} tfl_tensor;

typedef struct {
    int opcode_index;
    int builtin;                 /* effective BuiltinOperator */
    int version;                 /* operator code version */
    const char *custom_code;     /* NULL unless a custom op */
    int n_inputs, n_outputs;
    const int32_t *inputs, *outputs; /* tensor indices; an input may be -1 (optional, absent) */
    int options_type;            /* TFL_OPT_* (union type as stored, even when not parsed) */
    /* options, defaults as in the schema when absent */
    int padding;                 /* TFL_PAD_SAME / TFL_PAD_VALID */
    int stride_w, stride_h;
    int dilation_w, dilation_h;  /* default 1 */
    int depth_multiplier;
    int filter_w, filter_h;      /* Pool2D */
    int activation;              /* TFL_ACT_* */
    int axis;                    /* Concatenation */
    float beta;                  /* Softmax */
    int n_new_shape;             /* Reshape */
    const int32_t *new_shape;
} tfl_op;

typedef struct {
    const char *name;
    int n_tensors, n_inputs, n_outputs, n_ops;
    tfl_tensor *tensors;
    const int32_t *inputs, *outputs;
    tfl_op *ops;
} tfl_subgraph;

typedef struct tfl_model tfl_model;

tfl_model *tfl_open(const char *path);
tfl_model *tfl_open_mem(const void *buf, size_t len, const char *name);
void tfl_close(tfl_model *m);

const char *tfl_filename(const tfl_model *m);
uint32_t tfl_version(const tfl_model *m);
const char *tfl_description(const tfl_model *m);  /* "" when absent */
int tfl_num_buffers(const tfl_model *m);
int tfl_num_opcodes(const tfl_model *m);
int tfl_num_subgraphs(const tfl_model *m);
/* Model.metadata entries ("min_runtime_version", "TFLITE_METADATA", ...): name, and the bytes
 * of its buffer through data/len (either may be NULL; data NULL when the buffer is empty);
 * NULL if i is out of range */
int tfl_num_metadata(const tfl_model *m);
const char *tfl_metadata(const tfl_model *m, int i, const uint8_t **data, size_t *len);
const tfl_subgraph *tfl_subgraph_at(const tfl_model *m, int i); /* NULL if out of range */

/* main subgraph (0) */
int tfl_num_tensors(const tfl_model *m);
const tfl_tensor *tfl_tensor_at(const tfl_model *m, int i);  /* NULL if out of range */
int tfl_num_ops(const tfl_model *m);
const tfl_op *tfl_op_at(const tfl_model *m, int i);          /* NULL if out of range */

/* elements of a tensor's shape; -1 if a dim is negative (dynamic) or the product overflows */
int64_t tfl_numel(const tfl_tensor *t);
size_t tfl_type_size(int type);      /* bytes per element, 0 for variable/unknown */
const char *tfl_type_name(int type); /* "FLOAT32", ... */
const char *tfl_op_name(int builtin);/* "CONV_2D", ...; "UNKNOWN" for codes not in the enum above */

/* out[n] <- tensor i of the main subgraph as float; n must equal its element count */
int tfl_dequantize(const tfl_model *m, int tensor, float *out, size_t n);
/* the same for a tensor of any subgraph */
int tfl_dequantize_tensor(const tfl_model *m, const tfl_tensor *t, float *out, size_t n);
#endif
