#define _GNU_SOURCE
#include "ckernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void sd_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

#include <stdlib.h>
#include <string.h>

/* Growing by copying: the way where blocks are small or not mapped by sd_table_alloc. */
static void *sd_table_copy(void *p, size_t old_bytes, size_t new_bytes) {
    void *q = sd_table_alloc(new_bytes);
    if (q == NULL) return NULL;
    memcpy(q, p, old_bytes < new_bytes ? old_bytes : new_bytes);
    sd_table_free(p, old_bytes);
    return q;
}

#if defined(__linux__)
#include <sys/mman.h>

#define SD_HUGE ((size_t)2 << 20)

static size_t sd_huge_round(size_t bytes) { return (bytes + SD_HUGE - 1) & ~(SD_HUGE - 1); }

/* A fresh mapping of `size` bytes (a multiple of 2 MiB), 2 MiB-aligned. */
static void *sd_map_aligned(size_t size) {
    char *m = mmap(NULL, size + SD_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)m + SD_HUGE - 1) & ~(uintptr_t)(SD_HUGE - 1));
    if (p > m) munmap(m, (size_t)(p - m));
    munmap(p + size, (size_t)(m + SD_HUGE - p));
    return p;
}

void *sd_table_alloc(size_t bytes) {
    if (bytes < SD_HUGE) return malloc(bytes ? bytes : 1);
    size_t size = sd_huge_round(bytes);
    void *p = sd_map_aligned(size);
    if (p != NULL) madvise(p, size, MADV_HUGEPAGE);
    return p;
}

void sd_table_free(void *p, size_t bytes) {
    if (p == NULL) return;
    if (bytes < SD_HUGE) { free(p); return; }
    munmap(p, sd_huge_round(bytes));
}

void *sd_table_grow(void *p, size_t old_bytes, size_t new_bytes) {
    if (old_bytes < SD_HUGE || new_bytes < old_bytes) return sd_table_copy(p, old_bytes, new_bytes);
    size_t old_size = sd_huge_round(old_bytes), new_size = sd_huge_round(new_bytes);
    if (new_size == old_size) return p;
    /* The pages move to a new aligned range as they are (their page tables do); the part
       past them is mapped on first touch, like any fresh block. */
    void *dest = sd_map_aligned(new_size);
    if (dest == NULL) return NULL;
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    if (q == MAP_FAILED) {
        munmap(dest, new_size);
        return sd_table_copy(p, old_bytes, new_bytes);
    }
    madvise(q, new_size, MADV_HUGEPAGE);
    return q;
}
#else
void *sd_table_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
void sd_table_free(void *p, size_t bytes) { (void)bytes; free(p); }
void *sd_table_grow(void *p, size_t old_bytes, size_t new_bytes) { return sd_table_copy(p, old_bytes, new_bytes); }
#endif
