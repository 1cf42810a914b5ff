/* common.c - errors, checked allocation, size arithmetic. */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cn_fail(cn_error *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int cn_wrap(cn_error *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char joined[2 * CN_ERR_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, CN_ERR_MAX, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : CN_MIN((size_t)n, (size_t)CN_ERR_MAX - 1);
    memcpy(joined + len, ": ", 2);
    memcpy(joined + len + 2, e->msg, sizeof e->msg);
    joined[sizeof joined - 1] = '\0';
    memcpy(e->msg, joined, sizeof e->msg - 1);
    e->msg[sizeof e->msg - 1] = '\0';
    return -1;
}

void cn_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", file, line, expr);
    abort();
}

static _Noreturn void out_of_memory(size_t n, const char *file, int line)
{
    fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, n);
    abort();
}

void *cn_xmalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n, file, line);
    return p;
}

void *cn_xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size, file, line);
    return p;
}

void *cn_xrealloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n, file, line);
    return q;
}

int cn_reserve(uint8_t **buf, size_t *cap, size_t need, size_t min, int doubling)
{
    if (need <= *cap)
        return 0;
    size_t n = need;
    if (doubling)
        for (n = *cap ? *cap : min; n < need; n *= 2)
            ;
    uint8_t *q = realloc(*buf, n);
    if (!q)
        return -1;
    *buf = q;
    *cap = n;
    return 0;
}

char *cn_xstrdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = cn_xmalloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

float *cn_alloc_floats(size_t n, const char *what, cn_error *e)
{
    size_t bytes;
    if (cn_mul(&bytes, n ? n : 1, sizeof(float)) || cn_add(&bytes, bytes, 63)) {
        cn_fail(e, "%s: %zu floats is too large to allocate", what, n);
        return NULL;
    }
    bytes &= ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes)) {
        cn_fail(e, "%s: cannot allocate %.1f MiB", what, (double)bytes / (1 << 20));
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void cn_free_floats(float *p)
{
    free(p);
}

int cn_mul(size_t *out, size_t a, size_t b)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int cn_add(size_t *out, size_t a, size_t b)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

/* Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that the
 * commonest typo ("lekay" for "leaky") costs one edit, not two. Three rows of the DP table. */
int cn_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 1000;
    int prev2[65], prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = CN_MIN(prev[j] + 1, cur[j - 1] + 1);
            best = CN_MIN(best, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                best = CN_MIN(best, prev2[j - 2] + 1);
            cur[j] = best;
        }
        memcpy(prev2, prev, sizeof prev);
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

const char *cn_closest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        int d = cn_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    /* A typo is at most a third of the word, and never more than 3 edits. */
    int limit = CN_MIN(3, CN_MAX(1, (int)strlen(word) / 3));
    return best_d <= limit ? best : NULL;
}

uint64_t cn_hash_floats(const float *x, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &x[i], sizeof w);
        h = (h ^ w) * 1099511628211ULL;
    }
    return h;
}
