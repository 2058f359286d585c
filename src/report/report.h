/* report.h - a training run turned into PNG plots and one self-contained HTML page.
 *
 * report_make(opts) reads opts->run_dir (report/run.h) and writes into opts->out_dir (made if
 * absent; default RUN_DIR/report), each file atomically:
 *   loss.png              per-batch training loss (raw, faint; smoothed), validation loss per epoch,
 *                         phase boundaries; below it the learning rate of each layer group
 *   metrics.png           validation metrics per epoch (F2 / accuracy, per label group, all right)
 *   lr_find.png           the LR finder's smoothed loss against the rate (log), the suggested rate
 *                         marked, the minimum and the steepest descent as dots
 *   confusion_<group>.png one per label group (Style: brand, product), or confusion.png for
 *                         single-label data: rows true, columns predicted, counts in the cells
 *   precision_recall.png  per-class precision and recall, one panel per group
 *   reliability.png       calibration of the validation probabilities (classifier/metrics.h's 15
 *                         bins): accuracy against confidence, for every tag and each label group's
 *                         top-1 (multi-label) or the top-1 (single-label), with the ECE; with a model
 *                         temperature T != 1 (run.json) also the curve before it, the saved
 *                         probabilities mapped back (sigmoid(T logit p), or p^T renormalised)
 *   top_losses.png        the validation images with the highest loss, thumbnails captioned with
 *                         the true and predicted labels, probabilities and loss
 *   report.html           all of the above embedded as base64 data URIs (the one file can be mailed),
 *                         a summary table (task, model, data, final metrics with and without TTA,
 *                         wall time), the per-epoch table, per-class precision/recall, top losses
 * What the run lacks (a run stopped early has no predictions; a run given --lr has no LR sweep) is
 * skipped and said in the result's "missing" list and on the page.
 *
 * Returns a JSON summary (caller cJSON_Delete()s):
 *   {"run_dir", "out_dir", "html", "files": [paths written], "missing": [...], "warnings": [...],
 *    "epochs": N, "predictions": N,
 *    "calibration": {"temperature": T, "tags"|"<group>"|"top1": {"ece", "ece_uncalibrated"}},
 *    "confusion": {"<group>": {"classes": [...], "matrix": [[...]]}},   rows true, columns predicted
 *    "top_losses": [{"rank", "path", "rel", "loss", "truth", "pred"}]}   highest loss first
 * or NULL with sn_error naming the file on a fatal error (run_open's errors; an output that cannot
 * be written).  A validation image that cannot be read is a warning naming it; its tile says
 * "image missing".
 */
#ifndef STYLENET_REPORT_H
#define STYLENET_REPORT_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *run_dir;
    const char *out_dir;  /* NULL: run_dir/report */
    int top_losses;       /* images in top_losses.png (16; 0: none) */
} report_opts;

cJSON *report_make(const report_opts *o);

/* helpers (tested on their own) */
/* fastai's smoothed loss: exponential moving average with beta, divided by 1 - beta^(i+1);
 * non-finite inputs repeat the last smoothed value */
void report_smooth(const double *x, int n, double beta, double *out);
/* RFC 4648 base64 with padding, NUL-terminated; caller frees */
char *report_base64(const uint8_t *data, size_t n);
/* how the HTML page writes a number: integers plainly, |v| >= 100 with one decimal, |v| >= 0.01
 * with four, smaller with three significant digits; "" for NaN */
void report_fmt_number(double v, char *buf, size_t cap);
#endif
