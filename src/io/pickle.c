/* pickle.c - the restricted unpickler for PyTorch state dicts (see pickle.h). */
#include "io/pickle.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

/* values one pickle may create (each needs about 200 bytes): bounds the memory a hostile file takes */
#define PK_MAX_VALUES (1u << 21)

typedef struct {
    pk_arena *a;
    const uint8_t *b;
    size_t len, pos, op_at; /* op_at: offset of the opcode being run, for messages */
    uint8_t op;
    pk_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nm, mcap;
    pk_value **memo;
    size_t nmemo, n_memoized;
    size_t n_values;
} pk_state;

static const struct { const char *module, *name; pk_global g; pth_dtype dtype; } globals[] = {
    {"collections", "OrderedDict", PK_G_ORDERED_DICT, PTH_F32},
    {"torch._utils", "_rebuild_tensor_v2", PK_G_REBUILD_TENSOR_V2, PTH_F32},
    {"torch._utils", "_rebuild_parameter", PK_G_REBUILD_PARAMETER, PTH_F32},
    {"torch", "FloatStorage", PK_G_STORAGE, PTH_F32},
    {"torch", "DoubleStorage", PK_G_STORAGE, PTH_F64},
    {"torch", "HalfStorage", PK_G_STORAGE, PTH_F16},
    {"torch", "BFloat16Storage", PK_G_STORAGE, PTH_BF16},
    {"torch", "LongStorage", PK_G_STORAGE, PTH_I64},
    {"torch", "IntStorage", PK_G_STORAGE, PTH_I32},
    {"torch", "ShortStorage", PK_G_STORAGE, PTH_I16},
    {"torch", "CharStorage", PK_G_STORAGE, PTH_I8},
    {"torch", "ByteStorage", PK_G_STORAGE, PTH_U8},
    {"torch", "BoolStorage", PK_G_STORAGE, PTH_BOOL},
};

size_t pk_dtype_size(pth_dtype d) {
    static const size_t sz[] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
    return (unsigned)d < sizeof sz / sizeof sz[0] ? sz[d] : 1;
}

void pk_arena_free(pk_arena *a) {
    pk_value *v = a->all;
    while (v) {
        pk_value *next = v->next;
        free(v->items);
        free(v->s);
        free(v);
        v = next;
    }
    a->all = NULL;
}

static int fail(pk_state *s, const char *what) {
    return sn_error("%s: pickle opcode 0x%02x at byte %zu: %s", s->a->file, s->op, s->op_at, what);
}

static pk_value *new_value(pk_state *s, pk_kind kind) {
    if (++s->n_values > PK_MAX_VALUES) {
        fail(s, "more than 2M objects in one pickle");
        return NULL;
    }
    pk_value *v = calloc(1, sizeof *v);
    if (!v) {
        sn_error("%s: out of memory unpickling", s->a->file);
        return NULL;
    }
    v->kind = kind;
    v->next = s->a->all;
    s->a->all = v;
    return v;
}

static int push(pk_state *s, pk_value *v) {
    if (!v) return -1;
    if (s->sp == s->scap) {
        size_t cap = s->scap ? 2 * s->scap : 64;
        pk_value **p = realloc(s->stack, cap * sizeof *p);
        if (!p) return sn_error("%s: out of memory unpickling", s->a->file);
        s->stack = p;
        s->scap = cap;
    }
    s->stack[s->sp++] = v;
    return 0;
}

/* the stack's floor: values below the innermost mark cannot be popped */
static size_t floor_sp(const pk_state *s) { return s->nm ? s->marks[s->nm - 1] : 0; }

static pk_value *pop(pk_state *s) {
    if (s->sp <= floor_sp(s)) {
        fail(s, "stack underflow");
        return NULL;
    }
    return s->stack[--s->sp];
}

static int append_item(pk_state *s, pk_value *c, pk_value *v) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        pk_value **p = realloc(c->items, cap * sizeof *p);
        if (!p) return sn_error("%s: out of memory unpickling", s->a->file);
        c->items = p;
        c->cap = cap;
    }
    c->items[c->n++] = v;
    return 0;
}

/* the values since the innermost mark, removed from the stack with the mark: *first, *n */
static int pop_mark(pk_state *s, size_t *first, size_t *n) {
    if (!s->nm) return fail(s, "no MARK on the stack");
    *first = s->marks[--s->nm];
    *n = s->sp - *first;
    s->sp = *first;
    return 0;
}

