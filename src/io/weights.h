/* weights.h - open any weights file stylenet reads by parameter name as a safetensors view.
 *
 * Contract
 * - weights_open_st(path) tells the format from the file's content, never its name: a PyTorch
 *   checkpoint (zip or legacy, io/pth.h) is read and re-expressed in memory as a safetensors file
 *   (float tensors as F32, integer and bool tensors as I64, same names and shapes, laid out as
 *   st_writer lays out a file); anything else goes to st_open().  Callers then use the st_*
 *   accessors and net_load_st() alike for both.  The returned file's name (st_filename) is path.
 * - A checkpoint whose float tensors were not float32 gets the metadata entry
 *   "pth.converted" = the number of such tensors (F16/BF16/F64 converted to float).
 * - NULL with an error naming the file on failure; st_close() frees the result.
 */
#ifndef STYLENET_WEIGHTS_H
#define STYLENET_WEIGHTS_H
#include "io/pth.h"
#include "io/safetensors.h"

st_file *weights_open_st(const char *path);
/* an open checkpoint as an in-memory safetensors file named name */
st_file *pth_to_st(const pth_file *f, const char *name);
#endif
