/* Correctness checks and throughput of the C kernels in Sources/CKernels (CRC-64/Jones and
   LZF decompression). Includes the kernel sources directly, so it also reaches the
   portable fallbacks and the folding constants.

   Build and run from the package root (release-like flags, no -march=native):
       cc -O2 -march=x86-64 -mtune=generic -o /tmp/kernels-bench Scripts/kernels-bench.c -lpthread
       /tmp/kernels-bench [file.rdb ...]     (default: the Fixtures .rdb files)
   Bounds checking under sanitizers (slower; skips nothing):
       cc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
          -o /tmp/kernels-asan Scripts/kernels-bench.c -lpthread && /tmp/kernels-asan --quick
   Exit status 0 when every check passed. */

#define _GNU_SOURCE
#include "../Sources/CKernels/crc64.c"
#include "../Sources/CKernels/lzf.c"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;
static int quick; /* --quick: smaller benchmarks (for sanitizer builds) */

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            if (failures <= 30) {                                            \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
                fprintf(stderr, __VA_ARGS__);                                \
                fputc('\n', stderr);                                         \
            }                                                                \
        }                                                                    \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static void fill_random(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd();
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); fclose(f); return NULL; }
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* ================================================================== CRC-64 */

/* Straight from the definition: reflected, one bit at a time. */
static uint64_t crc64_bitwise(uint64_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x95ac9329ac4bc9b5ULL : crc >> 1;
    }
    return crc;
}

static uint64_t reflect64(uint64_t v) {
    uint64_t r = 0;
    for (int i = 0; i < 64; i++)
        if ((v >> i) & 1) r |= 1ULL << (63 - i);
    return r;
}
/* x^k mod P, P = x^64 + 0xad93d23594c935a9, in the normal (unreflected) domain. */
static uint64_t xpow_mod_p(unsigned k) {
    uint64_t r = 1;
    for (unsigned i = 0; i < k; i++) {
        uint64_t carry = r >> 63;
        r <<= 1;
        if (carry) r ^= 0xad93d23594c935a9ULL;
    }
    return r;
}

/* Derives the PCLMUL folding constants and checks the hard-coded ones. */
static void crc64_fold_constants(int print) {
    CHECK(reflect64(0xad93d23594c935a9ULL) == CRC64_POLY_REFLECTED, "reflected polynomial");
#ifdef CRC64_HAVE_CLMUL
    for (unsigned j = 1; j <= 16; j++) {
        unsigned D = 128 * j;
        uint64_t hi = reflect64(xpow_mod_p(D + 63)), lo = reflect64(xpow_mod_p(D - 1));
        if (print)
            printf("  D=%4u  K(%u)=0x%016llx  K(%u)=0x%016llx\n", D, D + 63, (unsigned long long)hi, D - 1,
                   (unsigned long long)lo);
        CHECK(crc64_fold_k[j][0] == hi && crc64_fold_k[j][1] == lo, "fold constant for D=%u", D);
    }
#endif
}

typedef struct {
    const char *name;
    crc64_fn fn;
} crc_impl;

static crc_impl crc_impls[4];
static int n_crc_impls;

static void crc64_setup(void) {
    crc_impls[n_crc_impls++] = (crc_impl){"sd_crc64_update (dispatch)", sd_crc64_update};
    crc_impls[n_crc_impls++] = (crc_impl){"slicing-by-16 table", crc64_table};
#ifdef CRC64_HAVE_CLMUL
    if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
        crc_impls[n_crc_impls++] = (crc_impl){"pclmul folding", crc64_clmul};
    else
        printf("(CPU lacks PCLMULQDQ: SIMD path not tested)\n");
    if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul") &&
        __builtin_cpu_supports("sse4.1"))
        crc_impls[n_crc_impls++] = (crc_impl){"vpclmulqdq (256-bit) folding", crc64_vclmul};
    else
        printf("(CPU lacks VPCLMULQDQ/AVX2: 256-bit path not tested)\n");
#endif
}

