/* textfile.h - a small text file read whole and split into numbered lines: the common ground of
 * label files, name files and image lists.
 *
 * Each line loses its '\n' and any trailing '\r' (CRLF files read like LF files); nothing else is
 * trimmed, and blank lines are kept (as "") so that callers decide what a blank line means and
 * line numbers stay those an editor shows. A file with a NUL byte is rejected as not text.
 */
#ifndef CN_DATA_TEXTFILE_H
#define CN_DATA_TEXTFILE_H

#include <stddef.h>

#include "core/common.h"

struct text_lines {
    char *buf;   /* the file's bytes, with each line end replaced by '\0' */
    char **line; /* n pointers into buf */
    int n;       /* line i (0-based) is line i+1 of the file */
};

/* Reads path (at most max bytes, else an error) into *t. Returns 0, or -1 with "path: problem"
 * in e and *t empty. Free with text_lines_free. */
int text_lines_read(struct text_lines *t, const char *path, size_t max, cn_error *e);
void text_lines_free(struct text_lines *t);

/* Removes trailing spaces, tabs and '\r' from s in place; returns s. */
char *text_rstrip(char *s);

#endif
