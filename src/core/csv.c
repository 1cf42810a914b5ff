/* csv.c - CSV tables in memory, written atomically. See csv.h. */
#include "core/csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static void put(struct csv *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (c->len + n + 1 > cap)
            cap *= 2;
        c->buf = xrealloc(c->buf, cap);
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

static int needs_quotes(const char *s)
{
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") != NULL ||
           (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'));
}

void csv_field(struct csv *c, const char *s)
{
    if (c->col++)
        put(c, ",", 1);
    if (!needs_quotes(s)) {
        put(c, s, strlen(s));
        return;
    }
    put(c, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        put(c, s, (size_t)(q - s));
        put(c, "\"\"", 2);
    }
    put(c, s, strlen(s));
    put(c, "\"", 1);
}

void csv_fieldf(struct csv *c, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) {
        csv_field(c, tmp);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    csv_field(c, big);
    free(big);
}

void csv_end_row(struct csv *c)
{
    put(c, "\n", 1);
    c->col = 0;
}

int csv_write(const struct csv *c, const char *path, cn_error *e)
{
    struct fileio_chunk ch = {c->buf ? c->buf : "", c->len};
    return fileio_write_atomic(path, &ch, 1, e);
}

void csv_free(struct csv *c)
{
    free(c->buf);
    memset(c, 0, sizeof *c);
}
