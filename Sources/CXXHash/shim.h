#ifndef SLOTDIFF_CXXHASH_SHIM_H
#define SLOTDIFF_CXXHASH_SHIM_H
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#define SLOTDIFF_XXH3_DISPATCH 1
#endif
#endif
