/* jpegcheck.c - JPEG marker walk (jpegcheck.h). Layout (ITU T.81 B.1): SOI FFD8, then segments
 * FF <marker> <uint16 big-endian length including itself> <payload>; after SOS (FFDA) comes
 * entropy-coded data, in which FF is followed by 00 (a stuffed byte) or D0-D7 (restart markers);
 * any other byte after FF starts the next marker. A DHT (FFC4) payload is a list of tables: one
 * byte class/id, 16 counts of codes per length, then as many symbol bytes as the counts sum to. */
#include "data/jpegcheck.h"

#define MAX_CODES 256

/* Checks the tables of one DHT payload of len bytes. */
static int check_dht(FILE *f, long len, const char *path, cn_error *e)
{
    while (len > 0) {
        int n = 0;
        if (getc(f) == EOF || len < 17)
            return 0; /* truncated: stb reports it */
        for (int i = 0; i < 16; i++) {
            int c = getc(f);
            n += c == EOF ? 0 : c;
        }
        if (n > MAX_CODES)
            return cn_fail(e, "%s: corrupt JPEG: a Huffman table declares %d codes (at most %d)",
                           path, n, MAX_CODES);
        for (int i = 0; i < n; i++)
            getc(f);
        len -= 17 + n;
    }
    return 0;
}

/* Skips entropy-coded data; returns the marker byte that ends it, or EOF. */
static int skip_entropy(FILE *f)
{
    for (int c = getc(f); c != EOF; c = getc(f)) {
        if (c != 0xFF)
            continue;
        int m = getc(f);
        while (m == 0xFF)
            m = getc(f);
        if (m == EOF || (m != 0 && (m < 0xD0 || m > 0xD7)))
            return m;
    }
    return EOF;
}

static int walk(FILE *f, const char *path, cn_error *e)
{
    int m = EOF;
    for (;;) {
        if (m == EOF) {
            int c = getc(f);
            while (c != EOF && c != 0xFF)
                c = getc(f);
            while (c == 0xFF)
                c = getc(f);
            m = c;
        }
        if (m == EOF || m == 0xD9)
            return 0;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
            m = EOF;
            continue;
        }
        int hi = getc(f), lo = getc(f);
        if (hi == EOF || lo == EOF)
            return 0;
        long len = (long)(hi << 8 | lo) - 2;
        if (m == 0xC4 && check_dht(f, len, path, e))
            return -1;
        if (m != 0xC4)
            for (long i = 0; i < len && getc(f) != EOF; i++)
                ;
        m = m == 0xDA ? skip_entropy(f) : EOF;
    }
}

int jpeg_check(FILE *f, const char *path, cn_error *e)
{
    long start = ftell(f);
    int a = getc(f), b = getc(f);
    int rc = a == 0xFF && b == 0xD8 ? walk(f, path, e) : 0;
    fseek(f, start, SEEK_SET);
    return rc;
}
