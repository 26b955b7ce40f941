/* LZF decompression with exact bounds checks.

   Format: ctrl = next byte. ctrl < 32: ctrl+1 literal bytes follow. Otherwise
   len = ctrl >> 5 (7 means: add the next byte), the back-reference distance is
   ((ctrl & 0x1f) << 8) + next byte + 1, and len + 2 bytes are copied from that far back in
   the output with byte-by-byte semantics (so overlapping copies repeat a pattern).

   The main loop moves literals as 32 bytes and matches in 8/16-byte steps, overshooting
   into room that it checks per token (so all but the last few tokens take it); the last
   tokens go through a loop that checks everything exactly and copies exactly. */

#include "include/ckernels.h"

#include <string.h>

/* A literal run (1..32 bytes) is moved as 32 bytes in the fast loop. */
#define LIT_ROOM 32u

static inline void copy16(unsigned char *d, const unsigned char *s) { memcpy(d, s, 16); }
static inline void copy8(unsigned char *d, const unsigned char *s) { memcpy(d, s, 8); }

/* Copies len bytes from op - dist to op with byte-by-byte semantics, writing anything up to
   op + len + 15 (caller guarantees the room). 1 <= dist <= op - out. */
static inline void match_copy_fast(unsigned char *op, size_t dist, size_t len) {
    const unsigned char *ref = op - dist;
    if (dist >= 16) {
        /* Each 16-byte chunk reads only bytes written before it. */
        copy16(op, ref);
        for (size_t i = 16; i < len; i += 16)
            copy16(op + i, ref + i);
    } else if (dist == 1) {
        unsigned char pat[16];
        memset(pat, ref[0], 16);
        for (size_t i = 0; i < len; i += 16)
            copy16(op + i, pat);
    } else if (dist >= 8) {
        copy8(op, ref);
        for (size_t i = 8; i < len; i += 8)
            copy8(op + i, ref + i);
    } else {
        /* Period dist < 8: build 16 bytes of the pattern, then store it every `step` bytes,
           step being the largest multiple of dist that is <= 16 (each store starts in
           phase). */
        unsigned char pat[16];
        for (size_t k = 0; k < dist; k++) pat[k] = ref[k];
        for (size_t k = dist; k < 16; k++) pat[k] = pat[k - dist];
        size_t step = 16 - 16 % dist;
        for (size_t i = 0; i < len; i += step)
            copy16(op + i, pat);
    }
}

int sd_lzf_decompress(const void *in, size_t n_in, void *out, size_t out_len) {
    /* Nothing decodes to nothing; any token produces at least one byte. */
    if (n_in == 0 || out_len == 0) return n_in == 0 && out_len == 0;

    const unsigned char *ip = (const unsigned char *)in;
    const unsigned char *const ie = ip + n_in;
    unsigned char *op = (unsigned char *)out;
    unsigned char *const ob = op;
    unsigned char *const oe = op + out_len;

    /* Fast loop: every token starts with at least 3 input bytes left, so a match token can
       be read without checks; literals and match copies check their own room and, near the
       end, hand the token over to the exact loop. Copies may overshoot into that room. */
    if (n_in >= 3) {
        const unsigned char *const ie3 = ie - 3;
        while (ip <= ie3) {
            const unsigned char *tok = ip;
            unsigned ctrl = *ip++;
            if (ctrl < 32) {
                if (__builtin_expect((size_t)(ie - ip) < LIT_ROOM || (size_t)(oe - op) < LIT_ROOM, 0)) {
                    ip = tok;
                    break;
                }
                size_t len = (size_t)ctrl + 1;
                copy16(op, ip);
                copy16(op + 16, ip + 16);
                op += len;
                ip += len;
            } else {
                size_t len = ctrl >> 5;
                if (len == 7) len += *ip++;
                size_t dist = ((size_t)(ctrl & 0x1f) << 8) + *ip++ + 1;
                len += 2;
                if (__builtin_expect(dist > (size_t)(op - ob), 0)) return 0;
                if (__builtin_expect((size_t)(oe - op) < len + 15, 0)) {
                    ip = tok;
                    break;
                }
                match_copy_fast(op, dist, len);
                op += len;
            }
        }
    }

    /* Exact loop for the rest. */
    while (ip < ie) {
        unsigned ctrl = *ip++;
        if (ctrl < 32) {
            size_t len = (size_t)ctrl + 1;
            if (len > (size_t)(ie - ip) || len > (size_t)(oe - op)) return 0;
            memcpy(op, ip, len);
            op += len;
            ip += len;
        } else {
            size_t len = ctrl >> 5;
            if (len == 7) {
                if (ip >= ie) return 0;
                len += *ip++;
            }
            if (ip >= ie) return 0;
            size_t dist = ((size_t)(ctrl & 0x1f) << 8) + *ip++ + 1;
            len += 2;
            if (dist > (size_t)(op - ob) || len > (size_t)(oe - op)) return 0;
            if ((size_t)(oe - op) - len >= 15) {
                match_copy_fast(op, dist, len);
            } else if (dist >= len) {
                memcpy(op, op - dist, len);
            } else {
                const unsigned char *ref = op - dist;
                for (size_t k = 0; k < len; k++) op[k] = ref[k];
            }
            op += len;
        }
    }
    return op == oe;
}
