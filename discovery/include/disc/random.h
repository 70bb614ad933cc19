/*
 * disc_random: where libdisc's randomness comes from.
 *
 * Secrets (the SYN cookie key) and default seeds come from the kernel
 * (getrandom). Values that must be reproducible from a --seed (the scan
 * order) come from splitmix64, a small, well-mixed generator that is fully
 * determined by its 64-bit state.
 */
#ifndef DISC_RANDOM_H
#define DISC_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

/* Fills buf with len bytes from the kernel's CSPRNG; DISC_ERR_IO if it fails. */
enum disc_status disc_random_bytes(void *buf, size_t len, struct disc_error *err);

/* Next value of the splitmix64 sequence whose state is *state (advanced). */
uint64_t disc_splitmix64(uint64_t *state);

#endif
