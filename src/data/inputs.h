/* inputs.h - the images a command line names: single images, list files and directories, in
 * the order given, expanded to one list of paths (for `classifier predict`).
 *
 * An argument is
 *   - a directory: every regular file in it whose name does not start with '.', sorted by name
 *     (strcmp, i.e. byte order), not recursive (subdirectories are skipped);
 *   - a list file, when its name ends in ".list" or ".txt": one path per line, used as written
 *     (relative to the current directory, as image lists are); blank lines skipped, CRLF and
 *     trailing blanks tolerated;
 *   - otherwise an image.
 * Every path must then be an image (inputs_check): a non-image anywhere is an error naming it,
 * and where it came from, before anything is predicted.
 */
#ifndef CN_DATA_INPUTS_H
#define CN_DATA_INPUTS_H

#include "core/common.h"

struct inputs {
    char **paths; /* n paths */
    char **where; /* n origins for messages: "x.list:3" for a listed path, else NULL (a
                     path from a directory starts with the directory) */
    int n, cap;
};

/* Appends the images arg names (see above). An empty directory or list is an error. Returns 0,
 * or -1 with "arg: problem". */
int inputs_add(struct inputs *in, const char *arg, cn_error *e);

/* Checks every path's header (image_check). Returns 0, or -1 with the first failure, prefixed
 * by its origin: "x.list:3: a.png: cannot open: No such file or directory". */
int inputs_check(const struct inputs *in, cn_error *e);

/* Frees everything; the struct is empty again. */
void inputs_free(struct inputs *in);

#endif
