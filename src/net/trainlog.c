/* trainlog.c - the rows of a training log and their CSV form (trainlog.h). The SVG chart is in
 * plot.c. */
#include "net/trainlog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/strbuf.h"
#include "data/textfile.h"

#define NCOLS 8
#define MAX_ROWS 10000000 /* ten million logged iterations: far beyond any run */

void trainlog_init(struct trainlog *t, int k)
{
    *t = (struct trainlog){.k = k};
}

void trainlog_free(struct trainlog *t)
{
    free(t->rows);
    *t = (struct trainlog){.k = t->k};
}

void trainlog_add(struct trainlog *t, const struct trainlog_row *r)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->rows = xrealloc(t->rows, sizeof *t->rows * (size_t)t->cap);
    }
    t->rows[t->n++] = *r;
}

void trainlog_truncate(struct trainlog *t, uint64_t iter)
{
    while (t->n && t->rows[t->n - 1].iter > iter)
        t->n--;
}

static void put_num(struct strbuf *b, double v, const char *sep)
{
    if (isnan(v))
        strbuf_printf(b, "%s", sep);
    else
        strbuf_printf(b, "%.9g%s", v, sep);
}

char *trainlog_csv(const struct trainlog *t)
{
    struct strbuf b = {0};
    strbuf_printf(&b, "iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,top%d\n",
                  t->k);
    for (int i = 0; i < t->n; i++) {
        const struct trainlog_row *r = &t->rows[i];
        strbuf_printf(&b, "%llu,", (unsigned long long)r->iter);
        const double v[NCOLS - 1] = {r->epoch, r->loss, r->avg, r->lr, r->ips, r->top1, r->topk};
        for (int j = 0; j < NCOLS - 1; j++)
            put_num(&b, v[j], j == NCOLS - 2 ? "\n" : ",");
    }
    return strbuf_take(&b);
}

int trainlog_write_csv(const struct trainlog *t, const char *path, cn_error *e)
{
    char *s = trainlog_csv(t);
    struct fileio_chunk c = {s, strlen(s)};
    int rc = fileio_write_atomic(path, &c, 1, e);
    free(s);
    return rc;
}

/* Parses "top<k>" header's k; the other header fields must be exactly ours. */
static int parse_header(struct trainlog *t, const char *line, const char *path, cn_error *e)
{
    static const char want[] = "iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,top";
    char *end;
    if (strncmp(line, want, sizeof want - 1))
        return cn_fail(e, "%s:1: not a cfgnet training log (expected the header '%sK')", path,
                       want);
    errno = 0;
    long k = strtol(line + sizeof want - 1, &end, 10);
    if (end == line + sizeof want - 1 || *end || errno || k < 1 || k > 1 << 24)
        return cn_fail(e, "%s:1: header ends in '%s', expected top<K> with K >= 1", path,
                       line + sizeof want - 1);
    t->k = (int)k;
    return 0;
}

/* One field: a finite number, or (for the accuracy columns) empty meaning not measured. */
static int parse_field(const char *s, size_t len, int col, double *out)
{
    if (len == 0 && col >= NCOLS - 2) {
        *out = NAN;
        return 0;
    }
    char tmp[64], *end;
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    *out = strtod(tmp, &end);
    return *end || errno || !isfinite(*out) || (col == 0 && (*out < 0 || *out > 1e19)) ? -1 : 0;
}

static int parse_row(struct trainlog_row *r, const char *line, const char *path, int lineno,
                     cn_error *e)
{
    double v[NCOLS];
    const char *p = line;
    for (int col = 0; col < NCOLS; col++) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if ((col < NCOLS - 1 && !q) || (col == NCOLS - 1 && q))
            return cn_fail(e, "%s:%d: expected %d comma-separated fields", path, lineno, NCOLS);
        if (parse_field(p, len, col, &v[col]))
            return cn_fail(e, "%s:%d: field %d is not a number", path, lineno, col + 1);
        p = q ? q + 1 : p + len;
    }
    *r = (struct trainlog_row){(uint64_t)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    return 0;
}

int trainlog_read(struct trainlog *t, const char *path, cn_error *e)
{
    struct text_lines lines;
    t->n = 0;
    if (text_lines_read(&lines, path, TRAINLOG_MAX_BYTES, e))
        return -1;
    int rc = lines.n ? parse_header(t, lines.line[0], path, e)
                     : cn_fail(e, "%s: empty; expected a cfgnet training log", path);
    if (!rc && lines.n > MAX_ROWS)
        rc = cn_fail(e, "%s: %d lines, more than the limit of %d rows", path, lines.n, MAX_ROWS);
    for (int i = 1; i < lines.n && !rc; i++) {
        struct trainlog_row r;
        if (!lines.line[i][0] && i == lines.n - 1)
            break;
        rc = parse_row(&r, lines.line[i], path, i + 1, e);
        if (!rc && t->n && r.iter <= t->rows[t->n - 1].iter)
            rc = cn_fail(e, "%s:%d: iteration %llu does not follow %llu", path, i + 1,
                         (unsigned long long)r.iter, (unsigned long long)t->rows[t->n - 1].iter);
        if (!rc)
            trainlog_add(t, &r);
    }
    text_lines_free(&lines);
    if (rc)
        t->n = 0;
    return rc;
}
