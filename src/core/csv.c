/* csv.c - CSV tables in memory, written atomically. See csv.h. The text is a strbuf. */
#include "core/csv.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static int needs_quotes(const char *s)
{
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") != NULL ||
           (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'));
}

void csv_field(struct csv *c, const char *s)
{
    if (c->col++)
        strbuf_put(&c->text, ",", 1);
    if (!needs_quotes(s)) {
        strbuf_put(&c->text, s, strlen(s));
        return;
    }
    strbuf_put(&c->text, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        strbuf_put(&c->text, s, (size_t)(q - s));
        strbuf_put(&c->text, "\"\"", 2);
    }
    strbuf_put(&c->text, s, strlen(s));
    strbuf_put(&c->text, "\"", 1);
}

void csv_fieldf(struct csv *c, const char *fmt, ...)
{
    struct strbuf field = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&field, fmt, ap);
    va_end(ap);
    char *s = strbuf_take(&field);
    csv_field(c, s);
    free(s);
}

void csv_end_row(struct csv *c)
{
    strbuf_put(&c->text, "\n", 1);
    c->col = 0;
}

int csv_write(const struct csv *c, const char *path, cn_error *e)
{
    struct fileio_chunk ch = {c->text.s ? c->text.s : "", c->text.len};
    return fileio_write_atomic(path, &ch, 1, e);
}

void csv_free(struct csv *c)
{
    free(c->text.s);
    memset(c, 0, sizeof *c);
}
