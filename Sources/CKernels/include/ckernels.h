#ifndef SLOTDIFF_CKERNELS_H
#define SLOTDIFF_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-64/Jones as Redis computes it: reflected in/out, polynomial 0xad93d23594c935a9
   (reflected form 0x95ac9329ac4bc9b5), init 0, xorout 0. crc64("123456789") == 0xe9c6d914c4b8d9ca.
   sd_crc64_update(crc, p, n) continues a running CRC, so update(update(0,a),b) == crc of a||b.
   Uses PCLMULQDQ folding on x86-64 CPUs that have it (chosen at run time), a slicing-by-16
   table version otherwise. Thread-safe. p may be NULL when n == 0. */
uint64_t sd_crc64_update(uint64_t crc, const void *p, size_t n);

/* LZF decompression: returns 1 when `in` (n_in bytes) decompresses to EXACTLY out_len bytes
   into out, 0 when the data is malformed (any back-reference before the output start, any
   read past the input, any write past out_len, or a final size != out_len). Never reads
   outside in[0..n_in) nor writes outside out[0..out_len), for any input. On failure the
   contents of out are unspecified. */
int sd_lzf_decompress(const void *in, size_t n_in, void *out, size_t out_len);

typedef struct {
    uint64_t low;
    uint64_t high;
} sd_hash128;

/* XXH3-128 of p[0..n), for n <= SD_XXH3_SHORT: libxxhash's own header-only implementation,
   inlined where it is called (XXH_INLINE_ALL gives its names a prefix of their own). The
   per-item hashes of a collection are short and many: through a call, each cost the caller's
   loop its registers, and the library's run-time dispatcher would add two calls more. */
#define SD_XXH3_SHORT 240
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
/* Swift reads this header as if unoptimized (__NO_INLINE__), which would drop the library's
   force-inline hints; the code is compiled optimized all the same. */
#ifndef XXH_NO_INLINE_HINTS
#define XXH_NO_INLINE_HINTS 0
#endif
#include <xxhash.h>
static inline __attribute__((always_inline, flatten)) sd_hash128 sd_xxh3_128_short(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    sd_hash128 r = {h.low64, h.high64};
    return r;
}

/* Has glibc's malloc keep freed blocks of up to 32 MiB in the heap (and 128 MiB free at its
   top) for reuse, instead of unmapping them: a block mapped anew is zeroed page by page by the
   kernel, which cost ~7% of a live check's CPU in page faults. No effect without glibc. */
void sd_keep_freed_memory(void);

/* Memory for a block read at random, a key table's (entries, index, key bytes): from 2 MiB
   up, mapped 2 MiB-aligned and marked for transparent huge pages. With 4 KiB pages a lookup
   in a table of tens of MiB misses the TLB at nearly every step. Smaller blocks: malloc.
   NULL when out of memory. Free with sd_table_free and the same byte count. */
void *sd_table_alloc(size_t bytes);
void sd_table_free(void *p, size_t bytes);
/* The block grown to new_bytes, its first old_bytes kept; the old pointer is then invalid
   (NULL, with the old block still valid, when out of memory). A mapped block is moved by
   remapping its pages, not copied: every page this machine's kernel hands out fresh costs a
   page fault and zeroing (~3 ms a MiB here), and a table that grew by copying touched up to
   2.5 times its final size. */
void *sd_table_grow(void *p, size_t old_bytes, size_t new_bytes);

/* Asks the CPU to bring the cache line at p in, for a write soon: an index probe that misses
   the cache stalls on memory, and prefetching a batch's probes first overlaps those waits. */
static inline void sd_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
static inline void sd_prefetch_read(const void *p) { __builtin_prefetch(p, 0, 3); }

#ifdef __cplusplus
}
#endif

#endif
