/* folder.c - directory trees with one folder per class (torchvision's ImageFolder layout, e.g.
 * ILSVRC-2012's train/n01440764/n01440764_10026.JPEG). See list.h for the rules.
 *
 * Each directory is read whole, its entries sorted by strcmp, then walked depth first, so the
 * order of the list is a function of the names alone. Symbolic links are followed (stat), as
 * ImageFolder does; a link cycle would recurse until the path grows past PATH_MAX_LEN and fail.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "data/list.h"

#define PATH_MAX_LEN 4096

struct names {
    char **s;
    int n, cap;
};

static void names_free(struct names *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->s[i]);
    free(v->s);
    memset(v, 0, sizeof *v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted non-hidden entry names of dir. */
static int read_sorted(const char *dir, struct names *v, cn_error *e)
{
    memset(v, 0, sizeof *v);
    DIR *d = opendir(dir);
    if (!d)
        return cn_fail(e, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        if (v->n == v->cap) {
            v->cap = v->cap ? 2 * v->cap : 64;
            v->s = xrealloc(v->s, sizeof *v->s * (size_t)v->cap);
        }
        v->s[v->n++] = xstrdup(ent->d_name);
    }
    closedir(d);
    if (v->n)
        qsort(v->s, (size_t)v->n, sizeof *v->s, cmp_str);
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static int is_image_name(const char *name)
{
    static const char *const ext[] = {"jpg", "jpeg", "png", "bmp", "gif",
                                      "tga", "psd",  "pnm", "pgm", "ppm"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot + 1, ext[i]))
            return 1;
    return 0;
}

int image_dir_classes(const char *dir, char ***out, int *n, cn_error *e)
{
    *out = NULL;
    *n = 0;
    struct names v;
    if (read_sorted(dir, &v, e))
        return -1;
    char path[PATH_MAX_LEN];
    int k = 0;
    for (int i = 0; i < v.n; i++) {
        if (fileio_join(path, PATH_MAX_LEN, dir, v.s[i], e)) {
            names_free(&v);
            return -1;
        }
        if (is_dir(path))
            v.s[k++] = v.s[i];
        else
            free(v.s[i]);
    }
    v.n = k;
    if (!k) {
        names_free(&v);
        return cn_fail(e, "%s: no class folders in this directory (one folder per class, as "
                          "ImageFolder)", dir);
    }
    *out = v.s;
    *n = k;
    return 0;
}

/* Adds every image under dir (recursively) to l with the given label. */
static int walk(struct image_list *l, int *cap, const char *dir, int label, int depth,
                cn_error *e)
{
    if (depth > 64)
        return cn_fail(e, "%s: directories nested more than 64 deep (a link cycle?)", dir);
    struct names v;
    if (read_sorted(dir, &v, e))
        return -1;
    char path[PATH_MAX_LEN];
    int rc = 0;
    for (int i = 0; i < v.n && !rc; i++) {
        rc = fileio_join(path, PATH_MAX_LEN, dir, v.s[i], e);
        if (!rc && is_dir(path))
            rc = walk(l, cap, path, label, depth + 1, e);
        else if (!rc && is_image_name(v.s[i]))
            image_list_push(l, cap, path, label, 0);
    }
    names_free(&v);
    return rc;
}

static int find_label(const char *name, char *const *labels, int nlabels)
{
    for (int i = 0; i < nlabels; i++)
        if (!strcmp(name, labels[i]))
            return i;
    return -1;
}

/* Checks the class folders against the labels: the same set, each folder holding images. */
static int fill(struct image_list *l, char **classes, int nclasses, char *const *labels,
                int nlabels, cn_error *e)
{
    char *seen = xcalloc((size_t)nlabels, 1), path[PATH_MAX_LEN];
    int cap = 0, rc = 0;
    for (int i = 0; i < nclasses && !rc; i++) {
        int k = find_label(classes[i], labels, nlabels);
        if (k < 0) {
            rc = cn_fail(e, "%s: folder '%s' is not one of the %d labels", l->path, classes[i],
                         nlabels);
            break;
        }
        seen[k] = 1;
        int before = l->n;
        rc = fileio_join(path, PATH_MAX_LEN, l->path, classes[i], e) ||
             walk(l, &cap, path, k, 0, e);
        if (!rc && l->n == before)
            rc = cn_fail(e, "%s/: empty class folder (no jpg, png, bmp, gif, tga, psd or pnm "
                            "files in it)", path);
    }
    for (int k = 0; k < nlabels && !rc; k++)
        if (!seen[k])
            rc = cn_fail(e, "%s: no folder for label '%s' (class %d): every label needs one",
                         l->path, labels[k], k);
    free(seen);
    return rc;
}

int image_list_load_dir(struct image_list **out, const char *dir, char *const *labels,
                        int nlabels, cn_error *e)
{
    *out = NULL;
    char **classes;
    int nclasses;
    if (image_dir_classes(dir, &classes, &nclasses, e))
        return -1;
    struct image_list *l = xcalloc(1, sizeof *l);
    l->path = xstrdup(dir);
    l->kind = LIST_DIR;
    int rc = fill(l, classes, nclasses, labels, nlabels, e);
    for (int i = 0; i < nclasses; i++)
        free(classes[i]);
    free(classes);
    if (rc) {
        image_list_destroy(l);
        return -1;
    }
    *out = l;
    return 0;
}
