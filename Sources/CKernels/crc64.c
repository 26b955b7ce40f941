/* CRC-64/Jones (Redis' RDB checksum): reflected, polynomial 0xad93d23594c935a9
   (reflected 0x95ac9329ac4bc9b5), init 0, xorout 0.

   Three implementations, one chosen at the first call (CPU feature check):
   - crc64_table: slicing-by-16 (sixteen 256-entry tables, built once), portable;
     also used for inputs under 64 bytes and for the tail after the SIMD paths.
   - crc64_clmul (x86-64 with PCLMULQDQ): folds eight independent 128-bit lanes with
     carry-less multiplies, then finishes the last 128-bit lane and the tail with the table.
   - crc64_vclmul (x86-64 with VPCLMULQDQ + AVX2): the same folding on eight 256-bit lanes.
   The SIMD functions carry target attributes, so the file builds with baseline x86-64
   flags; other architectures get the table version only. */

#include "include/ckernels.h"

#include <pthread.h>
#include <string.h>

#define CRC64_POLY_REFLECTED 0x95ac9329ac4bc9b5ULL

/* ---------------------------------------------------------------- portable tables */

static uint64_t crc64_tab[16][256];
static pthread_once_t crc64_tab_once = PTHREAD_ONCE_INIT;

static void crc64_tab_build(void) {
    for (unsigned b = 0; b < 256; b++) {
        uint64_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ ((0 - (c & 1)) & CRC64_POLY_REFLECTED);
        crc64_tab[0][b] = c;
    }
    /* crc64_tab[t][b]: byte b followed by t zero bytes. */
    for (int t = 1; t < 16; t++)
        for (unsigned b = 0; b < 256; b++) {
            uint64_t c = crc64_tab[t - 1][b];
            crc64_tab[t][b] = (c >> 8) ^ crc64_tab[0][c & 0xff];
        }
}

