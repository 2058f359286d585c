/* progress.h - how `train` and `lr-find` show a run: the learner's events (train/learner.h)
 * printed by the CLI.
 *
 * - epoch rows: the results table on stdout, its header before the first row;
 * - batch progress on stderr: a bar with rate and ETA on a terminal, else one line per epoch
 *   ("epoch 3: 22 batches, 150.2 img/s, 4.7 s");
 * - notes on stdout, warnings on stderr as "stylenet: <text>".
 */
#ifndef STYLENET_CLI_PROGRESS_H
#define STYLENET_CLI_PROGRESS_H
#include <stdbool.h>
#include "train/learner.h"

typedef struct {
    learner_events events;   /* what learner_opts.events points to */
    bool table_header;       /* the table's header is printed */
} cli_progress;

/* p's events, set up to print; returns &p->events */
const learner_events *cli_progress_init(cli_progress *p);
#endif
