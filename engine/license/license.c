/* license.c: the 136-byte licence (RSS layout, little-endian): header (88) = type | session |
 * version | min version | rfu[8] | ephemeral public key X||Y, then a 40-byte RFC 3394 AES key
 * wrap of IV(16)||key(16) and 8 zero bytes. KEK = AES-256-ECB_Z(SHA-256(label||hdr||chip)[:16]),
 * Z = ECDH x-coordinate: computable on a PKCS#11 token (docs/license.md). */
#include <openssl/ec.h>
#include <openssl/err.h>
#include <string.h>

#include "license/lic_int.h"
#include "sfi/bytes.h"

void sfi_license_header(uint32_t session, uint32_t version, uint32_t min_version,
                        const uint8_t eph_pub[64], uint8_t hdr_out[SFI_LIC_HEADER_SIZE])
{
    sfi_put_le32(hdr_out, SFI_LIC_TYPE);
    sfi_put_le32(hdr_out + 4, session);
    sfi_put_le32(hdr_out + 8, version);
    sfi_put_le32(hdr_out + 12, min_version);
    memset(hdr_out + 16, 0, 8);
    memcpy(hdr_out + 24, eph_pub, 64);
}

int sfi_license_on_curve(const uint8_t pub64[64])
{
    EVP_PKEY *k = sfi_lic_pubkey(pub64);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return k != NULL;
}

int sfi_license_parse(struct sfi_ctx *ctx, const uint8_t lic[SFI_LIC_SIZE],
                      struct sfi_license_info *out)
{
    uint32_t type = sfi_get_le32(lic);
    if (type != SFI_LIC_TYPE && type != SFI_LIC_TYPE_ST)
        return sfi_seterr(ctx, SFI_E_FORMAT, "licence: type (bytes 0..3) is 0x%08x: neither "
                          "ST's \"SFIG\" nor sfirun's \"SFL1\"", type);
    out->type = type;
    out->session = sfi_get_le32(lic + 4);
    out->version = sfi_get_le32(lic + 8);
    out->min_version = sfi_get_le32(lic + 12);
    memcpy(out->rfu, lic + 16, 8);
    memcpy(out->eph_pub, lic + 24, 64);
    return SFI_OK;
}

