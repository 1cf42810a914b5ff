/* metrics.h - classification metrics from predicted probabilities: top-1 and top-k accuracy, a
 * confusion matrix, and per-class precision and recall.
 *
 * The confusion matrix counts images by [true class][predicted class], the prediction being the
 * top-1 class (ties go to the lower class index, as in metrics_top_k). Per class c:
 *     images    = row sum of c      (images whose true class is c)
 *     predicted = column sum of c   (images predicted as c)
 *     recall    = count[c][c] / images     -- also the class's top-1 accuracy
 *     top-k     = images of class c with c among the k most probable / images
 *     precision = count[c][c] / predicted
 *     F1        = 2 precision recall / (precision + recall)
 * A ratio with a zero denominator is NAN (a class absent from the set, or never predicted).
 */
#ifndef CN_METRICS_H
#define CN_METRICS_H

#include "core/common.h"

struct confusion {
    int classes, k;
    long *count; /* classes x classes, [truth * classes + predicted] */
    long *topk;  /* classes: images of the class with the true class among the top k */
    long total;
};

struct class_stats {
    long images, predicted, correct, topk;
    double recall, topk_recall, precision, f1;
};

/* Indices of the k largest of v[0..n) into idx, best first; ties keep the lower index. */
void metrics_top_k(int *idx, const float *v, int n, int k);

/* An empty matrix for classes classes and top-k with 1 <= k <= classes. Returns 0, or -1 when
 * classes * classes counts do not fit in memory. Free with confusion_destroy. */
int confusion_create(struct confusion **out, int classes, int k, cn_error *e);
void confusion_destroy(struct confusion *c);

/* Counts one image of true class truth (0 <= truth < classes) with class probabilities p. */
void confusion_add(struct confusion *c, const float *p, int truth);

/* Top-1 (trace / total) and top-k accuracy over everything added; NAN when nothing was. */
double confusion_top1(const struct confusion *c);
double confusion_topk(const struct confusion *c);

/* The per-class figures above, for class cls. */
void confusion_class(const struct confusion *c, int cls, struct class_stats *s);

#endif
