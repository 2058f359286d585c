/* safetensors.h - read and write the safetensors tensor file format (Hugging Face).
 *
 * Contract
 * - Format: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header, then the data
 *   section.  The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
 *   end]} (offsets into the data section) and may hold "__metadata__", a string -> string map.
 * - Reading: st_open() reads the whole file into memory; st_open_mem() copies a buffer (the
 *   caller's memory is not referenced afterwards).  Everything is validated at open, so the
 *   accessors cannot fail: header length against file size (and <= 100 MB, as the reference
 *   implementation), JSON validity (trailing spaces allowed, nothing else), known dtype, shape
 *   dims integral, non-negative, rank <= ST_MAX_DIMS, no overflow of numel or bytes, offsets
 *   integral, in range, begin <= end, end - begin == numel * dtype size, duplicate names, and,
 *   as the reference implementation demands, that the tensors tile the data section exactly:
 *   sorted by offset they are contiguous, without overlap or holes, and end at the end of the
 *   file.  Every error message names the file (and the tensor, where there is one).
 * - Tensors are kept in file order (ascending data offsets); st_tensor_at(f, i) walks them,
 *   st_find() looks one up by name (NULL if absent, no error set).  st_tensor.data points at the
 *   raw little-endian bytes inside the file image (not necessarily aligned: use memcpy or the
 *   st_read_* converters).  Pointers stay valid until st_close().
 * - Conversion: st_read_f32() converts F32/F16/BF16/F64 to float (error for any other dtype);
 *   st_read_i64() converts any integer or BOOL dtype to int64 (error for floats).  n must equal
 *   the tensor's numel, so a caller cannot silently read the wrong amount.
 * - Writing: collect tensors (copied at add) and metadata in an st_writer, then st_writer_save()
 *   writes the file atomically: "<path>.tmp.<pid>", fflush + fsync, rename over path (the temp
 *   file is removed on failure).  The layout is deterministic and is the reference writer's:
 *   tensors sorted by dtype alignment (largest first), then by name (bytewise); the header is
 *   compact JSON ("__metadata__" first with its keys sorted bytewise, then the tensors in data
 *   order, each {"dtype","shape","data_offsets"}), padded with spaces to a multiple of 8 bytes.
 *   So a file without metadata (or with one key) written by Python's safetensors is rewritten
 *   byte-identically.
 * - Thread safety: an st_file is immutable after open (concurrent reads are fine); an st_writer
 *   is not shared.  Errors go through core/error.h (-1 / NULL after sn_error()).
 * - Assumes a little-endian host (x86-64, AArch64), checked at compile time.
 */
#ifndef STYLENET_SAFETENSORS_H
#define STYLENET_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

/* in the reference implementation's order (by alignment): the writer sorts by it, descending */
typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32, ST_F64,
    ST_I64, ST_U64, ST_NUM_DTYPES
} st_dtype;

typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;                    /* 0 = scalar */
    int64_t shape[ST_MAX_DIMS];
    size_t numel;                /* product of shape (1 for a scalar, 0 for an empty tensor) */
    size_t nbytes;               /* numel * st_dtype_size(dtype) */
    size_t offset;               /* begin, relative to the data section */
    const void *data;            /* raw little-endian bytes, unaligned */
} st_tensor;

typedef struct st_file st_file;

st_file *st_open(const char *path);
/* name is used in error messages and by st_filename() */
st_file *st_open_mem(const void *buf, size_t len, const char *name);
void st_close(st_file *f);

const char *st_filename(const st_file *f);
size_t st_count(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, size_t i);     /* file order; NULL if i >= count */
const st_tensor *st_find(const st_file *f, const char *name);  /* NULL if absent */

/* out[n] <- tensor as float; n must be t->numel */
int st_read_f32(const st_file *f, const st_tensor *t, float *out, size_t n);
/* out[n] <- tensor as int64 (integer and BOOL dtypes); n must be t->numel */
int st_read_i64(const st_file *f, const st_tensor *t, int64_t *out, size_t n);

/* metadata: value for key or NULL; and iteration in file order */
const char *st_meta(const st_file *f, const char *key);
size_t st_meta_count(const st_file *f);
const char *st_meta_key(const st_file *f, size_t i);
const char *st_meta_value(const st_file *f, size_t i);

/* an IEEE binary16 value as float (exact: every half is a float) */
float st_half_to_float(uint16_t h);
const char *st_dtype_name(st_dtype d);            /* "F32", ... */
size_t st_dtype_size(st_dtype d);                 /* bytes per element */
int st_dtype_parse(const char *s, st_dtype *out); /* -1 (no error message) if unknown */

/* ---- writer ---- */
typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
/* copies data (numel * dtype size bytes, little-endian); duplicate or empty names and
 * "__metadata__" are errors */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data);
/* float32 convenience */
int st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data);
/* sets (or replaces) one metadata entry */
int st_writer_meta(st_writer *w, const char *key, const char *value);
/* writes everything to path atomically; the writer can be saved again or freed */
int st_writer_save(const st_writer *w, const char *path);
/* the same bytes into a malloc'd buffer (free with free()); for tests and in-memory use */
int st_writer_serialize(const st_writer *w, uint8_t **out, size_t *len);
/* what st_writer_save would write, without writing it: meta(ctx, key, value) for each metadata
 * entry, then tensor(ctx, t) for each tensor, in the order st_open of the file lists them
 * (st_meta_key, st_tensor_at; t as st_tensor_at would give it, t->data the writer's copy, valid
 * until the writer changes); -1 out of memory */
int st_writer_walk(const st_writer *w, void (*meta)(void *ctx, const char *key, const char *value),
                   void (*tensor)(void *ctx, const st_tensor *t), void *ctx);
#endif