static void crc64_tests(void) {
    const char *check = "123456789";
    uint64_t ref = crc64_bitwise(0, (const unsigned char *)check, 9);
    CHECK(ref == 0xe9c6d914c4b8d9caULL, "bitwise reference check value %016llx", (unsigned long long)ref);
    for (int i = 0; i < n_crc_impls; i++) {
        uint64_t v = crc_impls[i].fn(0, check, 9);
        CHECK(v == 0xe9c6d914c4b8d9caULL, "%s: check value %016llx", crc_impls[i].name, (unsigned long long)v);
        CHECK(crc_impls[i].fn(0x1234, NULL, 0) == 0x1234, "%s: empty input", crc_impls[i].name);
    }

    /* Every length 0..4096 at varying alignment and a random starting CRC, plus a random
       split point (continuation) for each. */
    enum { MAXLEN = 4096 };
    unsigned char *buf = malloc(MAXLEN + 64);
    fill_random(buf, MAXLEN + 64);
    long cases = 0;
    for (size_t len = 0; len <= MAXLEN; len++) {
        size_t align = len % 61;
        const unsigned char *p = buf + align;
        uint64_t init = (len % 3 == 0) ? 0 : rnd();
        uint64_t want = crc64_bitwise(init, p, len);
        size_t split = len ? (size_t)(rnd() % (len + 1)) : 0;
        for (int i = 0; i < n_crc_impls; i++) {
            crc64_fn f = crc_impls[i].fn;
            uint64_t whole = f(init, p, len);
            uint64_t parts = f(f(init, p, split), p + split, len - split);
            CHECK(whole == want, "%s: len %zu align %zu", crc_impls[i].name, len, align);
            CHECK(parts == want, "%s: len %zu split at %zu", crc_impls[i].name, len, split);
            cases += 2;
        }
        /* The crc of zero-initialised a||b equals update(update(0, a), b), also across impls. */
        if (n_crc_impls > 2)
            CHECK(crc_impls[1].fn(crc_impls[2].fn(0, p, split), p + split, len - split) == crc64_bitwise(0, p, len),
                  "mixed impls, len %zu", len);
    }
    /* Many random splits of one larger buffer. */
    {
        size_t n = 1 << 20;
        unsigned char *big = malloc(n);
        fill_random(big, n);
        uint64_t want = crc64_bitwise(0, big, n);
        for (int i = 0; i < n_crc_impls; i++) {
            CHECK(crc_impls[i].fn(0, big, n) == want, "%s: 1 MiB", crc_impls[i].name);
            uint64_t c = 0;
            size_t pos = 0;
            while (pos < n) {
                size_t step = (size_t)(rnd() % 3000);
                if (step > n - pos) step = n - pos;
                c = crc_impls[i].fn(c, big + pos, step);
                pos += step;
            }
            CHECK(c == want, "%s: 1 MiB in random pieces", crc_impls[i].name);
        }
        free(big);
    }
    free(buf);
    printf("crc64: check value, %ld random length/split cases (0..%d bytes), 1 MiB pieces: %s\n", cases, MAXLEN,
           failures ? "FAILURES" : "ok");
}

/* RDB files end with the little-endian CRC-64 of everything before the trailer
   (0 when the writer disabled checksums). */
static void crc64_rdb_files(char **files, int nfiles) {
    for (int f = 0; f < nfiles; f++) {
        size_t n;
        unsigned char *buf = read_file(files[f], &n);
        if (!buf || n < 9) {
            CHECK(0, "cannot read %s", files[f]);
            free(buf);
            continue;
        }
        uint64_t stored = 0;
        for (int i = 7; i >= 0; i--) stored = (stored << 8) | buf[n - 8 + i];
        if (stored == 0) {
            printf("  %-40s %10zu bytes  trailer 0 (checksum disabled), skipped\n", files[f], n);
        } else {
            int ok = 1;
            for (int i = 0; i < n_crc_impls; i++) ok &= crc_impls[i].fn(0, buf, n - 8) == stored;
            CHECK(ok, "%s: CRC-64 mismatch with trailer %016llx", files[f], (unsigned long long)stored);
            printf("  %-40s %10zu bytes  trailer %016llx  %s\n", files[f], n, (unsigned long long)stored,
                   ok ? "matches (all impls)" : "MISMATCH");
        }
        free(buf);
    }
}

