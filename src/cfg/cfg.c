/* cfg.c - INI reader with line numbers, and typed, bounded getters. See cfg.h for the dialect. */
#include "cfg/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

#define CFG_MAX_FILE (64u << 20) /* a cfg larger than this is not a cfg */
#define CFG_MAX_SECTIONS 65536   /* more sections than any net (whose own limit is lower) */
#define CFG_MAX_KEYS 4096        /* keys in one section (duplicates are checked pairwise) */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Cuts a trailing comment: '#' or ';' preceded by whitespace, or starting the value. */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if ((*p == '#' || *p == ';') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

/* Capacity for n + 1 items when n items are held: doubling at each power of two, so n appends
 * cost O(n) copying (one realloc per item was quadratic: minutes for 65,536 sections). */
static size_t grown(int n)
{
    return n && (n & (n - 1)) ? 0 : n ? 2 * (size_t)n : 1;
}

static struct cfg_section *add_section(struct cfg_file *f, const char *name, int line)
{
    if (grown(f->nsec))
        f->sec = xrealloc(f->sec, sizeof *f->sec * grown(f->nsec));
    struct cfg_section *s = &f->sec[f->nsec++];
    memset(s, 0, sizeof *s);
    s->path = f->path;
    s->name = xstrdup(name);
    s->line = line;
    return s;
}