/* a container of kind from n values at stack[first..] */
static pk_value *collect(pk_state *s, pk_kind kind, size_t first, size_t n) {
    pk_value *v = new_value(s, kind);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++)
        if (append_item(s, v, s->stack[first + i]) < 0) return NULL;
    return v;
}

static const uint8_t *take(pk_state *s, size_t n) {
    if (n > s->len - s->pos) {
        sn_error("%s: truncated: pickle opcode 0x%02x at byte %zu needs %zu bytes, %zu left", s->a->file, s->op,
                 s->op_at, n, s->len - s->pos);
        return NULL;
    }
    const uint8_t *p = s->b + s->pos;
    s->pos += n;
    return p;
}

static int read_uint(pk_state *s, size_t n, uint64_t *out) {
    const uint8_t *p = take(s, n);
    if (!p) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    *out = v;
    return 0;
}

static pk_value *int_value(pk_state *s, int64_t i) {
    pk_value *v = new_value(s, PK_INT);
    if (v) v->i = i;
    return v;
}

static int op_string(pk_state *s, size_t len_bytes) {
    uint64_t n;
    if (read_uint(s, len_bytes, &n) < 0) return -1;
    if (len_bytes == 4 && s->op == 'T' && n > INT32_MAX) return fail(s, "negative string length");
    const uint8_t *p = take(s, n);
    if (!p) return -1;
    pk_value *v = new_value(s, PK_STR);
    if (!v) return -1;
    if (!(v->s = malloc(n + 1))) return sn_error("%s: out of memory unpickling", s->a->file);
    memcpy(v->s, p, n);
    v->s[n] = 0;
    v->len = n;
    return push(s, v);
}

static int op_long1(pk_state *s) {
    uint64_t n, v;
    if (read_uint(s, 1, &n) < 0) return -1;
    if (n > 8) return fail(s, "integer wider than 64 bits");
    if (read_uint(s, n, &v) < 0) return -1;
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n); /* sign-extend */
    int64_t i;
    memcpy(&i, &v, 8);
    return push(s, int_value(s, i));
}

static int op_global(pk_state *s, const char *module, const char *name) {
    for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++)
        if (!strcmp(module, globals[k].module) && !strcmp(name, globals[k].name)) {
            pk_value *v = new_value(s, PK_GLOBAL);
            if (!v) return -1;
            v->i = globals[k].g;
            v->dtype = globals[k].dtype;
            return push(s, v);
        }
    return sn_error("%s: pickle at byte %zu refers to the global '%.100s.%.100s', which is not allowed in a "
                    "state dict (refused, not executed)", s->a->file, s->op_at, module, name);
}

/* GLOBAL: "module\nname\n" */
static int op_global_text(pk_state *s) {
    char part[2][256];
    for (int k = 0; k < 2; k++) {
        size_t i = 0;
        for (;;) {
            const uint8_t *c = take(s, 1);
            if (!c) return -1;
            if (*c == '\n') break;
            if (i == sizeof part[k] - 1 || !*c) return fail(s, "GLOBAL name too long or not text");
            part[k][i++] = (char)*c;
        }
        part[k][i] = 0;
    }
    return op_global(s, part[0], part[1]);
}

static int op_stack_global(pk_state *s) {
    pk_value *name = pop(s), *module = name ? pop(s) : NULL;
    if (!module) return -1;
    if (name->kind != PK_STR || module->kind != PK_STR) return fail(s, "STACK_GLOBAL of non-strings");
    if (strlen(name->s) != name->len || strlen(module->s) != module->len) return fail(s, "STACK_GLOBAL name holds NUL");
    return op_global(s, module->s, name->s);
}

static bool is_int(const pk_value *v) { return v->kind == PK_INT || v->kind == PK_BOOL; }
static bool key_char_ok(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '.';
}

