/*
 * The libFuzzer entry point each fuzz_*.c defines. Built with
 * -fsanitize=fuzzer in the Fuzz build type, and linked with fuzz_replay.c in
 * every build type so that the checked-in corpus runs under ctest.
 */
#ifndef DISC_TEST_FUZZ_H
#define DISC_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
