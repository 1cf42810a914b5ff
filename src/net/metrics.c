/* metrics.c - top-k, confusion matrix and per-class figures. See metrics.h for the definitions. */
#include "net/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void metrics_top_k(int *idx, const float *v, int n, int k)
{
    for (int j = 0; j < k; j++)
        idx[j] = -1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < k; j++) {
            if (idx[j] < 0 || v[i] > v[idx[j]]) {
                memmove(idx + j + 1, idx + j, sizeof *idx * (size_t)(k - j - 1));
                idx[j] = i;
                break;
            }
        }
    }
}

int confusion_create(struct confusion **out, int classes, int k, cn_error *e)
{
    CN_ASSERT(classes >= 1 && k >= 1 && k <= classes);
    *out = NULL;
    size_t cells;
    if (cn_mul(&cells, (size_t)classes, (size_t)classes) || cells > ((size_t)1 << 30))
        return cn_fail(e, "%d classes: the confusion matrix would not fit in memory", classes);
    struct confusion *c = xcalloc(1, sizeof *c);
    c->classes = classes;
    c->k = k;
    c->count = calloc(cells, sizeof *c->count);
    c->topk = xcalloc((size_t)classes, sizeof *c->topk);
    if (!c->count) {
        confusion_destroy(c);
        return cn_fail(e, "%d classes: out of memory for the confusion matrix", classes);
    }
    *out = c;
    return 0;
}

void confusion_destroy(struct confusion *c)
{
    if (!c)
        return;
    free(c->count);
    free(c->topk);
    free(c);
}

void confusion_add(struct confusion *c, const float *p, int truth)
{
    CN_ASSERT(truth >= 0 && truth < c->classes);
    int idx[64], *rank = c->k <= 64 ? idx : xmalloc(sizeof *rank * (size_t)c->k);
    metrics_top_k(rank, p, c->classes, c->k);
    c->count[(size_t)truth * (size_t)c->classes + (size_t)rank[0]]++;
    for (int j = 0; j < c->k; j++)
        c->topk[truth] += rank[j] == truth;
    c->total++;
    if (rank != idx)
        free(rank);
}

static double ratio(long a, long b)
{
    return b ? (double)a / (double)b : NAN;
}

double confusion_top1(const struct confusion *c)
{
    long hit = 0;
    for (int i = 0; i < c->classes; i++)
        hit += c->count[(size_t)i * (size_t)c->classes + (size_t)i];
    return ratio(hit, c->total);
}

double confusion_topk(const struct confusion *c)
{
    long hit = 0;
    for (int i = 0; i < c->classes; i++)
        hit += c->topk[i];
    return ratio(hit, c->total);
}

void confusion_class(const struct confusion *c, int cls, struct class_stats *s)
{
    size_t n = (size_t)c->classes;
    memset(s, 0, sizeof *s);
    for (size_t j = 0; j < n; j++) {
        s->images += c->count[(size_t)cls * n + j];
        s->predicted += c->count[j * n + (size_t)cls];
    }
    s->correct = c->count[(size_t)cls * n + (size_t)cls];
    s->topk = c->topk[cls];
    s->recall = ratio(s->correct, s->images);
    s->topk_recall = ratio(s->topk, s->images);
    s->precision = ratio(s->correct, s->predicted);
    double pr = s->precision + s->recall;
    s->f1 = pr > 0 ? 2 * s->precision * s->recall / pr : (pr == 0 ? 0.0 : NAN);
}