static double crc64_mbps(crc64_fn f, const unsigned char *buf, size_t n, int reps) {
    double best = 1e30;
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        sink ^= f(0, buf, n);
        t = now() - t;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)n / best / 1e6;
}

static void crc64_bench(void) {
    size_t n = quick ? (4u << 20) : (64u << 20);
    unsigned char *buf = malloc(n);
    fill_random(buf, n);
    printf("crc64 throughput (best of several runs; MB = 10^6 bytes):\n");
    for (int i = 0; i < n_crc_impls; i++) {
        double big = crc64_mbps(crc_impls[i].fn, buf, n, quick ? 2 : 7);
        /* Cache-resident: 64 KiB, timed as 1024 calls. */
        double best = 1e30;
        for (int r = 0; r < 5; r++) {
            volatile uint64_t sink = 0;
            double t = now();
            for (int k = 0; k < (quick ? 16 : 1024); k++) sink ^= crc_impls[i].fn(sink, buf, 65536);
            t = now() - t;
            if (t < best) best = t;
        }
        double small = (double)(quick ? 16 : 1024) * 65536 / best / 1e6;
        printf("  %-28s %9.0f MB/s on %zu MiB   %9.0f MB/s on 64 KiB (in cache)\n", crc_impls[i].name, big,
               n >> 20, small);
    }
    free(buf);
}

/* ================================================================== LZF */

/* Reference decoder written straight from the format, one byte at a time, exact checks.
   Returns the decoded size, or -1 for malformed input / output overflow. */
static long lzf_reference(const unsigned char *in, size_t n_in, unsigned char *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n_in) {
        unsigned ctrl = in[i++];
        if (ctrl < 32) {
            size_t len = ctrl + 1;
            if (n_in - i < len || cap - o < len) return -1;
            for (size_t k = 0; k < len; k++) out[o++] = in[i++];
        } else {
            size_t len = ctrl >> 5;
            if (len == 7) {
                if (i >= n_in) return -1;
                len += in[i++];
            }
            if (i >= n_in) return -1;
            size_t dist = ((size_t)(ctrl & 31) << 8) + in[i++] + 1;
            len += 2;
            if (dist > o || cap - o < len) return -1;
            for (size_t k = 0; k < len; k++, o++) out[o] = out[o - dist];
        }
    }
    return (long)o;
}

/* Greedy LZF compressor for test data: 3-byte hash -> last position. Returns the
   compressed size, or 0 when it would not fit in cap. */
static size_t lzf_compress_test(const unsigned char *in, size_t n, unsigned char *out, size_t cap, int lazy_hash) {
    enum { HBITS = 14 };
    static size_t tab[1 << HBITS];
    memset(tab, 0, sizeof tab);
    size_t o = 0, i = 0, lit = 0;
#define EMIT(b) do { if (o >= cap) return 0; out[o++] = (unsigned char)(b); } while (0)
#define FLUSH(upto)                                                          \
    do {                                                                     \
        while (lit < (upto)) {                                               \
            size_t cnt = (upto) - lit;                                       \
            if (cnt > 32) cnt = 32;                                          \
            EMIT(cnt - 1);                                                   \
            for (size_t k = 0; k < cnt; k++) EMIT(in[lit + k]);              \
            lit += cnt;                                                      \
        }                                                                    \
    } while (0)
#define HASH(q) ((((uint32_t)(q)[0] << 16 | (uint32_t)(q)[1] << 8 | (q)[2]) * 2654435761u) >> (32 - HBITS))
    while (i + 2 < n) {
        uint32_t h = HASH(in + i);
        size_t cand = tab[h];
        tab[h] = i + 1;
        if (cand) {
            size_t ref = cand - 1, dist = i - ref;
            if (dist <= 8192 && in[ref] == in[i] && in[ref + 1] == in[i + 1] && in[ref + 2] == in[i + 2]) {
                size_t max = n - i < 264 ? n - i : 264, len = 3;
                while (len < max && in[ref + len] == in[i + len]) len++;
                FLUSH(i);
                size_t l = len - 2, off = dist - 1;
                if (l < 7) {
                    EMIT((l << 5) | (off >> 8));
                } else {
                    EMIT((7 << 5) | (off >> 8));
                    EMIT(l - 7);
                }
                EMIT(off & 0xff);
                if (!lazy_hash)
                    for (size_t k = i + 1; k < i + len && k + 2 < n; k++) tab[HASH(in + k)] = k + 1;
                i += len;
                lit = i;
                continue;
            }
        }
        i++;
    }
    FLUSH(n);
#undef EMIT
#undef FLUSH
#undef HASH
    return o;
}

