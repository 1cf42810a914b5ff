/* datafile.h - Darknet's .data file for classification, and the label and name files it names.
 *
 * A .data file is key=value lines without sections (cfg.h's flat mode, so comments, CRLF and
 * "did you mean" for unknown keys come from the cfg reader). Keys, with their defaults:
 *   classes=  (required, >= 1)     number of classes
 *   labels=   (required, except for   file of labels, one per line, in class order; a training image's
 *             directory trees and  class is the label its path contains, its class folder, or the
 *             IDX sets)            label given on its line (list.h). Without it: a directory
 *                                  tree's sorted class folders (ImageFolder), or "0".."classes-1"
 *   names=    (default: labels)    file of display names, one per line, same count as labels
 *   class_weights= (default: none) classes positive numbers, per-class loss weights: the truth
 *                                  row of an image of class k is scaled by weight k (so the
 *                                  softmax cross-entropy of that image is weighted)
 *   train=, valid=  (default: none) image sets: a list file, a directory tree or an IDX file
 *                                  (list.h)
 *   backup=   (default "backup/")  checkpoint directory
 *   top=      (default 1, 1..classes) k for top-k accuracy and predictions
 * Every other key is an error. Relative paths are used as written, i.e. relative to the current
 * directory, as in Darknet.
 *
 * Label files: trailing '\r' and blank lines at the end are tolerated; an empty label, one with
 * leading or trailing blanks, or a duplicate is an error naming the file and line. Name files may
 * repeat or contain spaces ("Ankle boot") but not be empty.
 */
#ifndef CN_DATA_DATAFILE_H
#define CN_DATA_DATAFILE_H

#include "core/common.h"

struct data_cfg {
    char *path; /* the .data file, for messages */
    int classes;
    char *train; /* NULL when the key is absent */
    char *valid; /* NULL when the key is absent */
    char *labels_path; /* NULL when labels= is absent (labels derived, see above) */
    char *names_path;  /* equals labels_path when names= is absent */
    float *class_weights; /* classes values, or NULL */
    char *backup;
    int top;
    char **labels; /* classes strings, class order */
    char **names;  /* classes strings, class order */
};

/* Reads the .data file at path and the label (and name) files it names. Returns 0 with *out set,
 * or -1 with *out NULL and a message such as
 * "data/x.data: classes=10 but data/x.labels has 9 labels". Free with data_cfg_destroy. */
int data_cfg_load(struct data_cfg **out, const char *path, cn_error *e);

/* Frees d and everything it owns; NULL is a no-op. */
void data_cfg_destroy(struct data_cfg *d);

/* Reads a label file: one label per line, as described above. *out is a malloc'd array of *n
 * malloc'd strings (free with data_strings_free). Returns 0, or -1 with "path:line: problem". */
int data_labels_read(const char *path, char ***out, int *n, cn_error *e);

/* Frees an array of n strings from data_labels_read; NULL is a no-op. */
void data_strings_free(char **s, int n);

#endif
