/* fw_int.h: internal helpers of the firmware loaders: append bytes at an address (extending
 * the last segment when contiguous) and roll back what one file added. */
#ifndef SFI_FW_INT_H
#define SFI_FW_INT_H

#include "sfi/image.h"

/* Appends data at addr; segments from index `first` belong to the current file `name`. */
int sfi_fw_put(struct sfi_ctx *ctx, struct sfi_fw *fw, size_t first, const char *name,
               uint32_t addr, const uint8_t *data, size_t len);
/* Frees segments from index n on (undo of a failed load). */
void sfi_fw_truncate(struct sfi_fw *fw, size_t n);

#endif
