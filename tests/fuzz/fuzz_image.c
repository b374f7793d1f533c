/* fuzz_image.c: the SFI image parser and the streaming reader on arbitrary bytes; every area
 * that parses is also run through GCM with a fixed key (must fail cleanly, never crash). */
#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static const uint8_t key[16], nonce[12];
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
        size_t off = SFI_IMAGE_HDR_SIZE;
        struct sfi_image_area a;
        while (sfi_image_next_area(ctx, data, size, &off, &h, &a) == SFI_OK)
            ;
    }
    return 0;
}
