/* inputs.c - images, list files and directories to one list of paths. See inputs.h. */
#include "data/inputs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/image.h"
#include "data/textfile.h"

#define LIST_MAX_BYTES ((size_t)1 << 30)

static void push(struct inputs *in, const char *path, const char *where)
{
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 64;
        in->paths = xrealloc(in->paths, sizeof *in->paths * (size_t)in->cap);
        in->where = xrealloc(in->where, sizeof *in->where * (size_t)in->cap);
    }
    in->paths[in->n] = xstrdup(path);
    in->where[in->n] = where ? xstrdup(where) : NULL;
    in->n++;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular, non-hidden files of dir into *names (malloc'd full paths), sorted. */
static int dir_files(const char *dir, char ***names, int *n, cn_error *e)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return cn_fail(e, "%s: cannot open directory: %s", dir, strerror(errno));
    int cap = 0;
    size_t dl = strlen(dir);
    int slash = dl && dir[dl - 1] == '/';
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = dl + 1 + strlen(de->d_name) + 1;
        char *full = xmalloc(len);
        snprintf(full, len, "%s%s%s", dir, slash ? "" : "/", de->d_name);
        struct stat st;
        if (stat(full, &st) || !S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *names = xrealloc(*names, sizeof **names * (size_t)cap);
        }
        (*names)[(*n)++] = full;
    }
    closedir(d);
    if (*n > 1) /* an empty directory leaves *names NULL, which qsort may not take */
        qsort(*names, (size_t)*n, sizeof **names, by_name);
    return 0;
}

static int add_dir(struct inputs *in, const char *dir, cn_error *e)
{
    char **names;
    int n;
    if (dir_files(dir, &names, &n, e))
        return -1;
    for (int i = 0; i < n; i++) {
        push(in, names[i], NULL);
        free(names[i]);
    }
    free(names);
    return n ? 0 : cn_fail(e, "%s: no files in the directory", dir);
}

static int add_list(struct inputs *in, const char *list, cn_error *e)
{
    struct text_lines t;
    if (text_lines_read(&t, list, LIST_MAX_BYTES, e))
        return -1;
    int added = 0;
    for (int i = 0; i < t.n; i++) {
        char *p = text_rstrip(t.line[i]);
        if (!*p)
            continue;
        char where[1100];
        snprintf(where, sizeof where, "%s:%d", list, i + 1);
        push(in, p, where);
        added++;
    }
    text_lines_free(&t);
    return added ? 0 : cn_fail(e, "%s: no images listed", list);
}

int inputs_add(struct inputs *in, const char *arg, cn_error *e)
{
    struct stat st;
    if (!stat(arg, &st) && S_ISDIR(st.st_mode))
        return add_dir(in, arg, e);
    if (ends_with(arg, ".list") || ends_with(arg, ".txt"))
        return add_list(in, arg, e);
    push(in, arg, NULL);
    return 0;
}

int inputs_check(const struct inputs *in, cn_error *e)
{
    for (int i = 0; i < in->n; i++) {
        if (image_check(in->paths[i], e))
            return in->where[i] ? cn_wrap(e, "%s", in->where[i]) : -1;
    }
    return 0;
}

void inputs_free(struct inputs *in)
{
    for (int i = 0; i < in->n; i++) {
        free(in->paths[i]);
        free(in->where[i]);
    }
    free(in->paths);
    free(in->where);
    memset(in, 0, sizeof *in);
}
