#ifndef SLOTDIFF_GLOBAL_EXECUTOR_H
#define SLOTDIFF_GLOBAL_EXECUTOR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Has Swift's runtime hand every job of its global executor to `enqueue` (the job's pointer,
   an UnownedJob), through the runtime's enqueue hook. SwiftNIO sets that hook too, but finds
   it by name with dlsym, which a binary with the Swift runtime linked in (built with
   --static-swift-stdlib, as packaged) does not export; here the linker resolves it, in either
   kind of build. Returns 1 when set, 0 when a hook was set already (it is left as it was). */
int sd_install_global_enqueue(void (*enqueue)(void *job));

#ifdef __cplusplus
}
#endif

#endif
