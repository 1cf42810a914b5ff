/* strbuf.c - growing strings (strbuf.h). Capacity doubles, so n appends cost O(total length). */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static void reserve(struct strbuf *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return;
    size_t want = CN_MAX(b->cap * 2, b->len + extra + 1);
    b->s = xrealloc(b->s, CN_MAX(want, (size_t)256));
    b->cap = CN_MAX(want, (size_t)256);
}

void strbuf_put(struct strbuf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_vprintf(struct strbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    CN_ASSERT(n >= 0);
    reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, again);
    va_end(again);
    b->len += (size_t)n;
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

void strbuf_xml(struct strbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': strbuf_printf(b, "&amp;"); break;
        case '<': strbuf_printf(b, "&lt;"); break;
        case '>': strbuf_printf(b, "&gt;"); break;
        case '"': strbuf_printf(b, "&quot;"); break;
        case '\'': strbuf_printf(b, "&apos;"); break;
        default: strbuf_put(b, s, 1);
        }
    }
}

char *strbuf_take(struct strbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    *b = (struct strbuf){0};
    return s;
}
