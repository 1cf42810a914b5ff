/* fileio.c - checked file I/O (see fileio.h).
 *
 * The atomic writer follows the usual POSIX recipe: write a temporary file in the target's
 * directory (so rename stays within one filesystem), flush and fsync it, rename it over the
 * target, then fsync the directory so the rename itself survives a crash. A reader therefore
 * sees either the old file or the complete new one, never a torn write. Left out: Windows, and
 * preserving the old file's permissions (the new file gets 0666 minus the umask).
 */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536

/* Copies the directory part of path into a malloc'd string: "a/b/c" -> "a/b", "c" -> ".",
 * "/c" -> "/". */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* Makes a completed rename durable. File systems that cannot fsync a directory (EINVAL) are
 * accepted as they are. */
static int fsync_dir(const char *path, cn_error *e)
{
    char *dir = dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0) {
        rc = cn_fail(e, "%s: written, but cannot open directory %s to sync it: %s", path, dir,
                     strerror(errno));
    } else {
        if (fsync(fd) && errno != EINVAL)
            rc = cn_fail(e, "%s: written, but syncing directory %s failed: %s", path, dir,
                         strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

/* Writes, flushes, syncs and closes f. Returns 0, or errno of the first failure (f is closed
 * either way). */
static int write_and_close(FILE *f, const struct fileio_chunk *chunks, int nchunks)
{
    int err = 0;
    for (int i = 0; i < nchunks && !err; i++)
        if (chunks[i].len && fwrite(chunks[i].data, 1, chunks[i].len, f) != chunks[i].len)
            err = errno ? errno : EIO;
    if (!err && fflush(f))
        err = errno;
    if (!err && fsync(fileno(f)))
        err = errno;
    if (fclose(f) && !err)
        err = errno ? errno : EIO;
    return err;
}

int fileio_write_atomic(const char *path, const struct fileio_chunk *chunks, int nchunks,
                        cn_error *e)
{
    size_t tmplen = strlen(path) + 32;
    char *tmp = xmalloc(tmplen);
    snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        cn_fail(e, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    int err = 0;
    if (!f) {
        err = errno;
        close(fd);
    } else {
        errno = 0;
        err = write_and_close(f, chunks, nchunks);
    }
    if (err) {
        cn_fail(e, "%s: cannot write %s: %s", path, tmp, strerror(err));
    } else if (rename(tmp, path)) {
        err = errno;
        cn_fail(e, "%s: cannot rename %s over it: %s", path, tmp, strerror(err));
    }
    if (err)
        unlink(tmp);
    free(tmp);
    return err ? -1 : fsync_dir(path, e);
}

/* Grows buf so that at least two bytes are free, never beyond max + 2 (enough to see that a
 * file holds more than max bytes, plus the NUL). Returns the new buffer or NULL. */
static char *grow(char *buf, size_t *cap, size_t max)
{
    size_t want = *cap > SIZE_MAX / 2 ? SIZE_MAX : CN_MAX(*cap * 2, (size_t)READ_CHUNK);
    if (max < SIZE_MAX - 2 && want > max + 2)
        want = max + 2;
    char *p = realloc(buf, want);
    if (p)
        *cap = want;
    return p;
}

int fileio_read_all(const char *path, size_t max, char **out, size_t *len, cn_error *e)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int rc = 0;
    for (;;) {
        if (cap - n < 2) {
            char *p = grow(buf, &cap, max);
            if (!p) {
                rc = cn_fail(e, "%s: out of memory after %zu bytes", path, n);
                break;
            }
            buf = p;
        }
        size_t room = CN_MIN(cap - 1 - n, (size_t)READ_CHUNK);
        size_t got = fread(buf + n, 1, room, f);
        n += got;
        if (n > max) {
            rc = cn_fail(e, "%s: larger than the limit of %zu bytes", path, max);
            break;
        }
        if (got < room) {
            if (ferror(f))
                rc = cn_fail(e, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int fileio_size(const char *path, uint64_t *size, cn_error *e)
{
    struct stat st;
    if (stat(path, &st))
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return cn_fail(e, "%s: is a directory, not a file", path);
    if (!S_ISREG(st.st_mode))
        return cn_fail(e, "%s: not a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* mkdir -p: creates every missing component of dir. */
static int make_dirs(const char *dir, cn_error *e)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) && errno != EEXIST) {
            rc = cn_fail(e, "%s: cannot create directory %s: %s", dir, p, strerror(errno));
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return rc;
}

int fileio_check_dir_writable(const char *dir, cn_error *e)
{
    struct stat st;
    if (!dir[0])
        return cn_fail(e, "an empty directory name");
    if (stat(dir, &st)) {
        if (errno != ENOENT)
            return cn_fail(e, "%s: %s", dir, strerror(errno));
        if (make_dirs(dir, e))
            return -1;
        if (stat(dir, &st))
            return cn_fail(e, "%s: created, but cannot stat it: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return cn_fail(e, "%s: exists but is not a directory", dir);
    size_t plen = strlen(dir) + 48;
    char *probe = xmalloc(plen);
    snprintf(probe, plen, "%s/.cfgnet-probe.%ld", dir, (long)getpid());
    int rc = 0;
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cn_fail(e, "%s: cannot create files there: %s", dir, strerror(errno));
    } else {
        close(fd);
        if (unlink(probe))
            rc = cn_fail(e, "%s: cannot remove probe file %s: %s", dir, probe, strerror(errno));
    }
    free(probe);
    return rc;
}

int fileio_join(char *out, size_t cap, const char *dir, const char *name, cn_error *e)
{
    size_t n = strlen(dir);
    const char *sep = n && dir[n - 1] == '/' ? "" : "/";
    int w = snprintf(out, cap, "%s%s%s", dir, sep, name);
    if (w < 0 || (size_t)w >= cap)
        return cn_fail(e, "%s: path too long under this directory", dir);
    return 0;
}
