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

#if defined(__linux__)
#include <stdlib.h>
#include <sys/mman.h>

#define SD_HUGE (2u << 20)

void *sd_table_alloc(size_t bytes) {
    if (bytes < SD_HUGE) return malloc(bytes ? bytes : 1);
    size_t size = (bytes + SD_HUGE - 1) & ~(size_t)(SD_HUGE - 1);
    char *m = mmap(NULL, size + SD_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)m + SD_HUGE - 1) & ~(uintptr_t)(SD_HUGE - 1));
    if (p > m) munmap(m, (size_t)(p - m));
    if (m + SD_HUGE > p) munmap(p + size, (size_t)(m + SD_HUGE - p));
    madvise(p, size, MADV_HUGEPAGE);
    return p;
}

void sd_table_free(void *p, size_t bytes) {
    if (p == NULL) return;
    if (bytes < SD_HUGE) { free(p); return; }
    munmap(p, (bytes + SD_HUGE - 1) & ~(size_t)(SD_HUGE - 1));
}
#else
#include <stdlib.h>
void *sd_table_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
void sd_table_free(void *p, size_t bytes) { (void)bytes; free(p); }
#endif
