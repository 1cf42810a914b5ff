/* textfile.c - whole-file reads split into numbered lines. See textfile.h. */
#include "data/textfile.h"

#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

int text_lines_read(struct text_lines *t, const char *path, size_t max, cn_error *e)
{
    memset(t, 0, sizeof *t);
    size_t len;
    if (fileio_read_all(path, max, &t->buf, &len, e))
        return -1;
    if (memchr(t->buf, '\0', len)) {
        text_lines_free(t);
        return cn_fail(e, "%s: contains a NUL byte, not a text file", path);
    }
    int cap = 0;
    for (char *p = t->buf; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t n = strlen(p);
        if (n && p[n - 1] == '\r')
            p[n - 1] = '\0';
        if (t->n == cap) {
            cap = cap ? 2 * cap : 64;
            t->line = xrealloc(t->line, sizeof *t->line * (size_t)cap);
        }
        t->line[t->n++] = p;
        p = nl ? nl + 1 : p + n;
        if (t->n == 0x7fffffff && *p) {
            text_lines_free(t);
            return cn_fail(e, "%s: too many lines", path);
        }
    }
    return 0;
}

void text_lines_free(struct text_lines *t)
{
    free(t->buf);
    free(t->line);
    memset(t, 0, sizeof *t);
}

char *text_rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}
