/* list.h - the image sets a .data file's train= and valid= can name, and each image's class.
 *
 * Four kinds, told apart by what the path is (image_list_load):
 *   - a directory: a tree with one folder per class, as torchvision's ImageFolder. The class of an
 *     image is the folder directly under the root that holds it (at any depth below it); the
 *     folder names must be exactly the labels (every label a folder, every folder a label; class
 *     index = the label's position in the labels file, which is ImageFolder's sorted order when the
 *     labels file is sorted, as data/imagenet.labels is). Files are taken when their extension is
 *     one stb_image reads (jpg jpeg png bmp gif tga psd pnm pgm ppm, any case), others are
 *     ignored, as are names starting with '.'. Paths are sorted (byte order), so the list does
 *     not depend on readdir order. An empty class folder is an error.
 *   - an IDX file (MNIST format, gzipped or not): a path ending in "idx3-ubyte" or
 *     "idx3-ubyte.gz" holds n x rows x cols gray images; the labels come from the file with
 *     "images-idx3" replaced by "labels-idx1" in the path (n bytes, each < the number of labels).
 *     The images stay in memory (pixels); paths[i] is "file#i" for messages.
 *   - a list file whose first non-blank line is "path label" (the last blank-separated word a
 *     label name or a class number 0..n-1): every line must then be "path label".
 *   - otherwise a Darknet list file, one path per line; the class is the label whose name occurs
 *     in the path. Darknet's rule, except that Darknet silently takes the last match; here a path
 *     must contain exactly one label: none, or more than one, is an error naming the path and the
 *     candidates.
 * List files: blank lines are skipped, CRLF and trailing blanks are tolerated, paths are used as
 * written (relative to the current directory).
 */
#ifndef CN_DATA_LIST_H
#define CN_DATA_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

enum image_list_kind { LIST_FILE, LIST_DIR, LIST_IDX };

struct image_list {
    char *path;   /* the list file, directory or IDX file, for messages */
    enum image_list_kind kind;
    int n;        /* >= 1 */
    char **paths; /* n image paths ("file#i" for IDX) */
    int *labels;  /* n classes, each in [0, nlabels) */
    int *lines;   /* n line numbers in the list file (0 for directories and IDX) */
    uint8_t *pixels; /* IDX: n images of pw x ph bytes, one channel; NULL otherwise */
    int pw, ph;
};

/* Finds the one label among labels[0..nlabels) that occurs in path and writes its index to *out.
 * Returns 0, or -1 with a message such as "data/x/cat_dog.png: matches 2 labels (cat, dog); each
 * path must contain exactly one label name" (with a note when one label is part of another). */
int label_from_path(const char *path, char *const *labels, int nlabels, int *out, cn_error *e);

/* Reads the image set at path (any kind above) and derives every image's label. Returns 0 with
 * *out set, or -1 with *out NULL and "path:line: problem" (or "path: problem") in e; an empty
 * list is "path: no images listed". path NULL (a .data file without train= or valid=) is an
 * error too. Images are not opened here (see loader_check_all). Free with image_list_destroy. */
int image_list_load(struct image_list **out, const char *path, char *const *labels, int nlabels,
                    cn_error *e);

/* The sorted names of the folders directly under dir (hidden ones skipped): the labels of a
 * directory tree when the .data file has no labels=. Returns 0, or -1 with "dir: problem" (no
 * folders). Free with data_strings_free (datafile.h) or free() each and the array. */
int image_dir_classes(const char *dir, char ***out, int *n, cn_error *e);

/* The directory-tree and IDX readers behind image_list_load (same contract). */
int image_list_load_dir(struct image_list **out, const char *dir, char *const *labels,
                        int nlabels, cn_error *e);
int image_list_load_idx(struct image_list **out, const char *path, int nlabels, cn_error *e);

/* Appends one image to l, growing its arrays (*cap is their capacity, 0 at first). */
void image_list_push(struct image_list *l, int *cap, const char *path, int label, int line);

/* 1 when path names an IDX image file by the naming rule above. */
int image_list_is_idx(const char *path);

/* Where image i comes from, for messages: "list:line: path", or "path" for a directory tree and
 * IDX. Writes at most n bytes (NUL included) to buf and returns buf. */
const char *image_list_where(const struct image_list *l, int i, char *buf, size_t n);

/* Frees l; NULL is a no-op. */
void image_list_destroy(struct image_list *l);

#endif
