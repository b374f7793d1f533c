/* img_crypto.c: the image's cryptography, the one place where image code meets OpenSSL:
 * AES-128-GCM for the header tag and the areas, SHA-256 for protocol-2 area hashes.
 * OpenSSL's error queue is drained into the context's detail text by sfi_ossl_err. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "image_int.h"

void sfi_image_area_iv(const uint8_t *nonce, uint16_t index, uint8_t iv[SFI_IMAGE_NONCE_SIZE])
{
    memcpy(iv, nonce, SFI_IMAGE_NONCE_SIZE);
    sfi_put_le32(iv + 8, sfi_get_le32(iv + 8) + index);
}

int sfi_img_gcm_init(struct sfi_ctx *ctx, EVP_CIPHER_CTX **out, const uint8_t *key, int enc)
{
    /* fetched once per context: the areas only change the IV */
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    if (!gcm)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-128-GCM fetch");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) {
        EVP_CIPHER_free(gcm);
        return sfi_ossl_err(ctx, SFI_E_NOMEM, "EVP_CIPHER_CTX_new");
    }
    int ok = EVP_CipherInit_ex(c, gcm, NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SFI_IMAGE_NONCE_SIZE, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, key, NULL, enc) == 1;
    EVP_CIPHER_free(gcm); /* the context keeps its own reference */
    if (!ok) {
        EVP_CIPHER_CTX_free(c);
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-128-GCM init");
    }
    *out = c;
    return SFI_OK;
}

/* One GCM message: AAD parts, then in -> out (len bytes, may alias), then tag. enc=0 checks
 * the tag and returns CRYPTO (without detail text) on mismatch. */
int sfi_img_gcm(struct sfi_ctx *ctx, EVP_CIPHER_CTX *c, int enc, const uint8_t *iv,
                const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                const uint8_t *in, uint8_t *out, size_t len, uint8_t *tag)
{
    int n;
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM IV");
    if (aad1_len && EVP_CipherUpdate(c, NULL, &n, aad1, (int)aad1_len) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM AAD");
    if (aad2_len && EVP_CipherUpdate(c, NULL, &n, aad2, (int)aad2_len) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM AAD");
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
        if (EVP_CipherUpdate(c, out + done, &n, in + done, (int)chunk) != 1)
            return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM update");
        done += chunk;
    }
    uint8_t *tail = len ? out + done : out; /* out is NULL for a tag-only message */
    if (enc) {
        if (EVP_CipherFinal_ex(c, tail, &n) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SFI_IMAGE_TAG_SIZE, tag) != 1)
            return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM final");
        return SFI_OK;
    }
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SFI_IMAGE_TAG_SIZE, tag) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "AES-GCM tag");
    if (EVP_CipherFinal_ex(c, tail, &n) != 1) {
        ERR_clear_error();
        return SFI_E_CRYPTO;
    }
    return SFI_OK;
}

int sfi_img_sha_init(struct sfi_ctx *ctx, struct sfi_img_sha *sha)
{
    sha->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha->c = sha->md ? EVP_MD_CTX_new() : NULL;
    if (!sha->c) {
        sfi_img_sha_free(sha);
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "SHA-256 fetch");
    }
    return SFI_OK;
}

void sfi_img_sha_free(struct sfi_img_sha *sha)
{
    if (!sha)
        return;
    EVP_MD_CTX_free(sha->c);
    EVP_MD_free(sha->md);
    sha->c = NULL;
    sha->md = NULL;
}

int sfi_img_sha(struct sfi_ctx *ctx, struct sfi_img_sha *sha, const uint8_t *data, size_t len,
                uint8_t out[SFI_IMAGE_HASH_SIZE])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_DigestInit_ex2(sha->c, sha->md, NULL) != 1 ||
        EVP_DigestUpdate(sha->c, data, len) != 1 ||
        EVP_DigestFinal_ex(sha->c, md, &mdlen) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "SHA-256");
    memcpy(out, md, SFI_IMAGE_HASH_SIZE);
    OPENSSL_cleanse(md, sizeof md);
    return SFI_OK;
}

int sfi_img_hash(struct sfi_ctx *ctx, const uint8_t *data, size_t len,
                 uint8_t out[SFI_IMAGE_HASH_SIZE])
{
    struct sfi_img_sha sha;
    int rc = sfi_img_sha_init(ctx, &sha);
    if (rc == SFI_OK)
        rc = sfi_img_sha(ctx, &sha, data, len, out);
    sfi_img_sha_free(&sha);
    return rc;
}

