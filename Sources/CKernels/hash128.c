/* XXH3-128 of short inputs, with libxxhash's own header-only implementation inlined here:
   the per-item hashes of a collection are short, and the library's run-time dispatcher adds
   two calls to each. Longer inputs go to the library (vector code chosen at run time). */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "ckernels.h"

sd_hash128 sd_xxh3_128_short(const void *p, size_t n) {
    XXH128_hash_t h = XXH3_128bits(p, n);
    sd_hash128 r = {h.low64, h.high64};
    return r;
}