/* Decodes with sd_lzf_decompress into an exactly sized heap buffer (so ASan sees any
   overrun) and compares with the reference decoder. */
static void lzf_check_one(const unsigned char *c, size_t clen, size_t out_len, const char *what) {
    unsigned char *ref = malloc(out_len + 1);
    unsigned char *got = malloc(out_len ? out_len : 1);
    unsigned char *cin = malloc(clen ? clen : 1); /* exact-size copy of the input */
    memcpy(cin, c, clen);
    long r = lzf_reference(cin, clen, ref, out_len);
    int want = r >= 0 && (size_t)r == out_len;
    int res = sd_lzf_decompress(cin, clen, got, out_len);
    CHECK(res == want, "%s: clen %zu out_len %zu: got %d want %d", what, clen, out_len, res, want);
    if (res && want) CHECK(memcmp(ref, got, out_len) == 0, "%s: output differs (clen %zu)", what, clen);
    free(ref);
    free(got);
    free(cin);
}

static void gen_data(unsigned char *p, size_t n, int kind) {
    static const char *words[] = {"user:", "session", "0", "1", "true", "false", "redis", "valkey", ":", "{",
                                  "}", "\"name\"", "\"id\"", " ", ",", "2024-11-24", "slot", "key"};
    switch (kind) {
    case 0: fill_random(p, n); break;                          /* incompressible */
    case 1: memset(p, 'a', n); break;                          /* one long run */
    case 2: {                                                  /* short periods 1..20 */
        size_t i = 0;
        while (i < n) {
            unsigned per = 1 + (unsigned)(rnd() % 20), run = 1 + (unsigned)(rnd() % 600);
            unsigned char pat[20];
            fill_random(pat, per);
            for (unsigned k = 0; k < run && i < n; k++, i++) p[i] = pat[k % per];
        }
        break;
    }
    case 3: {                                                  /* text-like */
        size_t i = 0;
        while (i < n) {
            const char *w = words[rnd() % (sizeof words / sizeof *words)];
            for (; *w && i < n; w++) p[i++] = (unsigned char)*w;
            if (rnd() % 4 == 0 && i < n) p[i++] = (unsigned char)('0' + rnd() % 10);
        }
        break;
    }
    default: {                                                 /* mixed random/repeats */
        size_t i = 0;
        while (i < n) {
            size_t run = 1 + (size_t)(rnd() % 100);
            if (i > 0 && rnd() % 2) {
                size_t dist = 1 + (size_t)(rnd() % (i < 9000 ? i : 9000));
                for (size_t k = 0; k < run && i < n; k++, i++) p[i] = p[i - dist];
            } else {
                for (size_t k = 0; k < run && i < n; k++, i++) p[i] = (unsigned char)rnd();
            }
        }
    }
    }
}

