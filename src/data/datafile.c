/* datafile.c - the .data file and its label and name files. See datafile.h for the keys.
 *
 * Without labels=, the labels of a directory tree are its sorted class folders (ImageFolder's
 * order) and those of an IDX set the class numbers. Duplicate labels are found by sorting (n log n), so label files with tens of thousands of
 * classes load at once.
 */
#include "data/datafile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg/cfg.h"
#include "data/list.h"
#include "data/textfile.h"

#define DATA_MAX_TEXT ((size_t)64 << 20)

void data_strings_free(char **s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

/* Number of lines before the run of blank lines that ends the file. */
static int count_until_trailing_blanks(struct text_lines *t)
{
    int n = t->n;
    while (n > 0 && !*text_rstrip(t->line[n - 1]))
        n--;
    return n;
}

static int check_label(const char *path, int line, const char *s, int strict, cn_error *e)
{
    size_t len = strlen(s);
    if (!len)
        return cn_fail(e, "%s:%d: empty %s", path, line, strict ? "label" : "name");
    if (strict && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        return cn_fail(e, "%s:%d: label '%s' has leading or trailing blanks", path, line, s);
    return 0;
}

struct keyed {
    const char *s;
    int i;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The earliest line that repeats an earlier label, or 0 when all differ; *first gets the line
 * of the earlier one. */
static int find_duplicate(char *const *s, int n, int *first)
{
    struct keyed *k = xmalloc(sizeof *k * (size_t)CN_MAX(n, 1));
    for (int i = 0; i < n; i++)
        k[i] = (struct keyed){s[i], i};
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    int dup = -1, start = 0;
    for (int i = 1; i < n; i++) {
        if (strcmp(k[i].s, k[start].s)) {
            start = i;
            continue;
        }
        if (dup < 0 || k[i].i < dup) {
            dup = k[i].i;
            *first = k[start].i + 1;
        }
    }
    free(k);
    return dup + 1;
}

/* Reads labels (strict: no blanks around, no duplicates) or display names. */
static int read_strings(const char *path, int strict, char ***out, int *count, cn_error *e)
{
    *out = NULL;
    *count = 0;
    struct text_lines t;
    if (text_lines_read(&t, path, DATA_MAX_TEXT, e))
        return -1;
    int n = count_until_trailing_blanks(&t);
    char **s = xcalloc((size_t)CN_MAX(n, 1), sizeof *s);
    for (int i = 0; i < n; i++) {
        char *line = strict ? t.line[i] : text_rstrip(t.line[i]);
        if (check_label(path, i + 1, line, strict, e)) {
            data_strings_free(s, i);
            text_lines_free(&t);
            return -1;
        }
        s[i] = xstrdup(line);
    }
    text_lines_free(&t);
    int first = 0, dup = strict ? find_duplicate(s, n, &first) : 0;
    if (dup) {
        cn_fail(e, "%s:%d: duplicate label '%s' (first on line %d)", path, dup, s[dup - 1], first);
        data_strings_free(s, n);
        return -1;
    }
    if (n == 0) {
        free(s);
        return cn_fail(e, "%s: no %s in the file", path, strict ? "labels" : "names");
    }
    *out = s;
    *count = n;
    return 0;
}

int data_labels_read(const char *path, char ***out, int *n, cn_error *e)
{
    return read_strings(path, 1, out, n, e);
}

static int is_directory(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* class_weights=: classes positive numbers. */
static int read_weights(struct data_cfg *d, struct cfg_section *s, cn_error *e)
{
    int n;
    if (cfg_get_float_list(s, "class_weights", 1e-6f, 1e6f, &d->class_weights, &n, e))
        return -1;
    if (d->class_weights && n != d->classes)
        return cfg_fail_kv(s, cfg_find(s, "class_weights"), e, "has %d value%s but classes=%d", n,
                           n == 1 ? "" : "s", d->classes);
    return 0;
}

/* Labels when labels= is absent: the sorted class folders of a directory tree, or the class
 * numbers "0".."classes-1" of an IDX set. */
static int derive_labels(struct data_cfg *d, int *n, cn_error *e)
{
    const char *set = d->train ? d->train : d->valid;
    if (is_directory(set))
        return image_dir_classes(set, &d->labels, n, e);
    d->labels = xcalloc((size_t)d->classes, sizeof *d->labels);
    for (int i = 0; i < d->classes; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        d->labels[i] = xstrdup(num);
    }
    *n = d->classes;
    return 0;
}

/* Reads every key of the flat section into d (paths copied), then rejects unknown keys. */
static int read_keys(struct data_cfg *d, struct cfg_section *s, cn_error *e)
{
    const char *train, *valid, *labels, *names, *backup;
    if (cfg_get_int(s, "classes", 0, 1, 1 << 24, &d->classes, e) ||
        cfg_get_str(s, "train", NULL, &train, e) || cfg_get_str(s, "valid", NULL, &valid, e) ||
        cfg_get_str(s, "labels", NULL, &labels, e) || cfg_get_str(s, "names", NULL, &names, e) ||
        cfg_get_str(s, "backup", "backup/", &backup, e))
        return -1;
    cfg_ask(s, "top");
    cfg_ask(s, "class_weights");
    if (cfg_check_unused(s, e))
        return -1;
    if (!cfg_find(s, "classes"))
        return cn_fail(e, "%s: classes= is missing (the number of classes, >= 1)", d->path);
    const char *set = train ? train : valid;
    int derived = set && (is_directory(set) || image_list_is_idx(set));
    if (!labels && !derived)
        return cn_fail(e, "%s: labels= is missing (a file with one label per line)", d->path);
    if (cfg_get_int(s, "top", 1, 1, d->classes, &d->top, e) || read_weights(d, s, e))
        return -1;
    d->train = train ? xstrdup(train) : NULL;
    d->valid = valid ? xstrdup(valid) : NULL;
    d->labels_path = labels ? xstrdup(labels) : NULL;
    d->names_path = names ? xstrdup(names) : labels ? xstrdup(labels) : NULL;
    d->backup = xstrdup(backup);
    return 0;
}

/* Loads labels and names and checks both counts against classes=. */
static int read_label_files(struct data_cfg *d, cn_error *e)
{
    int n;
    if (d->labels_path ? read_strings(d->labels_path, 1, &d->labels, &n, e)
                       : derive_labels(d, &n, e))
        return -1;
    if (n != d->classes) {
        data_strings_free(d->labels, n);
        d->labels = NULL;
        return cn_fail(e, "%s: classes=%d but %s has %d label%s", d->path, d->classes,
                       d->labels_path ? d->labels_path : d->train ? d->train : d->valid, n,
                       n == 1 ? "" : "s");
    }
    if (!d->names_path || (d->labels_path && !strcmp(d->names_path, d->labels_path))) {
        d->names = xcalloc((size_t)n, sizeof *d->names);
        for (int i = 0; i < n; i++)
            d->names[i] = xstrdup(d->labels[i]);
        return 0;
    }
    int m;
    if (read_strings(d->names_path, 0, &d->names, &m, e))
        return -1;
    if (m != n) {
        data_strings_free(d->names, m);
        d->names = NULL;
        return cn_fail(e, "%s: %s has %d name%s but %s has %d labels", d->path, d->names_path, m,
                       m == 1 ? "" : "s", d->labels_path ? d->labels_path : "the labels", n);
    }
    return 0;
}

int data_cfg_load(struct data_cfg **out, const char *path, cn_error *e)
{
    *out = NULL;
    struct cfg_file *f;
    if (cfg_read_file(&f, path, CFG_FLAT, e))
        return -1;
    struct data_cfg *d = xcalloc(1, sizeof *d);
    d->path = xstrdup(path);
    int rc = read_keys(d, &f->sec[0], e) || read_label_files(d, e);
    cfg_destroy(f);
    if (rc) {
        data_cfg_destroy(d);
        return -1;
    }
    *out = d;
    return 0;
}

void data_cfg_destroy(struct data_cfg *d)
{
    if (!d)
        return;
    data_strings_free(d->labels, d->labels ? d->classes : 0);
    data_strings_free(d->names, d->names ? d->classes : 0);
    free(d->path);
    free(d->train);
    free(d->valid);
    free(d->labels_path);
    free(d->names_path);
    free(d->backup);
    free(d->class_weights);
    free(d);
}
