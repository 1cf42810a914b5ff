/* csv.h - CSV text built in memory and written atomically (RFC 4180: comma separated, CRLF-free
 * "\n" row ends, a field holding a comma, a double quote, a newline or leading/trailing blanks is
 * quoted with its quotes doubled).
 *
 * The whole table is kept in memory and only written at the end with fileio_write_atomic, so a
 * failure half way through a run never leaves a half-written file. Left out: reading CSV.
 */
#ifndef CN_CSV_H
#define CN_CSV_H

#include <stddef.h>

#include "core/common.h"
#include "core/strbuf.h"

struct csv {
    struct strbuf text; /* the table so far (text.s is NULL while empty) */
    int col;            /* fields in the current row so far */
};

/* Appends one field to the current row, quoted when it needs to be. */
void csv_field(struct csv *c, const char *s);

/* csv_field of a printf-formatted string (numbers: never quoted in practice). */
void csv_fieldf(struct csv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the current row. */
void csv_end_row(struct csv *c);

/* Replaces path with the table, atomically (fileio_write_atomic). Returns 0 or -1. */
int csv_write(const struct csv *c, const char *path, cn_error *e);

/* Frees the text; the struct is empty again. */
void csv_free(struct csv *c);

#endif