void sfi_license_kdf_input(const uint8_t hdr[SFI_LIC_HEADER_SIZE], const uint8_t chip_pub[64],
                           uint8_t d_out[16])
{
    uint8_t md[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(c, SFI_LIC_KDF_LABEL, sizeof SFI_LIC_KDF_LABEL - 1) &&
             EVP_DigestUpdate(c, hdr, SFI_LIC_HEADER_SIZE) && EVP_DigestUpdate(c, chip_pub, 64) &&
             EVP_DigestFinal_ex(c, md, &n);
    EVP_MD_CTX_free(c);
    if (!ok) /* only on allocation failure: a zero input then fails the unwrap, never succeeds */
        memset(md, 0, sizeof md);
    memcpy(d_out, md, 16);
}

/* KEK = AES-256-ECB(Z, D): what CKM_AES_ECB_ENCRYPT_DATA computes on the token. */
static int kek_of(const uint8_t z[32], const uint8_t d[16], uint8_t kek[16])
{
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && EVP_EncryptInit_ex2(c, EVP_aes_256_ecb(), z, NULL, NULL) &&
             EVP_CIPHER_CTX_set_padding(c, 0) && EVP_EncryptUpdate(c, kek, &l1, d, 16) &&
             EVP_EncryptFinal_ex(c, kek + l1, &l2) && l1 + l2 == 16;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

/* RFC 3394 with the default IV; enc: 32 -> 40 bytes, else 40 -> 32 (fails on a bad ICV). */
static int kw(int enc, const uint8_t kek[16], const uint8_t *in, size_t inlen, uint8_t *out)
{
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    int ok = EVP_CipherInit_ex2(c, EVP_aes_128_wrap(), kek, NULL, enc, NULL) &&
             EVP_CipherUpdate(c, out, &l1, in, (int)inlen) > 0 &&
             EVP_CipherFinal_ex(c, out + l1, &l2) > 0 &&
             (size_t)l1 + (size_t)l2 == (enc ? inlen + 8 : inlen - 8);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

int sfi_license_open(struct sfi_ctx *ctx, const uint8_t chip_priv[32],
                     const uint8_t lic[SFI_LIC_SIZE], uint8_t key16_out[16], uint8_t iv16_out[16])
{
    struct sfi_license_info info;
    int rc = sfi_license_parse(ctx, lic, &info);
    if (rc != SFI_OK)
        return rc;
    if (info.type == SFI_LIC_TYPE_ST)
        return sfi_seterr(ctx, SFI_E_UNSUPPORTED, "licence made by ST's tools (type SFIG): its "
                          "key derivation is not public, only a real RSS opens it");
    for (int i = 128; i < SFI_LIC_SIZE; i++)
        if (lic[i] != 0)
            return sfi_seterr(ctx, SFI_E_AUTH, "licence: bytes 128..135 are not zero");
    EVP_PKEY *eph = sfi_lic_pubkey(info.eph_pub);
    if (!eph)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO,
                               "licence: ephemeral key (bytes 24..87) is not on P-256");
    EVP_PKEY *chip = sfi_lic_privkey(chip_priv);
    if (!chip) {
        EVP_PKEY_free(eph);
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "chip private key is not a P-256 scalar");
    }
    uint8_t chip_pub[64], z[32], d[16], kek[16], pt[32];
    if (sfi_lic_rawkey(chip, NULL, chip_pub) != 0 || sfi_lic_ecdh(chip, eph, z) != 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "licence: ECDH failed");
        goto out;
    }
    sfi_license_kdf_input(lic, chip_pub, d);
    if (kek_of(z, d, kek) != 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "licence: key derivation failed");
        goto out;
    }
    if (kw(0, kek, lic + SFI_LIC_HEADER_SIZE, 40, pt) != 0) {
        rc = sfi_ossl_err(ctx, SFI_E_AUTH,
                             "licence: key unwrap failed (forged, altered or for another chip)");
        goto out;
    }
    memcpy(iv16_out, pt, 16);
    memcpy(key16_out, pt + 16, 16);
out:
    sfi_wipe(z, sizeof z);
    sfi_wipe(kek, sizeof kek);
    sfi_wipe(pt, sizeof pt);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(chip);
    return rc;
}

int sfi_license_make_soft(struct sfi_ctx *ctx, const uint8_t chip_pub[64],
                          const uint8_t fwkey16[16], const uint8_t fwiv16[16],
                          uint8_t lic_out[SFI_LIC_SIZE])
{
    EVP_PKEY *chip = sfi_lic_pubkey(chip_pub);
    if (!chip)
        return sfi_ossl_err(ctx, SFI_E_INVALID, "chip public key is not on P-256");
    EVP_PKEY *eph = EVP_EC_gen("P-256");
    int rc = SFI_OK;
    uint8_t lic[SFI_LIC_SIZE], eph_pub[64], z[32], d[16], kek[16], pt[32];
    memset(lic, 0, sizeof lic);
    if (!eph || sfi_lic_rawkey(eph, NULL, eph_pub) != 0 || sfi_lic_ecdh(eph, chip, z) != 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "licence: ephemeral ECDH failed");
        goto out;
    }
    sfi_license_header(0, 1, 0, eph_pub, lic);
    sfi_license_kdf_input(lic, chip_pub, d);
    memcpy(pt, fwiv16, 16);
    memcpy(pt + 16, fwkey16, 16);
    if (kek_of(z, d, kek) != 0 || kw(1, kek, pt, 32, lic + SFI_LIC_HEADER_SIZE) != 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "licence: key wrap failed");
        goto out;
    }
    memcpy(lic_out, lic, SFI_LIC_SIZE);
out:
    sfi_wipe(z, sizeof z);
    sfi_wipe(kek, sizeof kek);
    sfi_wipe(pt, sizeof pt);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(chip);
    return rc;
}