/* BINPERSID: ('storage', <storage type>, key, location, numel[, None | (view key, offset, numel)]) */
static int op_persid(pk_state *s) {
    pk_value *t = pop(s);
    if (!t) return -1;
    if (t->kind != PK_TUPLE || (t->n != 5 && t->n != 6))
        return fail(s, "persistent id is not torch's ('storage', type, key, location, numel) tuple");
    pk_value **a = t->items;
    if (a[0]->kind != PK_STR || strcmp(a[0]->s, "storage")) return fail(s, "persistent id is not a 'storage'");
    if (a[1]->kind != PK_GLOBAL || a[1]->i != PK_G_STORAGE) return fail(s, "persistent id without a storage type");
    if (a[2]->kind != PK_STR || a[2]->len == 0 || a[2]->len > 64) return fail(s, "storage key is not a short string");
    for (size_t i = 0; i < a[2]->len; i++)
        if (!key_char_ok(a[2]->s[i])) return fail(s, "storage key holds characters other than [A-Za-z0-9_.-]");
    if (a[3]->kind != PK_STR) return fail(s, "storage location is not a string");
    if (!is_int(a[4]) || a[4]->i < 0) return fail(s, "storage size is not an integer >= 0");
    pk_value *v = new_value(s, PK_STORAGE);
    if (!v) return -1;
    v->dtype = a[1]->dtype;
    v->numel = a[4]->i;
    v->view_numel = v->numel;
    if (!(v->s = strdup(a[2]->s))) return sn_error("%s: out of memory unpickling", s->a->file);
    if (t->n == 6 && a[5]->kind != PK_NONE) {
        pk_value *w = a[5];
        if (w->kind != PK_TUPLE || w->n != 3 || !is_int(w->items[1]) || !is_int(w->items[2]))
            return fail(s, "storage view is not (key, offset, numel)");
        int64_t off = w->items[1]->i, n = w->items[2]->i;
        if (off < 0 || n < 0 || off > v->numel || n > v->numel - off)
            return fail(s, "storage view reaches outside its storage");
        v->view_offset = off;
        v->view_numel = n;
    }
    return push(s, v);
}

/* shape and stride tuples -> t->shape, t->stride, t->numel and t->span (elements from the first
 * to the last one the tensor reads, 0 when empty); checks signs and overflow */
static int tensor_shape(pk_state *s, pk_value *t, const pk_value *size, const pk_value *stride) {
    if (size->kind != PK_TUPLE || stride->kind != PK_TUPLE || size->n != stride->n)
        return fail(s, "tensor size and stride are not tuples of one length");
    if (size->n > PTH_MAX_DIMS) return fail(s, "tensor of more than 8 dimensions");
    t->ndim = (int)size->n;
    int64_t numel = 1, last = 0, bytes;
    for (size_t d = 0; d < size->n; d++) {
        if (!is_int(size->items[d]) || !is_int(stride->items[d])) return fail(s, "tensor size or stride not integers");
        t->shape[d] = size->items[d]->i;
        t->stride[d] = stride->items[d]->i;
        if (t->shape[d] < 0 || t->stride[d] < 0) return fail(s, "negative tensor size or stride");
        if (__builtin_mul_overflow(numel, t->shape[d], &numel)) return fail(s, "tensor size overflows");
    }
    if (__builtin_mul_overflow(numel, (int64_t)pk_dtype_size(t->dtype), &bytes)) return fail(s, "tensor size overflows");
    t->numel = numel;
    for (int d = 0; numel && d < t->ndim; d++) {
        int64_t step;
        if (__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &step) || __builtin_add_overflow(last, step, &last))
            return fail(s, "tensor stride overflows");
    }
    t->span = numel ? last + 1 : 0;
    return 0;
}

static int reduce_tensor(pk_state *s, pk_value *args) {
    if (args->n != 6 && args->n != 7) return fail(s, "_rebuild_tensor_v2 takes 6 or 7 arguments");
    pk_value **a = args->items, *st = a[0];
    if (st->kind != PK_STORAGE) return fail(s, "_rebuild_tensor_v2 of something that is not a storage");
    if (!is_int(a[1]) || a[1]->i < 0) return fail(s, "tensor storage offset is not an integer >= 0");
    if (a[4]->kind != PK_BOOL || a[5]->kind != PK_DICT || (args->n == 7 && a[6]->kind != PK_DICT))
        return fail(s, "_rebuild_tensor_v2 arguments of the wrong kinds");
    pk_value *t = new_value(s, PK_TENSOR);
    if (!t) return -1;
    t->storage = st;
    t->dtype = st->dtype;
    t->offset = a[1]->i;
    if (tensor_shape(s, t, a[2], a[3]) < 0) return -1;
    if (t->offset > st->view_numel || t->span > st->view_numel - t->offset)
        return fail(s, "tensor reaches outside its storage (offset + extent of size and stride > storage size)");
    return push(s, t);
}

