/* state.h - a net's parameters to and from safetensors files, by PyTorch state-dict name.
 *
 * Contract
 * - Names and layout are PyTorch's (torchvision / timm state dicts): every param of the net is
 *   the tensor "<module path>.<weight|bias|running_mean|running_var>" with PyTorch's shape
 *   (param.shape); conv weights (param.ohwi) are OIHW in the file and permuted to stylenet's
 *   OHWI at load (and back at save).  Each BN node also has "<name>.num_batches_tracked", a
 *   0-dim I64 tensor, which goes to/from node.tracked; on load it may be absent (node.tracked
 *   is then left as is, as PyTorch does) and any integer dtype with one element is accepted.
 * - Load: float tensors of any float dtype (F32, F16, BF16, F64) convert to float.  A net param
 *   missing from the file, a file tensor that is not a param of the net (an "extra"), a wrong
 *   shape or a non-float dtype is an error naming the file, the tensor and (for shapes) both
 *   shapes, e.g. "r34.safetensors: tensor 'layer1.0.conv1.weight' has shape [64,3,3,3],
 *   expected [64,64,3,3]"; the message counts further problems.  Options relax this by name
 *   prefix (comma-separated lists, "" = everything):
 *     allow_missing: params under these prefixes may be absent and keep their values (a new
 *                    head's init when loading a pretrained body),
 *     ignore_extra:  file tensors under these prefixes are skipped (torchvision's "fc." head).
 *   Everything is checked before anything is copied: a failed load leaves the net unchanged.
 *   Returns the number of net params loaded (>= 0) or -1.
 * - Save: every param (OIHW for conv weights) as F32 plus each BN's num_batches_tracked as 0-dim
 *   I64, i.e. exactly a PyTorch state_dict, so safetensors.torch.load_file() +
 *   model.load_state_dict(strict=True) accepts it.  Metadata is stored in "__metadata__" (the
 *   model-file keys - architecture, head, classes, image size, normalisation - are defined by
 *   the model code, not here).  The write is atomic (see safetensors.h).
 */
#ifndef STYLENET_STATE_H
#define STYLENET_STATE_H
#include "io/safetensors.h"
#include "nn/net.h"

typedef struct {
    const char *allow_missing; /* comma-separated name prefixes; NULL = none allowed */
    const char *ignore_extra;  /* comma-separated name prefixes; NULL = none ignored */
} net_load_opts;

/* opts NULL = strict */
int net_load_safetensors(net *m, const char *path, const net_load_opts *opts);
/* the same from an open file (e.g. after reading its metadata with st_meta()) */
int net_load_st(net *m, const st_file *f, const net_load_opts *opts);

/* meta: n_meta key/value pairs as a flat array {key0, value0, key1, value1, ...} (may be NULL) */
int net_save_safetensors(const net *m, const char *path, const char *const *meta, int n_meta);
/* adds the net's tensors (PyTorch layout) to a writer, for callers that assemble files themselves */
int net_add_to_writer(const net *m, st_writer *w);
#endif
