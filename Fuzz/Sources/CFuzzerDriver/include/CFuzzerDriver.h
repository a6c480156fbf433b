/* libFuzzer's driver, called from each harness's main.swift.
 *
 * SwiftPM renames an executable's entry point on Linux (and points `main` at it), so a harness
 * cannot leave `main` to libFuzzer: each harness defines LLVMFuzzerTestOneInput (a @_cdecl Swift
 * function) and has a main.swift that hands control to libFuzzer's driver here (libclang_rt.fuzzer,
 * linked by -sanitize=fuzzer). */
#ifndef CFUZZERDRIVER_H
#define CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

/* Defined by each harness. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
