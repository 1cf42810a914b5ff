/* list.c - image lists and labels from paths. See list.h for the rules.
 *
 * Matching is strstr over every label (no early exit), so the cost is paths x labels substring
 * searches: 60,000 x 10 takes milliseconds.
 */
#include "data/list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Adds one image to l, growing the arrays. */
static void list_push(struct image_list *l, int *cap, const char *path, int label, int line)
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

static int list_fill(struct image_list *l, struct text_lines *t, char *const *labels, int nlabels,
                     cn_error *e)
{
    int cap = 0;
    for (int i = 0; i < t->n; i++) {
        char *p = text_rstrip(t->line[i]);
        if (!*p)
            continue;
        int label;
        if (label_from_path(p, labels, nlabels, &label, e))
            return cn_wrap(e, "%s:%d", l->path, i + 1);
        list_push(l, &cap, p, label, i + 1);
    }
    if (l->n == 0)
        return cn_fail(e, "%s: no images listed", l->path);
    return 0;
}

int image_list_load(struct image_list **out, const char *path, char *const *labels, int nlabels,
                    cn_error *e)
{
    *out = NULL;
    if (!path)
        return cn_fail(e, "no image list given (is train= or valid= missing from the .data file?)");
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
    free(l->path);
    free(l);
}
