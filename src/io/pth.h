/* pth.h - read PyTorch checkpoints (torch.save of a state dict) without running Python's pickle.
 *
 * Contract
 * - Formats, told apart by content (never by the file name):
 *     zip    (torch.save since 1.6): a zip file ("PK\3\4") holding <archive>/data.pkl, the pickled
 *            state dict, and one entry <archive>/data/<key> per storage (read through libzip);
 *            <archive>/byteorder, where present, must say "little";
 *     legacy (torch.save before 1.6, or _use_new_zipfile_serialization=False): the pickles of the
 *            magic number (the file starts with them), the protocol version (1001), the system
 *            info (little_endian must be true), the state dict and the list of storage keys,
 *            then each storage in that list's order as an int64 element count and its raw bytes.
 * - The pickles go through a restricted unpickler (io/pickle.h): only the opcodes and globals
 *   that rebuild tensors and ordered dicts; anything else is an error, never executed.
 * - The top-level object is a dict of name -> tensor (a state dict).  A dict holding a dict of
 *   tensors under "state_dict" or "model" (a training checkpoint) gives that inner dict; other
 *   entries of a checkpoint are then ignored.  A state-dict entry that is no tensor is an error.
 * - Tensors may have any strides >= 0 (checkpoints converted from TensorFlow hold permuted
 *   weights) and are gathered into row-major order; offset and strides must stay inside the
 *   storage.  Views sharing a storage at offsets are fine.  Floating dtypes (F32, F16, BF16, F64) come out as float (f32),
 *   integer and bool dtypes as int64 (i64); pth_file.converted counts the float tensors that were
 *   not float32 (a caller notes the conversion).  Little-endian hosts only.
 * - Every error (-1 / NULL after sn_error()) names the file and what was found: a global that
 *   is not allowed, an unknown opcode, a storage or shape out of range, a truncated file.
 * - A pth_file is immutable after open; pth_close() frees it and everything it points to.
 */
#ifndef STYLENET_PTH_H
#define STYLENET_PTH_H
#include <stddef.h>
#include <stdint.h>

#define PTH_MAX_DIMS 8

typedef enum {
    PTH_F32, PTH_F64, PTH_F16, PTH_BF16, PTH_I64, PTH_I32, PTH_I16, PTH_I8, PTH_U8, PTH_BOOL
} pth_dtype;

typedef enum { PTH_NOT = 0, PTH_ZIP, PTH_LEGACY } pth_format;

typedef struct {
    char *name;
    pth_dtype dtype;             /* as stored in the file */
    int ndim;                    /* 0 = scalar */
    int64_t shape[PTH_MAX_DIMS];
    size_t numel;
    float *f32;                  /* floating dtypes: numel values; NULL otherwise */
    int64_t *i64;                /* integer and bool dtypes: numel values; NULL otherwise */
} pth_tensor;

typedef struct {
    char *name;                  /* the file name given at open */
    pth_format format;
    size_t n;                    /* tensors, in the state dict's order */
    pth_tensor *t;
    int converted;               /* float tensors converted from F16/BF16/F64 */
} pth_file;

/* the format from a file's first bytes (at least 16 for the legacy magic); PTH_NOT otherwise */
pth_format pth_detect(const void *head, size_t n);
/* reads the first bytes of path: PTH_NOT if it cannot be read or is no checkpoint */
pth_format pth_detect_file(const char *path);

pth_file *pth_open(const char *path);
/* name is used in error messages; buf is not referenced after the call */
pth_file *pth_open_mem(const void *buf, size_t len, const char *name);
void pth_close(pth_file *f);

const pth_tensor *pth_find(const pth_file *f, const char *name); /* NULL if absent */
#endif
