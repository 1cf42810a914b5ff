/* trainlog.h - the training log of a run: one row per logged iteration, kept in memory, written
 * as CSV beside the checkpoints and drawn as an SVG chart (loss above, validation accuracy
 * below).
 *
 * CSV: a header line "iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,top<k>",
 * then one line per row; top1 and top<k> are fractions in [0, 1], empty when validation did not
 * run at that iteration. Numbers are printed with %.9g (round-trips floats). Both files are
 * rewritten whole and atomically (fileio_write_atomic), so a reader never sees half a file.
 *
 * Left out: appending (the whole file is rewritten; callers bound how often), other columns.
 */
#ifndef CN_TRAINLOG_H
#define CN_TRAINLOG_H

#include <stdint.h>

#include "core/common.h"

#define TRAINLOG_MAX_BYTES ((size_t)256 << 20) /* a CSV larger than this is refused */

struct trainlog_row {
    uint64_t iter;
    double epoch, loss, avg, lr, ips;
    double top1, topk; /* NAN when not measured at this iteration */
};

struct trainlog {
    struct trainlog_row *rows;
    int n, cap;
    int k; /* the k of top-k (names the CSV column) */
};

void trainlog_init(struct trainlog *t, int k);
void trainlog_free(struct trainlog *t);

/* Appends r (rows are in increasing iteration order: the caller's duty). */
void trainlog_add(struct trainlog *t, const struct trainlog_row *r);

/* Drops the rows after iteration iter (a resumed run continues the log of its checkpoint). */
void trainlog_truncate(struct trainlog *t, uint64_t iter);

/* Reads a CSV written by trainlog_write_csv into t (initialised, emptied first). Returns 0, or
 * -1 with "path:line: problem". */
int trainlog_read(struct trainlog *t, const char *path, cn_error *e);

/* The CSV text (malloc'd), and writing it atomically to path. */
char *trainlog_csv(const struct trainlog *t);
int trainlog_write_csv(const struct trainlog *t, const char *path, cn_error *e);

/* The SVG chart (malloc'd): title on top, loss and its moving average over iterations in the
 * upper panel, validation top-1 and top-k (percent) in the lower one; and writing it to path. */
char *trainlog_svg(const struct trainlog *t, const char *title);
int trainlog_write_svg(const struct trainlog *t, const char *title, const char *path, cn_error *e);

#endif