static int op_reduce(pk_state *s) {
    pk_value *args = pop(s), *f = args ? pop(s) : NULL;
    if (!f) return -1;
    if (f->kind != PK_GLOBAL) return fail(s, "REDUCE of something that is not an allowed global");
    if (args->kind != PK_TUPLE) return fail(s, "REDUCE arguments are not a tuple");
    switch ((pk_global)f->i) {
    case PK_G_ORDERED_DICT:
        if (args->n) return fail(s, "OrderedDict() with arguments");
        return push(s, new_value(s, PK_DICT));
    case PK_G_REBUILD_TENSOR_V2:
        return reduce_tensor(s, args);
    case PK_G_REBUILD_PARAMETER:
        if (args->n != 3 || args->items[0]->kind != PK_TENSOR)
            return fail(s, "_rebuild_parameter takes (tensor, requires_grad, hooks)");
        return push(s, args->items[0]);
    default:
        return fail(s, "REDUCE of a storage type (only readable as a persistent id)");
    }
}

static int op_setitems(pk_state *s, size_t first, size_t n) {
    if (first == 0 || n % 2) return fail(s, "SETITEMS without a dict and key, value pairs");
    pk_value *d = s->stack[first - 1];
    if (d->kind != PK_DICT) return fail(s, "SETITEM(S) on something that is not a dict");
    for (size_t i = 0; i < n; i++)
        if (append_item(s, d, s->stack[first + i]) < 0) return -1;
    s->sp = first;
    return 0;
}

static int op_appends(pk_state *s, size_t first, size_t n) {
    if (first == 0) return fail(s, "APPEND(S) without a list");
    pk_value *l = s->stack[first - 1];
    if (l->kind != PK_LIST) return fail(s, "APPEND(S) on something that is not a list");
    for (size_t i = 0; i < n; i++)
        if (append_item(s, l, s->stack[first + i]) < 0) return -1;
    s->sp = first;
    return 0;
}

static int memo_put(pk_state *s, uint64_t idx) {
    if (!s->sp) return fail(s, "memo store from an empty stack");
    if (idx >= PK_MAX_VALUES) return fail(s, "memo index out of range");
    if (idx >= s->nmemo) {
        size_t cap = s->nmemo ? s->nmemo : 64;
        while (cap <= idx) cap *= 2;
        pk_value **p = realloc(s->memo, cap * sizeof *p);
        if (!p) return sn_error("%s: out of memory unpickling", s->a->file);
        memset(p + s->nmemo, 0, (cap - s->nmemo) * sizeof *p);
        s->memo = p;
        s->nmemo = cap;
    }
    if (!s->memo[idx]) s->n_memoized++;
    s->memo[idx] = s->stack[s->sp - 1];
    return 0;
}

static int memo_get(pk_state *s, uint64_t idx) {
    if (idx >= s->nmemo || !s->memo[idx]) return fail(s, "memo get of an index never stored");
    return push(s, s->memo[idx]);
}

static int op_mark(pk_state *s) {
    if (s->nm == s->mcap) {
        size_t cap = s->mcap ? 2 * s->mcap : 16;
        size_t *p = realloc(s->marks, cap * sizeof *p);
        if (!p) return sn_error("%s: out of memory unpickling", s->a->file);
        s->marks = p;
        s->mcap = cap;
    }
    s->marks[s->nm++] = s->sp;
    return 0;
}

