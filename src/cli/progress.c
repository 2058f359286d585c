/* progress.c - the learner's events printed for the command line (see progress.h). */
#include "cli/progress.h"
#include <stdio.h>
#include <unistd.h>

static void header(const learner_epoch_event *e) {
    printf("%5s  %-8s %4s  %10s", "epoch", "phase", "size", "train_loss");
    if (!e->valid) { /* no validation images: the training loss alone */
        printf("  %7s\n", "time");
        return;
    }
    printf("  %10s", "valid_loss");
    if (e->multi) printf("  %6s", "F2");
    else printf("  %8s", "accuracy");
    for (int g = 0; g < e->n_groups; g++) printf("  %8.8s", e->group_names[g]);
    if (e->n_groups) printf("  %6s", "both");
    printf("  %7s\n", "time");
}

/* a row of the results table on stdout */
static void on_epoch(void *ctx, const learner_epoch_event *e) {
    cli_progress *p = ctx;
    if (!p->table_header) {
        header(e);
        p->table_header = true;
    }
    const eval_result *r = e->valid;
    printf("%5d  %-8s %4d  %10.4f", e->epoch, e->phase, e->size, e->train_loss);
    if (!r) { /* no validation images */
        printf("  %6.1fs\n", e->seconds);
        fflush(stdout);
        return;
    }
    printf("  %10.4f", r->loss);
    if (e->multi) printf("  %6.4f", r->fbeta);
    else printf("  %8.4f", r->accuracy);
    for (int g = 0; g < e->n_groups; g++) printf("  %8.4f", r->group_acc[g]);
    if (e->n_groups) printf("  %6.4f", r->all_right);
    printf("  %6.1fs\n", e->seconds);
    fflush(stdout);
}

/* a bar on a terminal (stderr), else a line when the batches of an epoch are done */
static void on_progress(void *ctx, const learner_progress_event *pe) {
    (void)ctx;
    const bool tty = isatty(2);
    if (pe->end) { /* the LR finder's sweep: close its bar */
        if (tty) fputc('\n', stderr);
        return;
    }
    const int done = pe->done, total = pe->total;
    double el = pe->seconds, rate = el > 0 ? pe->images / el : 0;
    double eta = done > 0 ? el / done * (total - done) : 0;
    if (tty) {
        int w = 30, fill = total ? done * w / total : w;
        fprintf(stderr, "\r%-12s [", pe->what);
        for (int i = 0; i < w; i++) fputc(i < fill ? '#' : '.', stderr);
        fprintf(stderr, "] %d/%d  %6.1f img/s  ETA %02d:%02d ", done, total, rate, (int)eta / 60, (int)eta % 60);
        if (done == total) fputc('\n', stderr);
        fflush(stderr);
    } else if (done == total) {
        fprintf(stderr, "%s: %d batches, %.1f img/s, %.1f s\n", pe->what, total, rate, el);
    }
}

static void on_message(void *ctx, learner_msg kind, const char *text) {
    (void)ctx;
    if (kind == LEARNER_NOTE) printf("%s\n", text);
    else fprintf(stderr, "stylenet: %s\n", text);
}

const learner_events *cli_progress_init(cli_progress *p) {
    *p = (cli_progress){.events = {.ctx = p, .epoch = on_epoch, .progress = on_progress, .message = on_message}};
    return &p->events;
}
