/* common.h - errors, checked allocation, size arithmetic and asserts shared by all of cfgnet.
 *
 * Conventions: a function that can fail because of user input returns 0 on success and -1 on
 * failure, after writing one line into a cn_error (no trailing newline). Internal invariants use
 * CN_ASSERT, which aborts with file:line. Library code never prints or exits otherwise.
 */
#ifndef CN_COMMON_H
#define CN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CN_ERR_MAX 1024

typedef struct cn_error {
    char msg[CN_ERR_MAX];
} cn_error;

/* Formats a message into e (if e is non-NULL) and returns -1, so callers can `return cn_fail(...)`. */
int cn_fail(cn_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (adds context on the way up). Returns -1. */
int cn_wrap(cn_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

_Noreturn void cn_assert_fail(const char *expr, const char *file, int line);
#define CN_ASSERT(x) ((x) ? (void)0 : cn_assert_fail(#x, __FILE__, __LINE__))

/* Allocation that aborts with the call site on out-of-memory: for small, bounded sizes only.
 * Sizes that come from a file or a cfg go through cn_alloc, which returns an error instead. */
void *cn_xmalloc_at(size_t n, const char *file, int line);
void *cn_xcalloc_at(size_t n, size_t size, const char *file, int line);
void *cn_xrealloc_at(void *p, size_t n, const char *file, int line);
char *cn_xstrdup_at(const char *s, const char *file, int line);
#define xmalloc(n) cn_xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) cn_xcalloc_at((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) cn_xrealloc_at((p), (n), __FILE__, __LINE__)
#define xstrdup(s) cn_xstrdup_at((s), __FILE__, __LINE__)

/* A reusable byte buffer *buf of *cap bytes grown to hold at least need (to need itself, or by
 * doubling from min when doubling is set); 0, or -1 with *buf and *cap untouched when memory is
 * short (sizes from a file: the caller reports). */
int cn_reserve(uint8_t **buf, size_t *cap, size_t need, size_t min, int doubling);

/* Zeroed, 64-byte aligned allocation of n floats; NULL and a message when n is absurd or memory
 * is short. Free with cn_free_floats. */
float *cn_alloc_floats(size_t n, const char *what, cn_error *e);
void cn_free_floats(float *p);

/* Overflow-checked size arithmetic: return 0 and write the result, or -1 on overflow. */
int cn_mul(size_t *out, size_t a, size_t b);
int cn_add(size_t *out, size_t a, size_t b);

/* Levenshtein distance, for "did you mean" hints. */
int cn_edit_distance(const char *a, const char *b);

/* Returns the candidate closest to word when it is close enough to be a likely typo, else NULL. */
const char *cn_closest(const char *word, const char *const *cands, int n);

/* FNV-1a (64-bit) over the bits of n floats: a checksum of weights, equal iff bit for bit
 * (barring collisions). */
uint64_t cn_hash_floats(const float *x, size_t n);

/* r[i] = element idx_i of the 16 of x and y together (x: 0-7, y: 8-15), for 8-lane vectors of
 * 32-bit elements; the indices are constants. GCC and clang spell the builtin differently. */
#if defined(__clang__)
#define CN_SHUF8(x, y, ...) __builtin_shufflevector(x, y, __VA_ARGS__)
#else
typedef int cn_shuf8_mask __attribute__((vector_size(32)));
#define CN_SHUF8(x, y, ...) __builtin_shuffle(x, y, (cn_shuf8_mask){__VA_ARGS__})
#endif

#define CN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
