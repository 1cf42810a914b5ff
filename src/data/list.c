/* list.c - image lists (Darknet's and "path label"), IDX image sets, the dispatch between the
 * kinds, and labels from paths. See list.h for the rules; directory trees are in folder.c.
 *
 * Matching is strstr over every label (no early exit), so the cost is paths x labels substring
 * searches: 60,000 x 10 takes milliseconds.
 */
#include "data/list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/idx.h"
#include "data/textfile.h"

#define LIST_MAX_TEXT ((size_t)1 << 30)
#define LIST_SHOW 6 /* labels named in one message */

/* Appends "a, b, c" (the first LIST_SHOW of idx, then "...") to buf. */
static void join_labels(char *buf, size_t cap, char *const *labels, const int *idx, int n)
{
    size_t len = strlen(buf);
    for (int i = 0; i < n && i < LIST_SHOW && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", labels[idx[i]]);
        len += w > 0 ? (size_t)w : 0;
    }
    if (n > LIST_SHOW && len < cap)
        snprintf(buf + len, cap - len, ", ...");
}

/* A note when one matched label lies inside another, the usual cause of a double match. */
static void nested_note(char *buf, size_t cap, char *const *labels, const int *idx, int n)
{
    for (int i = 0; i < n && i < LIST_SHOW; i++) {
        for (int j = 0; j < n && j < LIST_SHOW; j++) {
            if (i != j && strstr(labels[idx[j]], labels[idx[i]])) {
                size_t len = strlen(buf);
                snprintf(buf + len, cap - len,
                         " ('%s' is part of '%s': rename labels so that none contains another)",
                         labels[idx[i]], labels[idx[j]]);
                return;
            }
        }
    }
}

int label_from_path(const char *path, char *const *labels, int nlabels, int *out, cn_error *e)
{
    int hit[LIST_SHOW + 1], nhit = 0;
    for (int i = 0; i < nlabels; i++) {
        CN_ASSERT(labels[i][0]);
        if (strstr(path, labels[i])) {
            if (nhit <= LIST_SHOW)
                hit[nhit] = i;
            nhit++;
        }
    }
    if (nhit == 1) {
        *out = hit[0];
        return 0;
    }
    char what[CN_ERR_MAX] = "";
    if (nhit == 0) {
        int all[LIST_SHOW + 1];
        for (int i = 0; i <= LIST_SHOW && i < nlabels; i++)
            all[i] = i;
        snprintf(what, sizeof what, "matches no label (labels: ");
        join_labels(what, sizeof what, labels, all, nlabels);
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, ")");
    } else {
        snprintf(what, sizeof what, "matches %d labels (", nhit);
        join_labels(what, sizeof what, labels, hit, nhit);
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, ")");
        nested_note(what, sizeof what, labels, hit, CN_MIN(nhit, LIST_SHOW));
    }
    return cn_fail(e, "%s: %s; each path must contain exactly one label name", path, what);
}

void image_list_push(struct image_list *l, int *cap, const char *path, int label, int line)
{
    if (l->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        l->paths = xrealloc(l->paths, sizeof *l->paths * (size_t)*cap);
        l->labels = xrealloc(l->labels, sizeof *l->labels * (size_t)*cap);
        l->lines = xrealloc(l->lines, sizeof *l->lines * (size_t)*cap);
    }
    l->paths[l->n] = xstrdup(path);
    l->labels[l->n] = label;
    l->lines[l->n] = line;
    l->n++;
}

/* The class named by word: a label name, else a class number; -1 when it is neither. */
static int label_word(const char *word, char *const *labels, int nlabels)
{
    for (int i = 0; i < nlabels; i++)
        if (!strcmp(word, labels[i]))
            return i;
    char *end;
    errno = 0;
    long v = strtol(word, &end, 10);
    if (end == word || *end || errno || v < 0 || v >= nlabels)
        return -1;
    return (int)v;
}

/* Splits "path label" in place: *path and the label's index, or -1 when the line is not that. */
static int split_labelled(char *line, char **path, char *const *labels, int nlabels)
{
    char *sp = strrchr(line, ' '), *tab = strrchr(line, '\t');
    char *cut = !sp ? tab : !tab ? sp : sp > tab ? sp : tab;
    if (!cut || cut == line)
        return -1;
    int k = label_word(cut + 1, labels, nlabels);
    if (k < 0)
        return -1;
    while (cut > line && (cut[-1] == ' ' || cut[-1] == '\t'))
        cut--;
    if (cut == line)
        return -1;
    *cut = '\0';
    *path = line;
    return k;
}

/* 1 when the first non-blank line of t is "path label". */
static int is_labelled(struct text_lines *t, char *const *labels, int nlabels)
{
    for (int i = 0; i < t->n; i++) {
        char *p = text_rstrip(t->line[i]);
        if (!*p)
            continue;
        char *copy = xstrdup(p), *path;
        int k = split_labelled(copy, &path, labels, nlabels);
        free(copy);
        return k >= 0;
    }
    return 0;
}

