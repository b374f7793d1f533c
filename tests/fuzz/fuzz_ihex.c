/* fuzz_ihex.c: the ihex firmware loader and the segment merge on arbitrary bytes. */
#include "fuzz_fw.h"

FUZZ_FW_LOADER(sfi_fw_load_ihex)
