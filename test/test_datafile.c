/* test_datafile.c - the .data file: every key and default, unknown keys with "did you mean", and
 * the label and name files it names (counts, blanks, duplicates, CRLF). Files are written to a
 * fresh temporary directory per test. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/datafile.h"

/* The per-test temporary directory (cmocka state). */
struct fixture {
    char dir[64];
    char path[512]; /* scratch for at() */
};

/* dir/name, in fx->path (overwritten by the next call). */
static const char *at(struct fixture *fx, const char *name)
{
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, name);
    return fx->path;
}

static void put(struct fixture *fx, const char *name, const char *text)
{
    FILE *f = fopen(at(fx, name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfgnet_datafile_XXXXXX");
    *state = fx;
    return mkdtemp(fx->dir) ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    struct dirent *ent;
    while (d && (ent = readdir(d)))
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, ".."))
            unlink(at(fx, ent->d_name));
    if (d)
        closedir(d);
    int rc = rmdir(fx->dir);
    free(fx);
    return rc;
}

/* Writes x.data with the given body (paths written as %s get tmp) and loads it. The format
 * attribute checks every caller's arguments against its format (and lets vsnprintf take fmt). */
__attribute__((format(printf, 4, 5))) static int load(struct fixture *fx, struct data_cfg **d,
                                                      cn_error *e, const char *fmt, ...)
{
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    put(fx, "x.data", body);
    char path[512];
    snprintf(path, sizeof path, "%s", at(fx, "x.data"));
    return data_cfg_load(d, path, e);
}

