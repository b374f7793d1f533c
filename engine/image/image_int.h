/* image_int.h: helpers shared inside engine/image (not public): the GCM/SHA-256 wrappers of
 * img_crypto.c. */
#ifndef SFI_IMAGE_INT_H
#define SFI_IMAGE_INT_H

#include <openssl/evp.h>

#include "license/ossl_err.h"
#include "sfi/bytes.h"
#include "sfi/image.h"

int sfi_img_gcm_init(struct sfi_ctx *ctx, EVP_CIPHER_CTX **out, const uint8_t *key, int enc);
int sfi_img_gcm(struct sfi_ctx *ctx, EVP_CIPHER_CTX *c, int enc, const uint8_t *iv,
                const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                const uint8_t *in, uint8_t *out, size_t len, uint8_t *tag);
/* Truncated SHA-256 with the digest fetched once (sfi_img_sha_init) and reused per area. */
struct sfi_img_sha {
    EVP_MD *md;
    EVP_MD_CTX *c;
};
int sfi_img_sha_init(struct sfi_ctx *ctx, struct sfi_img_sha *sha);
void sfi_img_sha_free(struct sfi_img_sha *sha);
int sfi_img_sha(struct sfi_ctx *ctx, struct sfi_img_sha *sha, const uint8_t *data, size_t len,
                uint8_t out[SFI_IMAGE_HASH_SIZE]);
/* One-shot form of the above. */
int sfi_img_hash(struct sfi_ctx *ctx, const uint8_t *data, size_t len,
                 uint8_t out[SFI_IMAGE_HASH_SIZE]);

#endif
