/* pickle.h - a restricted unpickler for PyTorch state dicts (internal to io/pth.c).
 *
 * Contract
 * - pk_load() reads ONE pickle (protocols 2 to 4) from buf[*pos..len) and returns its value,
 *   advancing *pos past the STOP opcode.  Nothing is ever executed or imported: the pickle is
 *   interpreted against a fixed table.
 * - Opcodes: the ones a state dict uses (PROTO, FRAME, STOP, MARK, POP, POP_MARK, the BIN* and
 *   SHORT_BIN* strings, BININT/BININT1/BININT2/LONG1 (<= 8 bytes), BINFLOAT, NONE/NEWTRUE/
 *   NEWFALSE, EMPTY_TUPLE/TUPLE/TUPLE1-3, EMPTY_LIST/LIST/APPEND/APPENDS, EMPTY_DICT/DICT/SETITEM/
 *   SETITEMS, BINPUT/LONG_BINPUT/MEMOIZE/BINGET/LONG_BINGET, GLOBAL/STACK_GLOBAL, REDUCE, BUILD,
 *   BINPERSID).  Any other opcode is an error naming it.
 * - Globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 *   torch._utils._rebuild_parameter and the storage types torch.{Double,Float,Half,BFloat16,Long,
 *   Int,Short,Char,Byte,Bool}Storage.  Any other global is an error naming it.
 * - REDUCE: OrderedDict() -> an empty dict; _rebuild_tensor_v2(storage, offset, size, stride,
 *   requires_grad, hooks[, metadata]) -> a tensor, checked at once: storage from a persistent id,
 *   rank <= PTH_MAX_DIMS, sizes and strides >= 0 with a product (and its byte size) that does not
 *   overflow, offset + the extent the sizes and strides reach within the storage (any stride
 *   order: checkpoints converted from TensorFlow hold permuted weights); _rebuild_parameter(tensor,
 *   requires_grad, hooks) -> that tensor.  Anything else (another callable, wrong arguments) is
 *   an error.  BUILD is accepted on a dict only (an OrderedDict's attributes, e.g. a state
 *   dict's _metadata) and its state is dropped.
 * - BINPERSID: the id must be torch's storage tuple ('storage', <storage type>, key, location,
 *   numel[, view]) where view is None or (view key, offset, numel) (legacy files).
 * - Values live in the pk_arena until pk_arena_free(); errors (-1 / NULL after sn_error()) name
 *   the file, the byte offset and what was found.  Never recursive: a deep pickle cannot overflow
 *   the C stack.
 */
#ifndef STYLENET_PICKLE_H
#define STYLENET_PICKLE_H
#include <stddef.h>
#include <stdint.h>
#include "io/pth.h"

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR
} pk_kind;

typedef enum { PK_G_ORDERED_DICT, PK_G_REBUILD_TENSOR_V2, PK_G_REBUILD_PARAMETER, PK_G_STORAGE } pk_global;

typedef struct pk_value pk_value;
struct pk_value {
    pk_kind kind;
    int64_t i;             /* BOOL, INT; GLOBAL: pk_global */
    double f;              /* FLOAT */
    char *s;               /* STR (NUL-terminated copy), STORAGE: key */
    size_t len;            /* STR: bytes without the NUL */
    pk_value **items;      /* TUPLE, LIST: n items; DICT: n / 2 key, value pairs in order */
    size_t n, cap;
    pth_dtype dtype;       /* GLOBAL of a storage type, STORAGE, TENSOR */
    int64_t numel;         /* STORAGE: elements of the root storage; TENSOR: product of shape */
    int64_t view_offset;   /* STORAGE: first element of the view in the root storage (legacy) */
    int64_t view_numel;    /* STORAGE: elements of the view (numel when it is no view) */
    pk_value *storage;     /* TENSOR */
    int64_t offset;        /* TENSOR: first element within the (view of the) storage */
    int ndim;              /* TENSOR */
    int64_t shape[PTH_MAX_DIMS], stride[PTH_MAX_DIMS];
    int64_t span;          /* TENSOR: elements from its first to its last one, 0 when empty */
    pk_value *next;        /* the arena's list */
};

typedef struct {
    pk_value *all; /* every value allocated, to free */
    const char *file;
} pk_arena;

void pk_arena_free(pk_arena *a);
/* one pickle from buf[*pos..len); NULL with an error naming a->file */
pk_value *pk_load(pk_arena *a, const uint8_t *buf, size_t len, size_t *pos);
/* bytes per element of a storage dtype */
size_t pk_dtype_size(pth_dtype d);
#endif