int sfi_image_check_header_tag(struct sfi_ctx *ctx, const uint8_t *hdr_bytes,
                               const uint8_t *key, const uint8_t *nonce)
{
    EVP_CIPHER_CTX *c = NULL;
    int rc = sfi_img_gcm_init(ctx, &c, key, 0);
    if (rc)
        return rc;
    uint8_t tag[SFI_IMAGE_TAG_SIZE];
    memcpy(tag, hdr_bytes + SFI_IMAGE_AAD_SIZE, sizeof tag);
    rc = sfi_img_gcm(ctx, c, 0, nonce, hdr_bytes, SFI_IMAGE_AAD_SIZE, NULL, 0, NULL, NULL, 0,
                     tag);
    EVP_CIPHER_CTX_free(c);
    if (rc == SFI_E_CRYPTO)
        return sfi_seterr(ctx, rc, "header tag mismatch (wrong key or nonce, or header altered)");
    return rc;
}

int sfi_image_decrypt_area(struct sfi_ctx *ctx, const struct sfi_image_area *area,
                           const uint8_t *area_bytes, const uint8_t *key, const uint8_t *nonce,
                           uint8_t *plain_out)
{
    EVP_CIPHER_CTX *c = NULL;
    int rc = sfi_img_gcm_init(ctx, &c, key, 0);
    if (rc)
        return rc;
    uint8_t iv[SFI_IMAGE_NONCE_SIZE], tag[SFI_IMAGE_TAG_SIZE];
    sfi_image_area_iv(nonce, area->index, iv);
    size_t hl = area->has_hash ? SFI_IMAGE_HASH_SIZE : 0;
    memcpy(tag, area->tag, sizeof tag);
    rc = sfi_img_gcm(ctx, c, 0, iv, area_bytes, SFI_IMAGE_DESC_SIZE, area_bytes +
                     SFI_IMAGE_DESC_SIZE, hl, area_bytes + SFI_IMAGE_DESC_SIZE + hl +
                     SFI_IMAGE_TAG_SIZE, plain_out, area->size, tag);
    EVP_CIPHER_CTX_free(c);
    if (rc == SFI_E_CRYPTO) {
        OPENSSL_cleanse(plain_out, area->size);
        return sfi_seterr(ctx, rc, "area %u (%c) at offset %zu: tag mismatch",
                          (unsigned)area->index, area->type, area->offset);
    }
    if (rc)
        return rc;
    if (area->has_hash) {
        uint8_t h[SFI_IMAGE_HASH_SIZE];
        rc = sfi_img_hash(ctx, plain_out, area->size, h);
        if (rc == SFI_OK && CRYPTO_memcmp(h, area->hash, sizeof h) != 0)
            rc = sfi_seterr(ctx, SFI_E_CRYPTO, "area %u (%c) at offset %zu: hash mismatch",
                            (unsigned)area->index, area->type, area->offset);
        if (rc)
            OPENSSL_cleanse(plain_out, area->size);
    }
    return rc;
}

int sfi_sha256_hex(struct sfi_ctx *ctx, const void *data, size_t len, char hex[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "SHA-256");
    sfi_hex_str(md, sizeof md, hex);
    return SFI_OK;
}

int sfi_image_gcm_floor_ms(struct sfi_ctx *ctx, size_t n, double *ms)
{
    if (n < 16 || n > (size_t)64 << 20)
        return sfi_seterr(ctx, SFI_E_INVALID, "crypto floor: %zu bytes (16 .. 64 MiB)", n);
    unsigned char *buf = malloc(n);
    if (buf == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "crypto floor: %zu bytes", n);
    memset(buf, 0x5A, n);
    static const unsigned char key[16] = {1}, iv[12] = {2}; /* a fixed test key, no secret */
    unsigned char tag[16];
    double best = 1e30;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    int ok = c != NULL && aes != NULL;
    for (int round = 0; ok && round < 5; round++) {
        uint64_t t0 = sfi_now_ns();
        int len = 0;
        ok = EVP_EncryptInit_ex2(c, aes, key, iv, NULL) &&
             EVP_EncryptUpdate(c, buf, &len, buf, (int)n) && EVP_EncryptFinal_ex(c, buf, &len) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) &&
             EVP_DecryptInit_ex2(c, aes, key, iv, NULL) &&
             EVP_DecryptUpdate(c, buf, &len, buf, (int)n) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) &&
             EVP_DecryptFinal_ex(c, buf, &len) > 0;
        double t = (double)(sfi_now_ns() - t0) / 1e6;
        if (t < best)
            best = t;
    }
    EVP_CIPHER_free(aes);
    EVP_CIPHER_CTX_free(c);
    free(buf);
    if (!ok)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "crypto floor: AES-128-GCM");
    *ms = best;
    return SFI_OK;
}