static int parse_header(struct cfg_file *f, char *p, int line, cn_error *e)
{
    char *end = strchr(p, ']');
    if (!end)
        return cn_fail(e, "%s:%d: section header '%s' has no closing ']'", f->path, line, p);
    *end = '\0';
    char *rest = trim(end + 1);
    cut_comment(rest);
    if (*trim(rest))
        return cn_fail(e, "%s:%d: unexpected text '%s' after [%s]", f->path, line, rest, p + 1);
    char *name = trim(p + 1);
    if (!*name)
        return cn_fail(e, "%s:%d: empty section name '[]'", f->path, line);
    if (f->nsec >= CFG_MAX_SECTIONS)
        return cn_fail(e, "%s:%d: more than the limit of %d sections", f->path, line,
                       CFG_MAX_SECTIONS);
    for (char *q = name; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    add_section(f, name, line);
    return 0;
}

static int parse_pair(struct cfg_file *f, char *p, int line, cn_error *e)
{
    char *eq = strchr(p, '=');
    if (!eq)
        return cn_fail(e, "%s:%d: expected 'key=value' or '[section]', got '%s'", f->path, line, p);
    *eq = '\0';
    char *key = trim(p), *val = eq + 1;
    cut_comment(val);
    val = trim(val);
    if (!*key)
        return cn_fail(e, "%s:%d: missing key before '='", f->path, line);
    if (f->nsec == 0)
        return cn_fail(e, "%s:%d: '%s=%s' comes before any [section]; the file must start with [net]",
                       f->path, line, key, val);
    struct cfg_section *s = &f->sec[f->nsec - 1];
    if (s->nkv >= CFG_MAX_KEYS)
        return cn_fail(e, "%s:%d: [%s] more than the limit of %d keys in one section", f->path,
                       line, s->name, CFG_MAX_KEYS);
    struct cfg_kv *old = cfg_find(s, key);
    if (old)
        return cn_fail(e, "%s:%d: [%s] duplicate key '%s' (first set on line %d)", f->path, line,
                       s->name, key, old->line);
    if (grown(s->nkv))
        s->kv = xrealloc(s->kv, sizeof *s->kv * grown(s->nkv));
    s->kv[s->nkv++] = (struct cfg_kv){xstrdup(key), xstrdup(val), line, 0};
    return 0;
}

static int parse_text(struct cfg_file *f, char *text, int flags, cn_error *e)
{
    if ((unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
        (unsigned char)text[2] == 0xBF)
        text += 3;
    if (flags & CFG_FLAT)
        add_section(f, "", 1);
    int line = 0;
    char *save = NULL;
    /* strtok_r would merge empty lines and lose the count; walk lines by hand. */
    for (char *p = text; p && *p; p = save) {
        line++;
        char *nl = strchr(p, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (strlen(p) > 4096)
            return cn_fail(e, "%s:%d: line longer than 4096 characters", f->path, line);
        char *s = trim(p);
        if (!*s || *s == '#' || *s == ';')
            continue;
        int rc = (*s == '[' && !(flags & CFG_FLAT)) ? parse_header(f, s, line, e)
                                                   : parse_pair(f, s, line, e);
        if (rc)
            return rc;
    }
    return 0;
}

int cfg_read_string(struct cfg_file **out, const char *text, const char *name, int flags,
                    cn_error *e)
{
    *out = NULL;
    struct cfg_file *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(name);
    char *copy = xstrdup(text);
    int rc = parse_text(f, copy, flags, e);
    free(copy);
    if (rc) {
        cfg_destroy(f);
        return -1;
    }
    *out = f;
    return 0;
}

int cfg_read_file(struct cfg_file **out, const char *path, int flags, cn_error *e)
{
    *out = NULL;
    char *buf;
    size_t n;
    /* Read as it grows (fileio_read_all), not into a CFG_MAX_FILE buffer: 64 MiB per call. */
    if (fileio_read_all(path, CFG_MAX_FILE, &buf, &n, e))
        return -1;
    int rc;
    if (memchr(buf, '\0', n))
        rc = cn_fail(e, "%s: contains a NUL byte, not a text file", path);
    else
        rc = cfg_read_string(out, buf, path, flags, e);
    free(buf);
    return rc;
}

void cfg_destroy(struct cfg_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nsec; i++) {
        struct cfg_section *s = &f->sec[i];
        for (int j = 0; j < s->nkv; j++) {
            free(s->kv[j].key);
            free(s->kv[j].val);
        }
        free(s->kv);
        free(s->asked);
        free(s->name);
    }
    free(f->sec);
    free(f->path);
    free(f);
}

struct cfg_kv *cfg_find(struct cfg_section *s, const char *key)
{
    for (int i = 0; i < s->nkv; i++)
        if (!strcmp(s->kv[i].key, key))
            return &s->kv[i];
    return NULL;
}

void cfg_ask(struct cfg_section *s, const char *key)
{
    for (int i = 0; i < s->nasked; i++)
        if (!strcmp(s->asked[i], key))
            goto mark;
    if (s->nasked == s->capasked) {
        s->capasked = s->capasked ? 2 * s->capasked : 16;
        s->asked = xrealloc(s->asked, sizeof *s->asked * (size_t)s->capasked);
    }
    s->asked[s->nasked++] = key;
mark:;
    struct cfg_kv *kv = cfg_find(s, key);
    if (kv)
        kv->used = 1;
}

static const char *section_label(const struct cfg_section *s)
{
    return s->name[0] ? s->name : NULL;
}

int cfg_fail_kv(const struct cfg_section *s, const struct cfg_kv *kv, cn_error *e, const char *fmt,
                ...)
{
    char what[CN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (section_label(s))
        return cn_fail(e, "%s:%d: [%s] %s=%s: %s", s->path, kv->line, s->name, kv->key, kv->val,
                       what);
    return cn_fail(e, "%s:%d: %s=%s: %s", s->path, kv->line, kv->key, kv->val, what);
}

int cfg_fail_section(const struct cfg_section *s, cn_error *e, const char *fmt, ...)
{
    char what[CN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (section_label(s))
        return cn_fail(e, "%s:%d: [%s]: %s", s->path, s->line, s->name, what);
    return cn_fail(e, "%s: %s", s->path, what);
}

static struct cfg_kv *lookup(struct cfg_section *s, const char *key)
{
    cfg_ask(s, key);
    return cfg_find(s, key);
}

static int parse_long(const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno)
        return -1;
    *out = x;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno == ERANGE || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

int cfg_get_int(struct cfg_section *s, const char *key, int def, int min, int max, int *out,
                cn_error *e)
{
    struct cfg_kv *kv = lookup(s, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    long x;
    if (parse_long(kv->val, &x))
        return cfg_fail_kv(s, kv, e, "not an integer");
    if (x < min || x > max)
        return cfg_fail_kv(s, kv, e, "out of range [%d, %d]", min, max);
    *out = (int)x;
    return 0;
}

int cfg_get_float(struct cfg_section *s, const char *key, float def, float min, float max,
                  float *out, cn_error *e)
{
    struct cfg_kv *kv = lookup(s, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    double x;
    if (parse_double(kv->val, &x))
        return cfg_fail_kv(s, kv, e, "not a finite number");
    if (x < min || x > max)
        return cfg_fail_kv(s, kv, e, "out of range [%g, %g]", min, max);
    *out = (float)x;
    return 0;
}

int cfg_get_bool(struct cfg_section *s, const char *key, int def, int *out, cn_error *e)
{
    return cfg_get_int(s, key, def, 0, 1, out, e);
}

int cfg_get_str(struct cfg_section *s, const char *key, const char *def, const char **out,
                cn_error *e)
{
    struct cfg_kv *kv = lookup(s, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (!kv->val[0])
        return cfg_fail_kv(s, kv, e, "empty value");
    *out = kv->val;
    return 0;
}

int cfg_get_choice(struct cfg_section *s, const char *key, const char *const *names, int n,
                   int def, int *out, cn_error *e)
{
    struct cfg_kv *kv = lookup(s, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (names[i] && !strcmp(kv->val, names[i])) {
            *out = i;
            return 0;
        }
    }
    const char *near = cn_closest(kv->val, names, n);
    if (near)
        return cfg_fail_kv(s, kv, e, "unknown value (did you mean '%s'?)", near);
    char list[512] = "";
    for (int i = 0; i < n; i++) {
        if (!names[i])
            continue;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", names[i]);
    }
    return cfg_fail_kv(s, kv, e, "unknown value (expected one of: %s)", list);
}

/* Splits v at commas into at most cap items; returns the count or -1 if a field is empty. */
static int split_list(char *v, char **items, int cap)
{
    int n = 0;
    for (char *p = v;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *t = trim(p);
        if (!*t || n == cap)
            return -1;
        items[n++] = t;
        if (!comma)
            return n;
        p = comma + 1;
    }
}

#define CFG_LIST_MAX 1024

/* Checks item i of a list (t, its text) against range[0..1] and stores it in v[i]; 0 or the
 * failure, naming the item. */
typedef int (*list_item_fn)(const struct cfg_section *s, const struct cfg_kv *kv, const char *t,
                            int i, const double range[2], void *v, cn_error *e);

static int int_item(const struct cfg_section *s, const struct cfg_kv *kv, const char *t, int i,
                    const double range[2], void *v, cn_error *e)
{
    long x;
    if (parse_long(t, &x))
        return cfg_fail_kv(s, kv, e, "item %d '%s' is not an integer", i + 1, t);
    if (x < range[0] || x > range[1])
        return cfg_fail_kv(s, kv, e, "item %d (%ld) out of range [%d, %d]", i + 1, x, (int)range[0],
                           (int)range[1]);
    ((int *)v)[i] = (int)x;
    return 0;
}

static int float_item(const struct cfg_section *s, const struct cfg_kv *kv, const char *t, int i,
                      const double range[2], void *v, cn_error *e)
{
    double x;
    if (parse_double(t, &x))
        return cfg_fail_kv(s, kv, e, "item %d '%s' is not a finite number", i + 1, t);
    if (x < range[0] || x > range[1])
        return cfg_fail_kv(s, kv, e, "item %d (%g) out of range [%g, %g]", i + 1, x, range[0],
                           range[1]);
    ((float *)v)[i] = (float)x;
    return 0;
}

/* The list getters' common part: splits key's value at commas and checks and stores each item
 * with item (of size bytes) into a malloc'd array; what names the items in the message. */
static int get_list(struct cfg_section *s, const char *key, const char *what, size_t size,
                    list_item_fn item, const double range[2], void **out, int *count, cn_error *e)
{
    *out = NULL;
    *count = 0;
    struct cfg_kv *kv = lookup(s, key);
    if (!kv)
        return 0;
    char *copy = xstrdup(kv->val), *items[CFG_LIST_MAX];
    int n = split_list(copy, items, CFG_LIST_MAX), rc = 0;
    void *v = xmalloc(size * (size_t)(n > 0 ? n : 1));
    if (n < 0)
        rc = cfg_fail_kv(s, kv, e, "expected a comma-separated list of %s", what);
    for (int i = 0; i < n && !rc; i++)
        rc = item(s, kv, items[i], i, range, v, e);
    free(copy);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

int cfg_get_int_list(struct cfg_section *s, const char *key, int min, int max, int **out,
                     int *count, cn_error *e)
{
    const double range[2] = {min, max};
    void *v;
    int rc = get_list(s, key, "integers", sizeof **out, int_item, range, &v, count, e);
    *out = v;
    return rc;
}

int cfg_get_float_list(struct cfg_section *s, const char *key, float min, float max, float **out,
                       int *count, cn_error *e)
{
    const double range[2] = {min, max};
    void *v;
    int rc = get_list(s, key, "numbers", sizeof **out, float_item, range, &v, count, e);
    *out = v;
    return rc;
}

int cfg_check_unused(struct cfg_section *s, cn_error *e)
{
    for (int i = 0; i < s->nkv; i++) {
        struct cfg_kv *kv = &s->kv[i];
        if (kv->used)
            continue;
        const char *near = cn_closest(kv->key, s->asked, s->nasked);
        const char *where = s->name[0] ? s->name : "file";
        if (near)
            return cn_fail(e, "%s:%d: [%s] unknown key '%s' (did you mean '%s'?)", s->path,
                           kv->line, where, kv->key, near);
        return cn_fail(e, "%s:%d: [%s] unknown key '%s'", s->path, kv->line, where, kv->key);
    }
    return 0;
}
