/* list.h - image lists (one path per line) and the class of each image, taken from its path.
 *
 * Darknet's rule: an image's class is the label whose name occurs in its path (anywhere in it,
 * directories included). Unlike Darknet, which silently takes the last match, a path must contain
 * exactly one label: none, or more than one, is an error naming the path and the candidates.
 * List files: blank lines are skipped, CRLF and trailing blanks are tolerated, paths are used as
 * written (relative to the current directory).
 */
#ifndef CN_DATA_LIST_H
#define CN_DATA_LIST_H

#include "core/common.h"

struct image_list {
    char *path;   /* the list file, for messages */
    int n;        /* >= 1 */
    char **paths; /* n image paths */
    int *labels;  /* n classes, each in [0, nlabels) */
    int *lines;   /* n line numbers in the list file */
};

/* Finds the one label among labels[0..nlabels) that occurs in path and writes its index to *out.
 * Returns 0, or -1 with a message such as "data/x/cat_dog.png: matches 2 labels (cat, dog); each
 * path must contain exactly one label name" (with a note when one label is part of another). */
int label_from_path(const char *path, char *const *labels, int nlabels, int *out, cn_error *e);

/* Reads the list file at path and derives every image's label. Returns 0 with *out set, or -1
 * with *out NULL and "path:line: problem" in e; an empty list is "path: no images listed".
 * path NULL (a .data file without train= or valid=) is an error too. Images are not opened
 * here (see loader_check_all). Free with image_list_destroy. */
int image_list_load(struct image_list **out, const char *path, char *const *labels, int nlabels,
                    cn_error *e);

/* Frees l; NULL is a no-op. */
void image_list_destroy(struct image_list *l);

#endif