static void lzf_tests(void) {
    long rounds = 0, fuzz = 0;
    size_t maxn = 70000;
    unsigned char *data = malloc(maxn), *comp = malloc(maxn * 2 + 64);
    /* Round trips: all lengths 0..600 and a spread of larger ones, five kinds of data. */
    for (int kind = 0; kind < 5; kind++) {
        for (size_t n = 0; n < maxn; n = n < 600 ? n + 1 : n * 5 / 4 + (size_t)(rnd() % 50)) {
            gen_data(data, n, kind);
            size_t clen = lzf_compress_test(data, n, comp, maxn * 2 + 64, (int)(n & 1));
            CHECK(n == 0 || clen > 0, "compressor failed n=%zu", n);
            unsigned char *out = malloc(n ? n : 1);
            unsigned char *cin = malloc(clen ? clen : 1);
            memcpy(cin, comp, clen);
            CHECK(sd_lzf_decompress(cin, clen, out, n) == 1 && memcmp(out, data, n) == 0,
                  "round trip kind %d n %zu clen %zu", kind, n, clen);
            rounds++;
            /* Wrong sizes must fail. */
            if (n > 0) {
                unsigned char *o2 = malloc(n - 1 ? n - 1 : 1);
                CHECK(sd_lzf_decompress(cin, clen, o2, n - 1) == 0, "out_len n-1 accepted, kind %d n %zu", kind, n);
                free(o2);
            }
            unsigned char *o3 = malloc(n + 1);
            CHECK(sd_lzf_decompress(cin, clen, o3, n + 1) == 0, "out_len n+1 accepted, kind %d n %zu", kind, n);
            free(o3);
            /* Truncations and corruptions against the reference. */
            if (n <= 3000) {
                for (size_t t = 0; t < clen; t += 1 + clen / 64) lzf_check_one(cin, t, n, "truncated"), fuzz++;
                for (int m = 0; m < 8 && clen; m++) {
                    unsigned char *mut = malloc(clen);
                    memcpy(mut, cin, clen);
                    mut[rnd() % clen] = (unsigned char)rnd();
                    lzf_check_one(mut, clen, n, "mutated");
                    lzf_check_one(mut, clen, n + (size_t)(rnd() % 8), "mutated, other size");
                    free(mut);
                    fuzz += 2;
                }
            }
            free(out);
            free(cin);
        }
    }
    /* Random valid token streams (any mix of literals and matches, distances biased to
       the small ones that take the pattern paths, lengths up to the maximum), decoded
       with the exact size and with sizes a little off, and cut short. */
    for (int it = 0; it < (quick ? 3000 : 30000); it++) {
        size_t target = (size_t)(rnd() % (it % 10 == 0 ? 5000 : 400)), o = 0, c = 0;
        while (o < target || o == 0) {
            uint64_t r = rnd();
            if (o == 0 || r % 3 == 0) {
                size_t len = 1 + (size_t)(rnd() % 32);
                comp[c++] = (unsigned char)(len - 1);
                for (size_t k = 0; k < len; k++) comp[c++] = (unsigned char)rnd();
                o += len;
            } else {
                size_t maxd = o < 8192 ? o : 8192;
                size_t dist = (r >> 8) % 4 == 0 ? 1 + (size_t)(rnd() % maxd)
                                                : 1 + (size_t)(rnd() % (maxd < 20 ? maxd : 20));
                size_t len = (r >> 12) % 4 == 0 ? 3 + (size_t)(rnd() % 262) : 3 + (size_t)(rnd() % 14);
                size_t l = len - 2, off = dist - 1;
                if (l < 7) {
                    comp[c++] = (unsigned char)((l << 5) | (off >> 8));
                } else {
                    comp[c++] = (unsigned char)((7 << 5) | (off >> 8));
                    comp[c++] = (unsigned char)(l - 7);
                }
                comp[c++] = (unsigned char)(off & 0xff);
                o += len;
            }
        }
        lzf_check_one(comp, c, o, "token stream");
        lzf_check_one(comp, c, o - 1 - (size_t)(rnd() % (o < 40 ? o : 40)), "token stream, short size");
        lzf_check_one(comp, c, o + 1 + (size_t)(rnd() % 40), "token stream, long size");
        lzf_check_one(comp, (size_t)(rnd() % c), o, "token stream, cut");
        fuzz += 4;
    }
    /* Random garbage, biased towards plausible tokens, against the reference. */
    for (int it = 0; it < (quick ? 20000 : 200000); it++) {
        size_t clen = (size_t)(rnd() % 200);
        for (size_t k = 0; k < clen; k++) {
            uint64_t r = rnd();
            comp[k] = (unsigned char)((r & 0x300) == 0 ? (r & 31) : (r & 0x400) ? (r & 0xe0) : r);
        }
        lzf_reference(comp, clen, data, maxn);
        long full = lzf_reference(comp, clen, data, maxn);
        size_t out_len = full >= 0 && rnd() % 2 ? (size_t)full : (size_t)(rnd() % 600);
        lzf_check_one(comp, clen, out_len, "garbage");
        fuzz++;
    }
    free(data);
    free(comp);
    printf("lzf: %ld round trips (5 kinds of data, 0..%zu bytes, wrong sizes rejected), %ld malformed/fuzz cases vs "
           "reference: %s\n",
           rounds, maxn, fuzz, failures ? "FAILURES" : "ok");
}