static int list_fill(struct image_list *l, struct text_lines *t, char *const *labels, int nlabels,
                     cn_error *e)
{
    int cap = 0, labelled = is_labelled(t, labels, nlabels);
    for (int i = 0; i < t->n; i++) {
        char *p = text_rstrip(t->line[i]);
        if (!*p)
            continue;
        int label;
        if (labelled) {
            label = split_labelled(p, &p, labels, nlabels);
            if (label < 0)
                return cn_fail(e,
                               "%s:%d: '%s': expected 'path label' (the first line has that "
                               "form; the label a label name or a class number 0..%d)",
                               l->path, i + 1, p, nlabels - 1);
        } else if (label_from_path(p, labels, nlabels, &label, e)) {
            return cn_wrap(e, "%s:%d", l->path, i + 1);
        }
        image_list_push(l, &cap, p, label, i + 1);
    }
    if (l->n == 0)
        return cn_fail(e, "%s: no images listed", l->path);
    return 0;
}

int image_list_is_idx(const char *path)
{
    size_t n = strlen(path);
    const char *a = "idx3-ubyte", *b = "idx3-ubyte.gz";
    return (n >= strlen(a) && !strcmp(path + n - strlen(a), a)) ||
           (n >= strlen(b) && !strcmp(path + n - strlen(b), b));
}

/* The labels file of an IDX image file: "images-idx3" -> "labels-idx1". */
static int idx_labels_path(char *out, size_t cap, const char *path, cn_error *e)
{
    const char *hit = NULL;
    for (const char *p = strstr(path, "images-idx3"); p; p = strstr(p + 1, "images-idx3"))
        hit = p;
    if (!hit || strlen(path) + 1 > cap)
        return cn_fail(e, "%s: an IDX image file's name must contain 'images-idx3' (its labels "
                          "are read from the same name with 'labels-idx1')", path);
    size_t pre = (size_t)(hit - path);
    snprintf(out, cap, "%.*slabels-idx1%s", (int)pre, path, hit + strlen("images-idx3"));
    return 0;
}

static int idx_fill(struct image_list *l, const struct idx_array *im, const struct idx_array *lb,
                    const char *lpath, int nlabels, cn_error *e)
{
    if (lb->dim[0] != im->dim[0])
        return cn_fail(e, "%s: %u labels, but %s holds %u images", lpath, lb->dim[0], l->path,
                       im->dim[0]);
    if (im->dim[0] > 0x7fffffffu || im->dim[1] > 16384 || im->dim[2] > 16384)
        return cn_fail(e, "%s: %u images of %ux%u: too large", l->path, im->dim[0], im->dim[2],
                       im->dim[1]);
    l->pw = (int)im->dim[2];
    l->ph = (int)im->dim[1];
    l->pixels = xmalloc(im->count);
    memcpy(l->pixels, im->data, im->count);
    int cap = 0;
    char name[4200];
    for (uint32_t i = 0; i < im->dim[0]; i++) {
        if (lb->data[i] >= nlabels)
            return cn_fail(e, "%s: label %u of image %u is outside 0..%d", lpath, lb->data[i], i,
                           nlabels - 1);
        snprintf(name, sizeof name, "%s#%u", l->path, i);
        image_list_push(l, &cap, name, lb->data[i], 0);
    }
    return 0;
}

int image_list_load_idx(struct image_list **out, const char *path, int nlabels, cn_error *e)
{
    *out = NULL;
    char lpath[4096];
    struct idx_array im, lb;
    if (idx_labels_path(lpath, sizeof lpath, path, e) || idx_read(&im, path, 3, e))
        return -1;
    if (idx_read(&lb, lpath, 1, e)) {
        idx_free(&im);
        return -1;
    }
    struct image_list *l = xcalloc(1, sizeof *l);
    l->path = xstrdup(path);
    l->kind = LIST_IDX;
    int rc = idx_fill(l, &im, &lb, lpath, nlabels, e);
    idx_free(&im);
    idx_free(&lb);
    if (rc) {
        image_list_destroy(l);
        return -1;
    }
    *out = l;
    return 0;
}

const char *image_list_where(const struct image_list *l, int i, char *buf, size_t n)
{
    if (l->kind == LIST_FILE)
        snprintf(buf, n, "%s:%d: %s", l->path, l->lines[i], l->paths[i]);
    else
        snprintf(buf, n, "%s", l->paths[i]);
    return buf;
}

int image_list_load(struct image_list **out, const char *path, char *const *labels, int nlabels,
                    cn_error *e)
{
    *out = NULL;
    if (!path)
        return cn_fail(e, "no image list given (is train= or valid= missing from the .data file?)");
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode))
        return image_list_load_dir(out, path, labels, nlabels, e);
    if (image_list_is_idx(path))
        return image_list_load_idx(out, path, nlabels, e);
    struct text_lines t;
    if (text_lines_read(&t, path, LIST_MAX_TEXT, e))
        return -1;
    struct image_list *l = xcalloc(1, sizeof *l);
    l->path = xstrdup(path);
    int rc = list_fill(l, &t, labels, nlabels, e);
    text_lines_free(&t);
    if (rc) {
        image_list_destroy(l);
        return -1;
    }
    *out = l;
    return 0;
}

void image_list_destroy(struct image_list *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    free(l->labels);
    free(l->lines);
    free(l->pixels);
    free(l->path);
    free(l);
}
