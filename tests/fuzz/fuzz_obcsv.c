/* fuzz_obcsv.c: the option-byte CSV parser on arbitrary text, with the H7 row set and the
 * H5 one (the first input byte picks). Only FORMAT may come back for bad input. */
#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx))
        abort();
    static const char *const h7[] = {"FOPTSR_PRG",  "FPRAR_PRG_A", "FPRAR_PRG_B",
                                      "FSCAR_PRG_A", "FSCAR_PRG_B", "FWPSN_PRG_A",
                                      "FWPSN_PRG_B", "FBOOT7_PRG",  "RESERVED"};
    static const char *const h5[] = {"OPTSR_PRG",   "OPTSR2_PRG",  "NSBOOTR_PRG", "SECBOOTR_PRG",
                                      "SECWM1R_PRG", "SECWM2R_PRG", "WRP1R_PRG",   "WRP2R_PRG",
                                      "EDATA1R_PRG", "EDATA2R_PRG", "HDP1R_PRG",   "HDP2R_PRG"};
    uint8_t out[4 * SFI_IMAGE_OB_MAX];
    int h = size > 0 && (data[0] & 1);
    int rc = sfi_obcsv_parse(ctx, "fuzz.csv", data, size, h ? h5 : h7, h ? 12 : 9, out);
    if (rc != SFI_OK && rc != SFI_E_FORMAT)
        abort();
    return 0;
}
