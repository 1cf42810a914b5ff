/* test_labels.c - labels from paths (one match, none, several, one label inside another) and image
 * list files (blank lines, CRLF, trailing blanks, line numbers in errors, empty lists). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/list.h"

static char *const animals[] = {"cat", "dog", "emu"};

static void label_fails(const char *path, char *const *labels, int n, const char *want)
{
    int out = -7;
    cn_error e = {{0}};
    assert_int_equal(label_from_path(path, labels, n, &out, &e), -1);
    assert_int_equal(out, -7);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_unique_match(void **state)
{
    (void)state;
    int out;
    cn_error e;
    assert_int_equal(label_from_path("data/x/cat_01.png", animals, 3, &out, &e), 0);
    assert_int_equal(out, 0);
    assert_int_equal(label_from_path("data/emu/0001.jpg", animals, 3, &out, &e), 0);
    assert_int_equal(out, 2); /* the directory counts, as in Darknet */
    assert_int_equal(label_from_path("dogs/a.png", animals, 3, &out, &e), 0);
    assert_int_equal(out, 1);
}

static void test_no_match(void **state)
{
    (void)state;
    label_fails("data/x/cow_01.png", animals, 3,
                "data/x/cow_01.png: matches no label (labels: cat, dog, emu); each path must "
                "contain exactly one label name");
    char *many[] = {"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"};
    label_fails("zz.png", many, 8, "matches no label (labels: a1, a2, a3, a4, a5, a6, ...)");
    label_fails("data/x/Cat.png", animals, 3, "matches no label"); /* case matters */
}

static void test_several_matches(void **state)
{
    (void)state;
    label_fails("data/x/cat_dog.png", animals, 3,
                "data/x/cat_dog.png: matches 2 labels (cat, dog); each path must contain exactly "
                "one label name");
    label_fails("dog/emu/cat.png", animals, 3, "matches 3 labels (cat, dog, emu)");
}

static void test_nested_labels(void **state)
{
    (void)state;
    char *clothes[] = {"tshirt", "shirt", "coat"};
    int out;
    cn_error e;
    assert_int_equal(label_from_path("x/shirt_3.png", clothes, 3, &out, &e), 0);
    assert_int_equal(out, 1);
    label_fails("x/tshirt_3.png", clothes, 3,
                "x/tshirt_3.png: matches 2 labels (tshirt, shirt) ('shirt' is part of 'tshirt': "
                "rename labels so that none contains another); each path must contain exactly "
                "one label name");
}

/* Writes text to a fresh temporary file whose path goes to path[64]. */
static void temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/cfgnet_list_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_list_crlf(void **state)
{
    (void)state;
    char path[64];
    temp_file(path,
              "\r\nimg/cat_1.png\r\nimg/dog_1.png  \r\n\r\n   \nimg/emu_1.png\nimg/cat_2.png");
    struct image_list *l;
    cn_error e;
    if (image_list_load(&l, path, animals, 3, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->n, 4);
    assert_string_equal(l->path, path);
    const char *want[] = {"img/cat_1.png", "img/dog_1.png", "img/emu_1.png", "img/cat_2.png"};
    const int labels[] = {0, 1, 2, 0}, lines[] = {2, 3, 6, 7};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(l->paths[i], want[i]);
        assert_int_equal(l->labels[i], labels[i]);
        assert_int_equal(l->lines[i], lines[i]);
    }
    image_list_destroy(l);
    image_list_destroy(NULL);
    unlink(path);
}

static void list_fails(const char *text, const char *want_after_path)
{
    char path[64], want[256];
    temp_file(path, text);
    snprintf(want, sizeof want, "%s%s", path, want_after_path);
    struct image_list *l = (struct image_list *)1;
    cn_error e = {{0}};
    assert_int_equal(image_list_load(&l, path, animals, 3, &e), -1);
    assert_null(l);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
    unlink(path);
}

static void test_list_errors(void **state)
{
    (void)state;
    list_fails("a/cat.png\r\n\r\nb/cow.png\r\n", ":3: b/cow.png: matches no label");
    list_fails("a/cat.png\nb/catdog.png\n", ":2: b/catdog.png: matches 2 labels (cat, dog)");
    list_fails("", ": no images listed");
    list_fails("\n \r\n\t\n", ": no images listed");
    struct image_list *l;
    cn_error e;
    assert_int_equal(image_list_load(&l, "/nonexistent/list.txt", animals, 3, &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/list.txt: cannot open"));
    assert_int_equal(image_list_load(&l, NULL, animals, 3, &e), -1);
    assert_non_null(strstr(e.msg, "train= or valid= missing"));
}

static void test_list_binary(void **state)
{
    (void)state;
    char path[64] = "/tmp/cfgnet_list_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a/cat.png\n\0\n", 12), 12);
    close(fd);
    struct image_list *l;
    cn_error e;
    assert_int_equal(image_list_load(&l, path, animals, 3, &e), -1);
    assert_non_null(strstr(e.msg, "contains a NUL byte"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_match),    cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_several_matches), cmocka_unit_test(test_nested_labels),
        cmocka_unit_test(test_list_crlf),       cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_list_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