/* ------------------------------------------------------------------ real LZF data */

typedef struct {
    const unsigned char *c;
    size_t clen, ulen;
} blob;

/* RDB length encoding; returns 0 on failure. Special encodings (11xxxxxx) are not lengths. */
static int rdb_len(const unsigned char *p, const unsigned char *e, size_t *len, const unsigned char **next) {
    if (p >= e) return 0;
    unsigned b = p[0];
    switch (b >> 6) {
    case 0: *len = b & 63; *next = p + 1; return 1;
    case 1:
        if (e - p < 2) return 0;
        *len = ((size_t)(b & 63) << 8) | p[1];
        *next = p + 2;
        return 1;
    case 2:
        if (b == 0x80) {
            if (e - p < 5) return 0;
            *len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
            *next = p + 5;
            return 1;
        }
        if (b == 0x81) {
            if (e - p < 9) return 0;
            uint64_t v = 0;
            for (int i = 1; i <= 8; i++) v = v << 8 | p[i];
            *len = (size_t)v;
            *next = p + 9;
            return 1;
        }
        return 0;
    default: return 0;
    }
}

/* Finds LZF-compressed strings (0xC3 clen ulen data) by scanning; a candidate counts when
   the reference decoder produces exactly ulen bytes from exactly clen bytes. */
static size_t find_lzf_blobs(const unsigned char *buf, size_t n, blob **out, size_t *count, size_t *cap) {
    size_t total = 0;
    const unsigned char *e = buf + n;
    unsigned char *scratch = NULL;
    size_t scap = 0;
    for (const unsigned char *p = buf; p < e; p++) {
        if (*p != 0xC3) continue;
        size_t clen, ulen;
        const unsigned char *q, *d;
        if (!rdb_len(p + 1, e, &clen, &q) || !rdb_len(q, e, &ulen, &d)) continue;
        if (clen == 0 || ulen == 0 || clen > (size_t)(e - d) || ulen > (64u << 20) || ulen < clen) continue;
        if (ulen > scap) { scap = ulen; scratch = realloc(scratch, scap); }
        long r = lzf_reference(d, clen, scratch, ulen);
        if (r != (long)ulen) continue;
        if (*count == *cap) { *cap = *cap ? *cap * 2 : 1024; *out = realloc(*out, *cap * sizeof **out); }
        (*out)[(*count)++] = (blob){d, clen, ulen};
        total += ulen;
        p = d + clen - 1;
    }
    free(scratch);
    return total;
}

