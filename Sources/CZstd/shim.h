#ifndef SLOTDIFF_CZSTD_SHIM_H
#define SLOTDIFF_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
