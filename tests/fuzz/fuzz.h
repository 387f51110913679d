/* fuzz.h - what the libFuzzer targets of tests/fuzz share: the in-process compiler that stands
 * in for the confined helper (fuzz_compile.c) and libFuzzer's entry points.
 */
#ifndef DC_FUZZ_H
#define DC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "dynacode.h"

/* Longest plugin source the stand-in compiler parses; longer ones are refused as not compiling. */
extern size_t fuzz_max_code;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