static inline uint64_t crc64_load_le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Requires the tables to be built. */
static uint64_t crc64_table_run(uint64_t crc, const unsigned char *p, size_t n) {
    const uint64_t (*T)[256] = (const uint64_t (*)[256])crc64_tab;
    while (n >= 16) {
        /* The second word's lookups do not depend on crc; the xors form a tree so the
           crc -> crc dependency chain stays short. */
        uint64_t b = crc64_load_le64(p + 8);
        uint64_t a = crc64_load_le64(p) ^ crc;
        uint64_t hb = (T[7][b & 0xff] ^ T[6][(b >> 8) & 0xff]) ^ (T[5][(b >> 16) & 0xff] ^ T[4][(b >> 24) & 0xff]);
        uint64_t lb = (T[3][(b >> 32) & 0xff] ^ T[2][(b >> 40) & 0xff]) ^ (T[1][(b >> 48) & 0xff] ^ T[0][b >> 56]);
        uint64_t ha = (T[15][a & 0xff] ^ T[14][(a >> 8) & 0xff]) ^ (T[13][(a >> 16) & 0xff] ^ T[12][(a >> 24) & 0xff]);
        uint64_t la = (T[11][(a >> 32) & 0xff] ^ T[10][(a >> 40) & 0xff]) ^ (T[9][(a >> 48) & 0xff] ^ T[8][a >> 56]);
        crc = (ha ^ la) ^ (hb ^ lb);
        p += 16;
        n -= 16;
    }
    if (n >= 8) {
        uint64_t a = crc64_load_le64(p) ^ crc;
        crc = T[7][a & 0xff] ^ T[6][(a >> 8) & 0xff] ^ T[5][(a >> 16) & 0xff] ^
              T[4][(a >> 24) & 0xff] ^ T[3][(a >> 32) & 0xff] ^ T[2][(a >> 40) & 0xff] ^
              T[1][(a >> 48) & 0xff] ^ T[0][a >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ T[0][(crc ^ *p++) & 0xff];
    return crc;
}

static uint64_t crc64_table(uint64_t crc, const void *p, size_t n) {
    pthread_once(&crc64_tab_once, crc64_tab_build);
    return crc64_table_run(crc, (const unsigned char *)p, n);
}

/* ---------------------------------------------------------------- PCLMULQDQ folding */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC64_HAVE_CLMUL 1
#include <immintrin.h>

/* Folding constants. In the reflected domain a 16-byte block loaded little-endian holds a
   128-bit polynomial A = H*x^64 + L with H (the first 8 bytes) in the low qword. Moving A
   forward by D bits (to be xored into the block D bits later) needs
       A*x^D = H*x^(D+64) + L*x^D  (mod P).
   A carry-less multiply of two bit-reflected 64-bit operands yields the reflected product
   one bit short of 128 (bit m <-> x^(126-m)), i.e. the product times x^-1; so the
   constants carry one power less:
       lo-qword multiplier  K(D+63) = reflect64(x^(D+63) mod P)   (applied to H)
       hi-qword multiplier  K(D-1)  = reflect64(x^(D-1)  mod P)   (applied to L)
   with P = x^64 + 0xad93d23594c935a9. Computed by crc64_fold_constants() in
   Scripts/kernels-bench.c (x^k mod P by shift-and-xor, then bit-reversed), which also
   checks these values. Index j gives D = 128*j bits; [j][0] = K(D+63), [j][1] = K(D-1). */
static const uint64_t crc64_fold_k[17][2] = {
    {0, 0},
    {0xd9d7be7d505da32cULL, 0x381d0015c96f4444ULL}, /* D =  128: K(191), K(127) */
    {0x6ba4d760ab38201eULL, 0xef3d1d18ed889ed2ULL}, /* D =  256: K(319), K(255) */
    {0xa062b2319d66692fULL, 0x7b3211a760160db8ULL}, /* D =  384: K(447), K(383) */
    {0xaf86efb16d9ab4fbULL, 0xf49784a634f014e4ULL}, /* D =  512: K(575), K(511) */
    {0xb715e37b96ed8633ULL, 0xe4dd0d81cbfce585ULL}, /* D =  640: K(703), K(639) */
    {0xbccba3936411fb7eULL, 0x3885fd59e440d95aULL}, /* D =  768: K(831), K(767) */
    {0x6cf09c8f37710b75ULL, 0x5bc94ba8e2087636ULL}, /* D =  896: K(959), K(895) */
    {0xcc26fa7c57f8054cULL, 0x768361524d29ed0bULL}, /* D = 1024: K(1087), K(1023) */
    {0x64dcbb8303a83619ULL, 0x014e2a64dd870773ULL}, /* D = 1152: K(1215), K(1151) */
    {0x2fdbffa4ed8af272ULL, 0x7f1e148f8a506de0ULL}, /* D = 1280: K(1343), K(1279) */
    {0x8a8fcf2e749445d5ULL, 0xb85df01084b457eaULL}, /* D = 1408: K(1471), K(1407) */
    {0xcbcd47b99e22d5b0ULL, 0x63e4ab47040cbd21ULL}, /* D = 1536: K(1599), K(1535) */
    {0x01059e2752cba61cULL, 0x1e0c2595be5cb1bbULL}, /* D = 1664: K(1727), K(1663) */
    {0xedd164398e09d84fULL, 0xf9135fd5ca656caaULL}, /* D = 1792: K(1855), K(1791) */
    {0x7c5ffeadcfc70cd6ULL, 0xd2f094f83d7585ddULL}, /* D = 1920: K(1983), K(1919) */
    {0x9a8908341a6d6d52ULL, 0x9471a5389095fe44ULL}, /* D = 2048: K(2111), K(2047) */
};

#define CRC64_TARGET __attribute__((target("pclmul,sse4.1")))

CRC64_TARGET static inline __m128i crc64_kpair(int j) {
    return _mm_set_epi64x((long long)crc64_fold_k[j][1], (long long)crc64_fold_k[j][0]);
}

/* acc moved forward by the distance k was built for (not yet xored with anything). */
CRC64_TARGET static inline __m128i crc64_fold(__m128i acc, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(acc, k, 0x00), _mm_clmulepi64_si128(acc, k, 0x11));
}

#define LOADU(q) _mm_loadu_si128((const __m128i *)(const void *)(q))

CRC64_TARGET static uint64_t crc64_clmul(uint64_t crc, const void *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)buf;
    pthread_once(&crc64_tab_once, crc64_tab_build);
    if (n < 64)
        return crc64_table_run(crc, p, n);

    __m128i acc;
    if (n >= 128) {
        const __m128i k1024 = crc64_kpair(8);
        __m128i x0 = _mm_xor_si128(LOADU(p), _mm_cvtsi64_si128((long long)crc));
        __m128i x1 = LOADU(p + 16), x2 = LOADU(p + 32), x3 = LOADU(p + 48);
        __m128i x4 = LOADU(p + 64), x5 = LOADU(p + 80), x6 = LOADU(p + 96), x7 = LOADU(p + 112);
        p += 128;
        n -= 128;
        while (n >= 128) {
            x0 = _mm_xor_si128(crc64_fold(x0, k1024), LOADU(p));
            x1 = _mm_xor_si128(crc64_fold(x1, k1024), LOADU(p + 16));
            x2 = _mm_xor_si128(crc64_fold(x2, k1024), LOADU(p + 32));
            x3 = _mm_xor_si128(crc64_fold(x3, k1024), LOADU(p + 48));
            x4 = _mm_xor_si128(crc64_fold(x4, k1024), LOADU(p + 64));
            x5 = _mm_xor_si128(crc64_fold(x5, k1024), LOADU(p + 80));
            x6 = _mm_xor_si128(crc64_fold(x6, k1024), LOADU(p + 96));
            x7 = _mm_xor_si128(crc64_fold(x7, k1024), LOADU(p + 112));
            p += 128;
            n -= 128;
        }
        /* Lane i sits (7-i)*128 bits before lane 7. */
        __m128i a = _mm_xor_si128(crc64_fold(x0, crc64_kpair(7)), crc64_fold(x1, crc64_kpair(6)));
        __m128i b = _mm_xor_si128(crc64_fold(x2, crc64_kpair(5)), crc64_fold(x3, crc64_kpair(4)));
        __m128i c = _mm_xor_si128(crc64_fold(x4, crc64_kpair(3)), crc64_fold(x5, crc64_kpair(2)));
        __m128i d = _mm_xor_si128(crc64_fold(x6, crc64_kpair(1)), x7);
        acc = _mm_xor_si128(_mm_xor_si128(a, b), _mm_xor_si128(c, d));
    } else {
        acc = _mm_xor_si128(LOADU(p), _mm_cvtsi64_si128((long long)crc));
        p += 16;
        n -= 16;
    }
    const __m128i k128 = crc64_kpair(1);
    while (n >= 16) {
        acc = _mm_xor_si128(crc64_fold(acc, k128), LOADU(p));
        p += 16;
        n -= 16;
    }
    /* acc is congruent to everything so far; its CRC from 0, then the tail. */
    unsigned char last[16];
    _mm_storeu_si128((__m128i *)(void *)last, acc);
    crc = crc64_table_run(0, last, 16);
    return crc64_table_run(crc, p, n);
}


