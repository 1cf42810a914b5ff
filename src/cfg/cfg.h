/* cfg.h - the INI-like reader behind .cfg and .data files, and typed getters with bounds.
 *
 * Accepted: [section] headers, key=value with spaces around '=', '#' and ';' comments (whole-line
 * or after a value), blank lines, CRLF endings, a UTF-8 BOM. Rejected with path:line: lines that are
 * neither, duplicate keys in a section, empty keys.
 *
 * Getters record which keys a section's consumer asked for; cfg_check_unused then reports every key
 * nobody asked for as unknown, with a "did you mean" drawn from the asked keys. A missing key takes
 * the getter's default; a present key must parse completely and lie within the given bounds.
 */
#ifndef CN_CFG_H
#define CN_CFG_H

#include "core/common.h"

struct cfg_kv {
    char *key, *val;
    int line;
    int used;
};

struct cfg_section {
    const char *path; /* owning file's path, for messages */
    char *name;       /* without brackets */
    int line;
    struct cfg_kv *kv;
    int nkv;
    const char **asked; /* keys queried by getters (string literals) */
    int nasked, capasked;
};

struct cfg_file {
    char *path;
    struct cfg_section *sec;
    int nsec;
};

enum { CFG_SECTIONS = 0, CFG_FLAT = 1 /* no [section]s: the whole file is one section */ };

/* Reads and parses a file. Returns 0, or -1 with "path:line: problem" in e. */
int cfg_read_file(struct cfg_file **out, const char *path, int flags, cn_error *e);
/* Same, from text in memory; name stands for the path in messages. */
int cfg_read_string(struct cfg_file **out, const char *text, const char *name, int flags, cn_error *e);
void cfg_destroy(struct cfg_file *f);

struct cfg_kv *cfg_find(struct cfg_section *s, const char *key);

/* Typed getters: absent key -> *out = def, returns 0. Bad value -> -1 with
 * "path:line: [section] key=value: problem". All mark the key as asked and used. */
int cfg_get_int(struct cfg_section *s, const char *key, int def, int min, int max, int *out,
                cn_error *e);
int cfg_get_float(struct cfg_section *s, const char *key, float def, float min, float max,
                  float *out, cn_error *e);
int cfg_get_bool(struct cfg_section *s, const char *key, int def, int *out, cn_error *e);
int cfg_get_str(struct cfg_section *s, const char *key, const char *def, const char **out,
                cn_error *e);
/* One of names[0..n); the index goes to *out. Unknown names get a "did you mean". */
int cfg_get_choice(struct cfg_section *s, const char *key, const char *const *names, int n,
                   int def, int *out, cn_error *e);
/* Comma-separated lists; *out is malloc'd (free it), *count its length. Absent: *count = 0. */
int cfg_get_int_list(struct cfg_section *s, const char *key, int min, int max, int **out,
                     int *count, cn_error *e);
int cfg_get_float_list(struct cfg_section *s, const char *key, float min, float max, float **out,
                       int *count, cn_error *e);

/* Marks a key as known without reading it (a key whose meaning depends on another). */
void cfg_ask(struct cfg_section *s, const char *key);

/* Errors on the first key of s that no getter asked for. */
int cfg_check_unused(struct cfg_section *s, cn_error *e);

/* Formats the "path:line: [section] key=value: " prefix for messages about kv. */
int cfg_fail_kv(const struct cfg_section *s, const struct cfg_kv *kv, cn_error *e, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
/* "path:line: [section]: problem" for a whole section. */
int cfg_fail_section(const struct cfg_section *s, cn_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
