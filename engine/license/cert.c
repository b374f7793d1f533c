/* cert.c: the 136-byte chip certificate: product ID (8 ASCII) | chip public key X||Y (64) |
 * ECDSA P-256 signature r||s (64) by a CA over SHA-256 of the first 72 bytes. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <string.h>

#include "license/lic_int.h"

static int product_ok(const uint8_t *p)
{
    for (int i = 0; i < SFI_CERT_PRODUCT_LEN; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return 0;
    return 1;
}

int sfi_cert_parse(struct sfi_ctx *ctx, const uint8_t cert[SFI_CERT_SIZE], struct sfi_cert *out)
{
    if (!product_ok(cert))
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "certificate: product ID (bytes 0..7) is not 8 printable ASCII chars");
    memcpy(out->product_id, cert, SFI_CERT_PRODUCT_LEN);
    out->product_id[SFI_CERT_PRODUCT_LEN] = '\0';
    memcpy(out->pub, cert + 8, 64);
    memcpy(out->sig, cert + 72, 64);
    return SFI_OK;
}

int sfi_cert_make(struct sfi_ctx *ctx, const uint8_t ca_priv[32], const char *product_id,
                  const uint8_t chip_pub[64], uint8_t cert_out[SFI_CERT_SIZE])
{
    if (!product_id || strlen(product_id) != SFI_CERT_PRODUCT_LEN ||
        !product_ok((const uint8_t *)product_id))
        return sfi_seterr(ctx, SFI_E_INVALID, "product ID must be 8 printable ASCII chars");
    EVP_PKEY *chk = sfi_lic_pubkey(chip_pub);
    if (!chk)
        return sfi_ossl_err(ctx, SFI_E_INVALID, "chip public key is not on P-256");
    EVP_PKEY_free(chk);
    uint8_t c[SFI_CERT_SIZE];
    memcpy(c, product_id, 8);
    memcpy(c + 8, chip_pub, 64);
    EVP_PKEY *ca = sfi_lic_privkey(ca_priv);
    if (!ca)
        return sfi_ossl_err(ctx, SFI_E_INVALID, "CA private key is not a P-256 scalar");
    int rc = SFI_OK;
    uint8_t der[80];
    size_t derlen = sizeof der;
    ECDSA_SIG *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ca, NULL) <= 0 ||
        EVP_DigestSign(md, der, &derlen, c, 72) <= 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "ECDSA signing failed");
        goto out;
    }
    const uint8_t *pd = der;
    sig = d2i_ECDSA_SIG(NULL, &pd, (long)derlen);
    if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig), c + 72, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), c + 104, 32) != 32) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "ECDSA signature conversion failed");
        goto out;
    }
    memcpy(cert_out, c, SFI_CERT_SIZE);
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(ca);
    return rc;
}

int sfi_cert_verify(struct sfi_ctx *ctx, const uint8_t cert[SFI_CERT_SIZE],
                    const uint8_t ca_pub[64])
{
    struct sfi_cert c;
    int rc = sfi_cert_parse(ctx, cert, &c);
    if (rc != SFI_OK)
        return rc;
    EVP_PKEY *chip = sfi_lic_pubkey(c.pub);
    if (!chip)
        return sfi_ossl_err(ctx, SFI_E_FORMAT,
                               "certificate: chip public key (bytes 8..71) is not on P-256");
    EVP_PKEY_free(chip);
    EVP_PKEY *ca = sfi_lic_pubkey(ca_pub);
    if (!ca)
        return sfi_ossl_err(ctx, SFI_E_INVALID, "CA public key is not on P-256");
    uint8_t *der = NULL;
    int derlen = 0;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(c.sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(c.sig + 32, 32, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!sig || !r || !s || !md || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        rc = sfi_ossl_err(ctx, SFI_E_NOMEM, "ECDSA_SIG");
        goto out;
    }
    derlen = i2d_ECDSA_SIG(sig, &der);
    if (derlen <= 0 || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, ca, NULL) <= 0) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "ECDSA verify setup failed");
        goto out;
    }
    if (EVP_DigestVerify(md, der, (size_t)derlen, cert, 72) != 1)
        rc = sfi_ossl_err(ctx, SFI_E_AUTH,
                             "certificate: signature (bytes 72..135) does not verify with the CA key");
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(ca);
    return rc;
}

int sfi_chip_identity_cert(struct sfi_ctx *ctx, const char *ca_pem, size_t pemlen,
                           const char *product_id, const uint8_t *uid, size_t uidlen,
                           uint8_t priv_out[32], uint8_t cert_out[SFI_CERT_SIZE])
{
    static const char label[] = "sfirun simulated chip identity v1"; /* model */
    uint8_t seed[32], ca[32], capub[64], pub[64];
    unsigned slen = 0;
    if (EVP_Digest(label, sizeof label - 1, seed, &slen, EVP_sha256(), NULL) != 1)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "chip identity seed");
    int rc = sfi_ec_from_pem(ctx, ca_pem, pemlen, ca, capub);
    if (rc == SFI_OK)
        rc = sfi_chip_identity(ctx, uid, uidlen, seed, priv_out, pub);
    if (rc == SFI_OK)
        rc = sfi_cert_make(ctx, ca, product_id, pub, cert_out);
    sfi_wipe(ca, sizeof ca);
    if (rc != SFI_OK)
        sfi_wipe(priv_out, 32);
    return rc;
}
