/* strbuf.h - a growing, always NUL-terminated string for building text files (CSV, SVG) before
 * one atomic write. Allocation failure aborts (xrealloc): the texts built here are small. */
#ifndef CN_STRBUF_H
#define CN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *s;    /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes before the NUL */
    size_t cap;
};

/* Appends the n bytes at s (which need not be NUL-terminated). */
void strbuf_put(struct strbuf *b, const char *s, size_t n);
/* Appends printf-formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strbuf_printf with a va_list (ap is used up). */
void strbuf_vprintf(struct strbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s with XML's five special characters escaped (&amp; &lt; &gt; &quot; &apos;). */
void strbuf_xml(struct strbuf *b, const char *s);
/* Hands over the string (never NULL: "" when nothing was appended); b is empty afterwards. */
char *strbuf_take(struct strbuf *b);

#endif
