/* ec.c: P-256 key plumbing over OpenSSL 3 (raw X||Y and scalars <-> EVP_PKEY, PEM, ECDH,
 * deterministic simulated chip identities). Raw formats: public = X||Y (64), private = 32. */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <string.h>

#include "license/lic_int.h"

#define CURVE "prime256v1"

EVP_PKEY *sfi_lic_pubkey(const uint8_t pub[64])
{
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, pub, 64);
    EVP_PKEY *pk = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)CURVE, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 ||
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_CTX_free(pc);
        return NULL;
    }
    EVP_PKEY_CTX_free(pc);
    pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int ok = pc && EVP_PKEY_public_check(pc) > 0;
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

/* pub = priv * G; 0 on success. Rejects 0 and values >= n. */
static int pub_of(const uint8_t priv[32], uint8_t pub[64])
{
    int ok = 0;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *d = BN_bin2bn(priv, 32, NULL);
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    uint8_t pt[65];
    if (g && d && p && !BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0 &&
        EC_POINT_mul(g, p, d, NULL, NULL, NULL) &&
        EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pt, sizeof pt, NULL) == 65) {
        memcpy(pub, pt + 1, 64);
        ok = 1;
    }
    BN_clear_free(d);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return ok ? 0 : -1;
}

EVP_PKEY *sfi_lic_privkey(const uint8_t priv[32])
{
    uint8_t pt[65];
    pt[0] = 0x04;
    if (pub_of(priv, pt + 1) != 0)
        return NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *d = BN_bin2bn(priv, 32, NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pc = NULL;
    if (d && b && OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, CURVE, 0) &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt) &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, d) &&
        (params = OSSL_PARAM_BLD_to_param(b)) != NULL &&
        (pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
        EVP_PKEY_fromdata_init(pc) > 0)
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_KEYPAIR, params);
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(d);
    return pk;
}

int sfi_lic_rawkey(EVP_PKEY *pk, uint8_t priv[32], uint8_t pub[64])
{
    char group[32] = "";
    uint8_t pt[65];
    size_t n = 0;
    if (!EVP_PKEY_is_a(pk, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        NULL) ||
        strcmp(group, CURVE) != 0)
        return -1;
    EVP_PKEY_set_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                   "uncompressed");
    if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n) ||
        n != 65 || pt[0] != 0x04)
        return -1;
    if (priv) {
        BIGNUM *d = NULL;
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d))
            return -1;
        int ok = BN_bn2binpad(d, priv, 32) == 32;
        BN_clear_free(d);
        if (!ok)
            return -1;
    }
    memcpy(pub, pt + 1, 64);
    return 0;
}

int sfi_ec_pub_from_priv(struct sfi_ctx *ctx, const uint8_t priv[32], uint8_t pub_out[64])
{
    uint8_t pub[64];
    if (pub_of(priv, pub) != 0)
        return sfi_ossl_err(ctx, SFI_E_INVALID, "private key is not a P-256 scalar");
    memcpy(pub_out, pub, 64);
    return SFI_OK;
}

int sfi_ec_from_pem(struct sfi_ctx *ctx, const char *pem, size_t len, uint8_t priv_out[32],
                    uint8_t pub_out[64])
{
    if (len > 0x7fffffff)
        return sfi_seterr(ctx, SFI_E_FORMAT, "PEM text too large");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return sfi_ossl_err(ctx, SFI_E_NOMEM, "BIO_new_mem_buf");
    EVP_PKEY *pk = priv_out ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                            : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return sfi_ossl_err(ctx, SFI_E_FORMAT,
                               priv_out ? "no PEM private key" : "no PEM public key");
    uint8_t priv[32], pub[64];
    int r = sfi_lic_rawkey(pk, priv_out ? priv : NULL, pub);
    EVP_PKEY_free(pk);
    if (r != 0) {
        sfi_wipe(priv, sizeof priv);
        return sfi_ossl_err(ctx, SFI_E_FORMAT, "PEM key is not an EC P-256 key");
    }
    if (priv_out)
        memcpy(priv_out, priv, 32);
    memcpy(pub_out, pub, 64);
    sfi_wipe(priv, sizeof priv);
    return SFI_OK;
}

int sfi_chip_identity(struct sfi_ctx *ctx, const uint8_t *uid, size_t uidlen,
                      const uint8_t seed[32], uint8_t priv_out[32], uint8_t pub_out[64])
{
    static const char label[] = "sfirun simulated chip identity v1";
    if (!uid || uidlen == 0 || uidlen > 64)
        return sfi_seterr(ctx, SFI_E_INVALID, "chip UID must be 1..64 bytes, got %zu", uidlen);
    uint8_t msg[sizeof label + 1 + 64];
    uint8_t d[32], pub[64];
    unsigned int dl = 0;
    memcpy(msg, label, sizeof label); /* includes the NUL: label and UID cannot run together */
    memcpy(msg + sizeof label + 1, uid, uidlen);
    for (unsigned ctr = 0; ctr < 256; ctr++) {
        msg[sizeof label] = (uint8_t)ctr;
        if (!HMAC(EVP_sha256(), seed, 32, msg, sizeof label + 1 + uidlen, d, &dl) || dl != 32)
            break;
        if (pub_of(d, pub) == 0) {
            memcpy(priv_out, d, 32);
            memcpy(pub_out, pub, 64);
            sfi_wipe(d, sizeof d);
            return SFI_OK;
        }
    }
    sfi_wipe(d, sizeof d);
    return sfi_ossl_err(ctx, SFI_E_CRYPTO, "chip identity derivation failed");
}

int sfi_lic_ecdh(EVP_PKEY *local, EVP_PKEY *peer, uint8_t z[32])
{
    size_t zl = 32;
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, local, NULL);
    int ok = dc && EVP_PKEY_derive_init(dc) > 0 && EVP_PKEY_derive_set_peer(dc, peer) > 0 &&
             EVP_PKEY_derive(dc, z, &zl) > 0 && zl == 32;
    EVP_PKEY_CTX_free(dc);
    return ok ? 0 : -1;
}