__attribute__((format(printf, 3, 4))) static void load_fails(struct fixture *fx, const char *want,
                                                             const char *fmt, ...)
{
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    struct data_cfg *d = (struct data_cfg *)1;
    cn_error e = {{0}};
    assert_int_equal(load(fx, &d, &e, "%s", body), -1);
    assert_null(d);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_all_keys(void **state)
{
    struct fixture *fx = *state;
    const char *tmp = fx->dir;
    put(fx, "x.labels", "cat\r\ndog\r\nemu\r\n\r\n\n");
    put(fx, "x.names", "Cat\nDog  \nGreat emu\n");
    struct data_cfg *d;
    cn_error e;
    int rc = load(fx, &d, &e,
                  "# a comment\r\nclasses = 3\ntrain=%s/train.list\nvalid = %s/valid.list ; c\n"
                  "labels=%s/x.labels\nnames=%s/x.names\nbackup=out/ckpt\ntop=2\n",
                  tmp, tmp, tmp, tmp);
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(d->classes, 3);
    assert_int_equal(d->top, 2);
    char want[256];
    snprintf(want, sizeof want, "%s/train.list", tmp);
    assert_string_equal(d->train, want);
    snprintf(want, sizeof want, "%s/valid.list", tmp);
    assert_string_equal(d->valid, want);
    assert_string_equal(d->backup, "out/ckpt");
    assert_string_equal(d->labels[0], "cat");
    assert_string_equal(d->labels[1], "dog");
    assert_string_equal(d->labels[2], "emu");
    assert_string_equal(d->names[0], "Cat");
    assert_string_equal(d->names[1], "Dog"); /* trailing blanks of names are trimmed */
    assert_string_equal(d->names[2], "Great emu");
    data_cfg_destroy(d);
}

static void test_defaults(void **state)
{
    struct fixture *fx = *state;
    const char *tmp = fx->dir;
    put(fx, "x.labels", "a\nb\n");
    struct data_cfg *d;
    cn_error e;
    if (load(fx, &d, &e, "classes=2\nlabels=%s/x.labels\n", tmp))
        fail_msg("%s", e.msg);
    assert_null(d->train);
    assert_null(d->valid);
    assert_string_equal(d->backup, "backup/");
    assert_int_equal(d->top, 1);
    assert_string_equal(d->names[0], "a"); /* names default to the labels */
    assert_string_equal(d->names[1], "b");
    data_cfg_destroy(d);
    data_cfg_destroy(NULL);
}

static void test_key_errors(void **state)
{
    struct fixture *fx = *state;
    const char *tmp = fx->dir;
    put(fx, "x.labels", "a\nb\nc\n");
    load_fails(fx, "unknown key 'lables' (did you mean 'labels'?)",
               "classes=3\nlabels=%s/x.labels\nlables=x\n", tmp);
    load_fails(fx, "x.data:3: [file] unknown key 'eval'", "classes=3\nlabels=%s/x.labels\neval=x\n",
               tmp);
    load_fails(fx, "classes= is missing", "labels=%s/x.labels\n", tmp);
    load_fails(fx, "labels= is missing", "classes=3\n");
    load_fails(fx, "classes=0", "classes=0\nlabels=%s/x.labels\n", tmp);
    load_fails(fx, "classes=three", "classes=three\nlabels=%s/x.labels\n", tmp);
    load_fails(fx, "x.data:3: top=4", "classes=3\nlabels=%s/x.labels\ntop=4\n", tmp);
    load_fails(fx, "x.data:3: top=0", "classes=3\nlabels=%s/x.labels\ntop=0\n", tmp);
    load_fails(fx, "duplicate key 'classes' (first set on line 1)", "classes=3\nclasses=3\n");
}

static void test_label_file_errors(void **state)
{
    struct fixture *fx = *state;
    const char *tmp = fx->dir;
    char want[512];
    snprintf(want, sizeof want, "x.data: classes=4 but %s/x.labels has 3 labels", tmp);
    put(fx, "x.labels", "a\nb\nc\n");
    load_fails(fx, want, "classes=4\nlabels=%s/x.labels\n", tmp);
    snprintf(want, sizeof want, "%s/missing.labels: cannot open", tmp);
    load_fails(fx, want, "classes=4\nlabels=%s/missing.labels\n", tmp);
    put(fx, "x.labels", "a\n\nb\n");
    snprintf(want, sizeof want, "%s/x.labels:2: empty label", tmp);
    load_fails(fx, want, "classes=3\nlabels=%s/x.labels\n", tmp);
    put(fx, "x.labels", "cat\ndog\ncat\ndog\n");
    snprintf(want, sizeof want, "%s/x.labels:3: duplicate label 'cat' (first on line 1)", tmp);
    load_fails(fx, want, "classes=4\nlabels=%s/x.labels\n", tmp);
    put(fx, "x.labels", "cat\n dog\n");
    snprintf(want, sizeof want, "%s/x.labels:2: label ' dog' has leading or trailing blanks", tmp);
    load_fails(fx, want, "classes=2\nlabels=%s/x.labels\n", tmp);
    put(fx, "x.labels", "\n\n");
    load_fails(fx, "x.labels: no labels in the file", "classes=2\nlabels=%s/x.labels\n", tmp);
}

static void test_name_file_errors(void **state)
{
    struct fixture *fx = *state;
    const char *tmp = fx->dir;
    put(fx, "x.labels", "a\nb\nc\n");
    put(fx, "x.names", "A\nB\n");
    load_fails(fx, "x.names has 2 names but", "classes=3\nlabels=%s/x.labels\nnames=%s/x.names\n",
               tmp, tmp);
    put(fx, "x.names", "A\n \nC\n");
    load_fails(fx, "x.names:2: empty name", "classes=3\nlabels=%s/x.labels\nnames=%s/x.names\n",
               tmp, tmp);
    load_fails(fx, "nothing.names: cannot open",
               "classes=3\nlabels=%s/x.labels\nnames=%s/nothing.names\n", tmp, tmp);
}

static void test_labels_read(void **state)
{
    struct fixture *fx = *state;
    put(fx, "big.labels", "");
    FILE *f = fopen(at(fx, "big.labels"), "wb");
    for (int i = 0; i < 20000; i++)
        fprintf(f, "class%05d\n", 19999 - i);
    fprintf(f, "class12345\n");
    fclose(f);
    char **s;
    int n;
    cn_error e;
    assert_int_equal(data_labels_read(at(fx, "big.labels"), &s, &n, &e), -1);
    assert_non_null(strstr(e.msg, "big.labels:20001: duplicate label 'class12345' (first on line "
                                  "7655)"));
    put(fx, "ok.labels", "x\ny\n");
    assert_int_equal(data_labels_read(at(fx, "ok.labels"), &s, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(s[1], "y");
    data_strings_free(s, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