static void lzf_bench_blobs(const char *label, blob *b, size_t nb, size_t total_u, int reps) {
    if (!nb) return;
    size_t maxu = 0, total_c = 0;
    for (size_t i = 0; i < nb; i++) {
        if (b[i].ulen > maxu) maxu = b[i].ulen;
        total_c += b[i].clen;
    }
    unsigned char *out = malloc(maxu), *ref = malloc(maxu);
    int ok = 1;
    for (size_t i = 0; i < nb; i++) {
        lzf_reference(b[i].c, b[i].clen, ref, b[i].ulen);
        ok &= sd_lzf_decompress(b[i].c, b[i].clen, out, b[i].ulen) == 1 && memcmp(out, ref, b[i].ulen) == 0;
    }
    CHECK(ok, "%s: decoded blobs differ from the reference", label);
    double best = 1e30, best_ref = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (size_t i = 0; i < nb; i++) sd_lzf_decompress(b[i].c, b[i].clen, out, b[i].ulen);
        t = now() - t;
        if (t < best) best = t;
        t = now();
        for (size_t i = 0; i < nb; i++) lzf_reference(b[i].c, b[i].clen, ref, b[i].ulen);
        t = now() - t;
        if (t < best_ref) best_ref = t;
    }
    printf("  %-34s %7zu blobs, %9zu -> %10zu bytes (avg %6zu): %7.0f MB/s out (byte-loop reference %5.0f MB/s)%s\n",
           label, nb, total_c, total_u, total_u / nb, (double)total_u / best / 1e6, (double)total_u / best_ref / 1e6,
           ok ? "" : "  MISMATCH");
    free(out);
    free(ref);
}

static void lzf_bench(char **files, int nfiles) {
    printf("lzf decompression throughput (MB of output per second, best of several runs):\n");
    /* Real data: compressed strings found in the RDB files. */
    blob *b = NULL;
    size_t nb = 0, cap = 0, total = 0;
    unsigned char **keep = calloc((size_t)nfiles, sizeof *keep);
    for (int f = 0; f < nfiles; f++) {
        size_t n;
        keep[f] = read_file(files[f], &n);
        if (keep[f]) total += find_lzf_blobs(keep[f], n, &b, &nb, &cap);
    }
    if (nb) {
        int reps = quick ? 1 : (int)(2e9 / (double)total) + 3;
        if (reps > 200) reps = 200;
        lzf_bench_blobs("RDB strings (given files)", b, nb, total, reps);
    } else {
        printf("  (no LZF strings found in the given files)\n");
    }
    free(b);
    /* Synthetic: 64 KiB blocks of each kind, compressed by the test compressor. */
    static const char *kinds[] = {"random (all literals)", "single-byte run", "short periods 1..20",
                                  "text-like", "mixed literals/matches"};
    size_t bs = 65536, nblocks = quick ? 4 : 64;
    unsigned char *data = malloc(bs), *comp = malloc(nblocks * (bs * 2 + 64));
    blob *sb = malloc(nblocks * sizeof *sb);
    for (int kind = 0; kind < 5; kind++) {
        size_t off = 0;
        for (size_t i = 0; i < nblocks; i++) {
            gen_data(data, bs, kind);
            size_t c = lzf_compress_test(data, bs, comp + off, bs * 2 + 64, 0);
            sb[i] = (blob){comp + off, c, bs};
            off += c;
        }
        char label[64];
        snprintf(label, sizeof label, "synthetic: %s", kinds[kind]);
        lzf_bench_blobs(label, sb, nblocks, nblocks * bs, quick ? 1 : 20);
    }
    free(data);
    free(comp);
    free(sb);
    for (int f = 0; f < nfiles; f++) free(keep[f]);
    free(keep);
}

/* ================================================================== main */

int main(int argc, char **argv) {
    char **files = NULL;
    int nfiles = 0;
    glob_t g = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else {
            files = realloc(files, (size_t)(nfiles + 1) * sizeof *files);
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles && glob("Fixtures/*.rdb", 0, NULL, &g) == 0) {
        files = g.gl_pathv;
        nfiles = (int)g.gl_pathc;
    }

    crc64_setup();
    printf("crc64 folding constants (reflect64(x^k mod P)):\n");
    crc64_fold_constants(1);
    crc64_tests();
    printf("crc64 of RDB files vs their trailers:\n");
    crc64_rdb_files(files, nfiles);
    lzf_tests();
    crc64_bench();
    lzf_bench(files, nfiles);

    printf("%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    if (files == g.gl_pathv) globfree(&g);
    else free(files);
    return failures ? 1 : 0;
}
