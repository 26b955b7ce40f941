#include "global_executor.h"

#include <stddef.h>

/* The runtime's hook: called with the job and the runtime's own enqueue, in Swift's calling
   convention (swift_task_enqueueGlobal_hook in the concurrency runtime). */
typedef void (__attribute__((swiftcall)) *sd_original_enqueue)(void *job);
typedef void (__attribute__((swiftcall)) *sd_enqueue_hook)(void *job, sd_original_enqueue original);
extern sd_enqueue_hook swift_task_enqueueGlobal_hook;

static void (*sd_enqueue_target)(void *job);

static __attribute__((swiftcall)) void sd_enqueue(void *job, sd_original_enqueue original) {
    (void)original;
    sd_enqueue_target(job);
}

int sd_install_global_enqueue(void (*enqueue)(void *job)) {
    sd_enqueue_target = enqueue;
    sd_enqueue_hook none = NULL;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &none, sd_enqueue, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