/* The same folding with 256-bit VPCLMULQDQ (AVX2 encoding): eight 32-byte lanes, each
   128-bit half folded 2048 bits ahead per iteration, so twice the bytes per instruction. */
#define CRC64_TARGET256 __attribute__((target("avx2,vpclmulqdq,pclmul,sse4.1")))
#define LOADU256(q) _mm256_loadu_si256((const __m256i *)(const void *)(q))

CRC64_TARGET256 static inline __m256i crc64_kpair256(int j) {
    return _mm256_set_epi64x((long long)crc64_fold_k[j][1], (long long)crc64_fold_k[j][0],
                             (long long)crc64_fold_k[j][1], (long long)crc64_fold_k[j][0]);
}

CRC64_TARGET256 static inline __m256i crc64_fold256(__m256i acc, __m256i k) {
    return _mm256_xor_si256(_mm256_clmulepi64_epi128(acc, k, 0x00), _mm256_clmulepi64_epi128(acc, k, 0x11));
}

CRC64_TARGET256 static uint64_t crc64_vclmul(uint64_t crc, const void *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)buf;
    if (n < 256)
        return crc64_clmul(crc, p, n);
    pthread_once(&crc64_tab_once, crc64_tab_build);

    const __m256i k2048 = crc64_kpair256(16);
    __m256i y0 = _mm256_xor_si256(LOADU256(p), _mm256_zextsi128_si256(_mm_cvtsi64_si128((long long)crc)));
    __m256i y1 = LOADU256(p + 32), y2 = LOADU256(p + 64), y3 = LOADU256(p + 96);
    __m256i y4 = LOADU256(p + 128), y5 = LOADU256(p + 160), y6 = LOADU256(p + 192), y7 = LOADU256(p + 224);
    p += 256;
    n -= 256;
    while (n >= 256) {
        y0 = _mm256_xor_si256(crc64_fold256(y0, k2048), LOADU256(p));
        y1 = _mm256_xor_si256(crc64_fold256(y1, k2048), LOADU256(p + 32));
        y2 = _mm256_xor_si256(crc64_fold256(y2, k2048), LOADU256(p + 64));
        y3 = _mm256_xor_si256(crc64_fold256(y3, k2048), LOADU256(p + 96));
        y4 = _mm256_xor_si256(crc64_fold256(y4, k2048), LOADU256(p + 128));
        y5 = _mm256_xor_si256(crc64_fold256(y5, k2048), LOADU256(p + 160));
        y6 = _mm256_xor_si256(crc64_fold256(y6, k2048), LOADU256(p + 192));
        y7 = _mm256_xor_si256(crc64_fold256(y7, k2048), LOADU256(p + 224));
        p += 256;
        n -= 256;
    }
    /* Lane i sits (7-i)*256 bits before lane 7 (per 128-bit half). */
    __m256i a = _mm256_xor_si256(crc64_fold256(y0, crc64_kpair256(14)), crc64_fold256(y1, crc64_kpair256(12)));
    __m256i b = _mm256_xor_si256(crc64_fold256(y2, crc64_kpair256(10)), crc64_fold256(y3, crc64_kpair256(8)));
    __m256i c = _mm256_xor_si256(crc64_fold256(y4, crc64_kpair256(6)), crc64_fold256(y5, crc64_kpair256(4)));
    __m256i d = _mm256_xor_si256(crc64_fold256(y6, crc64_kpair256(2)), y7);
    __m256i acc = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    const __m256i k256 = crc64_kpair256(2);
    while (n >= 32) {
        acc = _mm256_xor_si256(crc64_fold256(acc, k256), LOADU256(p));
        p += 32;
        n -= 32;
    }
    /* Low half is 128 bits before the high half. */
    __m128i x = _mm_xor_si128(crc64_fold(_mm256_castsi256_si128(acc), crc64_kpair(1)),
                              _mm256_extracti128_si256(acc, 1));
    if (n >= 16) {
        x = _mm_xor_si128(crc64_fold(x, crc64_kpair(1)), LOADU(p));
        p += 16;
        n -= 16;
    }
    unsigned char last[16];
    _mm_storeu_si128((__m128i *)(void *)last, x);
    crc = crc64_table_run(0, last, 16);
    return crc64_table_run(crc, p, n);
}

#undef LOADU256
#undef LOADU
#endif /* x86-64 */

/* ---------------------------------------------------------------- dispatch */

typedef uint64_t (*crc64_fn)(uint64_t, const void *, size_t);

static crc64_fn crc64_choose(void) {
#ifdef CRC64_HAVE_CLMUL
    __builtin_cpu_init();
    if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
        return crc64_vclmul;
    if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
        return crc64_clmul;
#endif
    return crc64_table;
}

static crc64_fn crc64_impl; /* resolved on first use; racing threads store the same value */

uint64_t sd_crc64_update(uint64_t crc, const void *p, size_t n) {
    crc64_fn f = __atomic_load_n(&crc64_impl, __ATOMIC_RELAXED);
    if (__builtin_expect(f == NULL, 0)) {
        f = crc64_choose();
        __atomic_store_n(&crc64_impl, f, __ATOMIC_RELAXED);
    }
    return f(crc, p, n);
}