/* the opcodes that build containers from marks or the stack's top */
static int op_container(pk_state *s) {
    size_t first = 0, n = 0;
    pk_value *v;
    switch (s->op) {
    case ')': return push(s, new_value(s, PK_TUPLE));
    case ']': return push(s, new_value(s, PK_LIST));
    case '}': return push(s, new_value(s, PK_DICT));
    case 't': case 'l': case 'd':
        if (pop_mark(s, &first, &n) < 0) return -1;
        if (s->op == 'd' && n % 2) return fail(s, "DICT of an odd number of values");
        return push(s, collect(s, s->op == 't' ? PK_TUPLE : s->op == 'l' ? PK_LIST : PK_DICT, first, n));
    case 0x85: case 0x86: case 0x87:
        n = (size_t)(s->op - 0x84);
        if (s->sp < floor_sp(s) + n) return fail(s, "stack underflow");
        s->sp -= n;
        return push(s, collect(s, PK_TUPLE, s->sp, n));
    case 'a': case 's':
        n = s->op == 'a' ? 1 : 2;
        if (s->sp < floor_sp(s) + n) return fail(s, "stack underflow");
        return s->op == 'a' ? op_appends(s, s->sp - n, n) : op_setitems(s, s->sp - n, n);
    case 'e': case 'u':
        if (pop_mark(s, &first, &n) < 0) return -1;
        return s->op == 'e' ? op_appends(s, first, n) : op_setitems(s, first, n);
    case 'b':
        if (!(v = pop(s))) return -1;
        if (!s->sp || s->stack[s->sp - 1]->kind != PK_DICT) return fail(s, "BUILD on something that is not a dict");
        return 0; /* an OrderedDict's attributes (a state dict's _metadata): dropped */
    default:
        return fail(s, "unsupported opcode in a state dict (refused)");
    }
}

/* scalars, strings, memo and globals; *done after STOP */
static int op_step(pk_state *s) {
    uint64_t u;
    switch (s->op) {
    case 0x80: /* PROTO */
        if (read_uint(s, 1, &u) < 0) return -1;
        return u >= 2 && u <= 5 ? 0 : fail(s, "pickle protocol not 2 to 5");
    case 0x95: return read_uint(s, 8, &u); /* FRAME: advisory */
    case '(': return op_mark(s);
    case '0': return pop(s) ? 0 : -1;
    case '1': { size_t f, n; return pop_mark(s, &f, &n); }
    case 'N': return push(s, new_value(s, PK_NONE));
    case 0x88: case 0x89: {
        pk_value *v = new_value(s, PK_BOOL);
        if (v) v->i = s->op == 0x88;
        return push(s, v);
    }
    case 'J': if (read_uint(s, 4, &u) < 0) return -1; return push(s, int_value(s, (int32_t)(uint32_t)u));
    case 'K': if (read_uint(s, 1, &u) < 0) return -1; return push(s, int_value(s, (int64_t)u));
    case 'M': if (read_uint(s, 2, &u) < 0) return -1; return push(s, int_value(s, (int64_t)u));
    case 0x8a: return op_long1(s);
    case 'G': {
        const uint8_t *p = take(s, 8);
        if (!p) return -1;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | p[i]; /* big-endian */
        pk_value *v = new_value(s, PK_FLOAT);
        if (v) memcpy(&v->f, &bits, 8);
        return push(s, v);
    }
    case 'X': case 'T': return op_string(s, 4);
    case 0x8c: case 'U': return op_string(s, 1);
    case 0x8d: return op_string(s, 8);
    case 'q': if (read_uint(s, 1, &u) < 0) return -1; return memo_put(s, u);
    case 'r': if (read_uint(s, 4, &u) < 0) return -1; return memo_put(s, u);
    case 0x94: return memo_put(s, s->n_memoized);
    case 'h': if (read_uint(s, 1, &u) < 0) return -1; return memo_get(s, u);
    case 'j': if (read_uint(s, 4, &u) < 0) return -1; return memo_get(s, u);
    case 'c': return op_global_text(s);
    case 0x93: return op_stack_global(s);
    case 'R': return op_reduce(s);
    case 'Q': return op_persid(s);
    default: return op_container(s);
    }
}

pk_value *pk_load(pk_arena *a, const uint8_t *buf, size_t len, size_t *pos) {
    pk_state s = {.a = a, .b = buf, .len = len, .pos = *pos};
    pk_value *result = NULL;
    for (;;) {
        s.op_at = s.pos;
        if (s.pos >= s.len) {
            sn_error("%s: truncated: pickle ends at byte %zu without STOP", a->file, s.pos);
            break;
        }
        s.op = s.b[s.pos++];
        if (s.op == '.') { /* STOP */
            if (s.nm) { fail(&s, "STOP with an open MARK"); break; }
            if ((result = pop(&s))) *pos = s.pos;
            break;
        }
        if (op_step(&s) < 0) break;
    }
    free(s.stack);
    free(s.marks);
    free(s.memo);
    return result;
}
