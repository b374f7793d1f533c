/* bsign.c: the OpenSSL side of bundles: SHA-256, Ed25519 / ECDSA P-256 signatures over the
 * manifest, and key fingerprints (SHA-256 of the DER SubjectPublicKeyInfo). OpenSSL errors
 * are mapped by sfi_ossl_err (license/ossl_err.h): the drained queue goes to the detail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bundle/bundle_int.h"
#include "license/ossl_err.h"

int sfi_bsign_sha256(struct sfi_ctx *ctx, const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "SHA-256");
    return SFI_OK;
}

static int key_kind_ok(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "ED25519"))
        return 1;
    if (EVP_PKEY_is_a(k, "EC")) {
        char group[64];
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) &&
            strcmp(group, "prime256v1") == 0)
            return 1;
    }
    return 0;
}

static const EVP_MD *key_md(EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256();
}

static int spki_der(struct sfi_ctx *ctx, EVP_PKEY *k, unsigned char **out, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    if (n <= 0)
        return sfi_ossl_err(ctx, SFI_E_CRYPTO, "encoding the public key");
    unsigned char *copy = malloc((size_t)n);
    if (!copy) {
        OPENSSL_free(der);
        return sfi_seterr(ctx, SFI_E_NOMEM, "public key");
    }
    memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    *out = copy;
    *len = (size_t)n;
    return SFI_OK;
}

static int load_key(struct sfi_ctx *ctx, const char *pem, size_t len, int private,
                    EVP_PKEY **out)
{
    if (len > 64 * 1024)
        return sfi_seterr(ctx, SFI_E_FORMAT, "key file too large");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return sfi_ossl_err(ctx, SFI_E_NOMEM, "key");
    EVP_PKEY *k = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                          : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!k && !private) {
        /* a private key file also names its public key */
        ERR_clear_error();
        (void)BIO_reset(bio);
        k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    if (!k)
        return sfi_ossl_err(ctx, SFI_E_FORMAT,
                        private ? "not a PEM private key" : "not a PEM public key");
    if (!key_kind_ok(k)) {
        EVP_PKEY_free(k);
        return sfi_seterr(ctx, SFI_E_UNSUPPORTED, "key type: only Ed25519 and EC P-256");
    }
    *out = k;
    return SFI_OK;
}

int sfi_bundle_fingerprint(struct sfi_ctx *ctx, const char *pem, size_t len, char hex[65])
{
    EVP_PKEY *k = NULL;
    int rc = load_key(ctx, pem, len, 0, &k);
    if (rc != SFI_OK)
        return rc;
    unsigned char *der = NULL;
    size_t dl = 0;
    rc = spki_der(ctx, k, &der, &dl);
    EVP_PKEY_free(k);
    if (rc != SFI_OK)
        return rc;
    unsigned char md[32];
    rc = sfi_bsign_sha256(ctx, der, dl, md);
    free(der);
    if (rc == SFI_OK)
        sfi_hex_str(md, 32, hex);
    return rc;
}

int sfi_bsign_sign(struct sfi_ctx *ctx, const char *key_pem, size_t key_len, const void *msg,
                   size_t len, unsigned char **sig, size_t *siglen, unsigned char **spki,
                   size_t *spkilen)
{
    EVP_PKEY *k = NULL;
    int rc = load_key(ctx, key_pem, key_len, 1, &k);
    if (rc != SFI_OK)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *s = NULL, *der = NULL;
    size_t sl = 0, dl = 0;
    if (!md) {
        rc = sfi_ossl_err(ctx, SFI_E_NOMEM, "signing");
    } else if (EVP_DigestSignInit(md, NULL, key_md(k), NULL, k) != 1 ||
               EVP_DigestSign(md, NULL, &sl, msg, len) != 1) { /* NOLINT(bugprone-branch-clone):
                                                                  same error, two steps */
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "signing the manifest");
    } else if (!(s = malloc(sl))) {
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "signature");
    } else if (EVP_DigestSign(md, s, &sl, msg, len) != 1) {
        rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "signing the manifest");
    } else {
        rc = spki_der(ctx, k, &der, &dl);
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k); /* frees and cleanses the private key */
    if (rc != SFI_OK) {
        free(s);
        return rc;
    }
    *sig = s;
    *siglen = sl;
    *spki = der;
    *spkilen = dl;
    return SFI_OK;
}

int sfi_bsign_verify(struct sfi_ctx *ctx, const char *trust_pem, size_t trust_len,
                     const unsigned char *spki, size_t spkilen, const void *msg, size_t len,
                     const unsigned char *sig, size_t siglen, char fp[65])
{
    EVP_PKEY *k = NULL;
    int rc = load_key(ctx, trust_pem, trust_len, 0, &k);
    if (rc != SFI_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sfi_errdetail(ctx));
        return sfi_seterr(ctx, rc, "trust key: %s", why);
    }
    unsigned char *der = NULL;
    size_t dl = 0;
    unsigned char md[32], smd[32];
    char sfp[65];
    rc = spki_der(ctx, k, &der, &dl);
    if (rc == SFI_OK)
        rc = sfi_bsign_sha256(ctx, der, dl, md);
    if (rc == SFI_OK)
        rc = sfi_bsign_sha256(ctx, spki, spkilen, smd);
    if (rc == SFI_OK) {
        sfi_hex_str(md, 32, fp);
        sfi_hex_str(smd, 32, sfp);
        if (dl != spkilen || memcmp(der, spki, dl) != 0)
            rc = sfi_seterr(ctx, SFI_E_AUTH,
                            "manifest.sig: signed by key %s, not by the trusted key %s", sfp, fp);
    }
    free(der);
    if (rc == SFI_OK) {
        EVP_MD_CTX *mdc = EVP_MD_CTX_new();
        if (!mdc)
            rc = sfi_ossl_err(ctx, SFI_E_NOMEM, "verifying");
        else if (EVP_DigestVerifyInit(mdc, NULL, key_md(k), NULL, k) != 1)
            rc = sfi_ossl_err(ctx, SFI_E_CRYPTO, "verifying");
        else if (EVP_DigestVerify(mdc, sig, siglen, msg, len) != 1)
            rc = sfi_ossl_err(ctx, SFI_E_AUTH, "manifest.sig: bad signature over the manifest");
        EVP_MD_CTX_free(mdc);
    }
    EVP_PKEY_free(k);
    return rc;
}
