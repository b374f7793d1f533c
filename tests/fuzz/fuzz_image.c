/* fuzz_image.c: the SFI image parser and the streaming reader (with and without area hashes)
 * on arbitrary bytes; every area that parses is also run through GCM and the hash check with
 * the key and nonce of ST's 2024 sample (tests/data/st-tpc-2024-h5), so corpus files made
 * with them reach the paths behind a good tag. Must fail cleanly, never crash. */
#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    /* tests/data/st-tpc-2024-h5: SFI_Encryption_Key.bin, SFI_Encryption_Nonce.bin */
    static const uint8_t key[16] = {0x92, 0x29, 0x2a, 0x84, 0x31, 0x9b, 0x41, 0x55,
                                    0x16, 0xec, 0xb8, 0x30, 0xf2, 0xc2, 0x75, 0x69};
    static const uint8_t nonce[12] = {0x1d, 0x02, 0x5e, 0xc8, 0x1c, 0x68, 0xaf, 0xba,
                                      0x00, 0x9b, 0x0f, 0x4a};
    if (!ctx && sfi_ctx_new(&ctx))
        abort();
    struct sfi_image *img;
    if (sfi_image_parse(ctx, data, size, &img) == SFI_OK) {
        uint8_t *plain = malloc(size ? size : 1);
        (void)sfi_image_check_header_tag(ctx, img->buf, key, nonce);
        for (size_t i = 0; i < img->n; i++)
            (void)sfi_image_decrypt_area(ctx, &img->area[i], img->buf + img->area[i].offset, key,
                                         nonce, plain);
        free(plain);
        sfi_image_free(img);
    }
    struct sfi_image_header h;
    if (sfi_image_parse_header(ctx, data, size, &h) == SFI_OK) {
        for (int hashed = 0; hashed < 2; hashed++) {
            size_t off = SFI_IMAGE_HDR_SIZE;
            struct sfi_image_area a;
            h.hashed = hashed;
            while (sfi_image_next_area(ctx, data, size, &off, &h, &a) == SFI_OK)
                ;
        }
    }
    return 0;
}
