/* p11sign.c: bundle signatures by a key that stays in a PKCS#11 token, through libp11 (slots,
 * login, key lookup, the EVP_PKEY whose EC method signs on the token) and OpenSSL 3 (SHA-256,
 * DER ECDSA). The key is selected by an RFC 7512 URI with the same module, token and PIN rules
 * as the licence token; only EC P-256 keys are taken (libp11 0.4.12 has no EdDSA). The public
 * key the bundle names comes from the private key object's EC point (as libp11 reads it), and
 * the signature is checked with it before it is returned. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "bundle/bundle_int.h"
#include "hsm/p11_int.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* The CKR_ value libp11 left on OpenSSL's error queue (0 when none), queue cleared. */
static CK_RV queued_rv(void)
{
    CK_RV rv = 0;
    unsigned long e;
    int lib = ERR_get_CKR_code();
    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) != 0)
            rv = (CK_RV)ERR_GET_REASON(e);
    return rv;
}

/* rc for a failed libp11 call: the CKR_ mapping when libp11 queued one, else fallback. */
static int p11fail(struct sfi_ctx *ctx, int fallback, const char *op)
{
    CK_RV rv = queued_rv();
    if (rv != 0)
        return sfi_p11_err(ctx, rv, op);
    return sfi_seterr(ctx, fallback, "%s failed", op);
}

static int same(const char *have, const char *want)
{
    if (!want[0])
        return 1;
    if (!have)
        return 0;
    size_t n = strlen(have);
    while (n > 0 && have[n - 1] == ' ')
        n--;
    return n == strlen(want) && memcmp(have, want, n) == 0;
}

/* A fresh provider key on P-256 from the uncompressed point (65 bytes); NULL if the point is
 * not on P-256. */
static EVP_PKEY *p256_public(const unsigned char *pt, size_t n)
{
    if (n != 65 || pt[0] != 0x04)
        return NULL;
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, n),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pub = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &pub, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pub = NULL;
    EVP_PKEY_CTX_free(pc);
    if (pub) {
        EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        int ok = vc && EVP_PKEY_public_check(vc) == 1;
        EVP_PKEY_CTX_free(vc);
        if (!ok) {
            EVP_PKEY_free(pub);
            pub = NULL;
        }
    }
    ERR_clear_error();
    return pub;
}

/* The one private key of the token matching the URI's object / id. */
static int pick_key(struct sfi_ctx *ctx, PKCS11_TOKEN *tok, const struct sfi_hsm_uri *u,
                    PKCS11_KEY **out)
{
    PKCS11_KEY *keys = NULL;
    unsigned n = 0;
    if (PKCS11_enumerate_keys(tok, &keys, &n) != 0)
        return p11fail(ctx, SFI_E_IO, "listing the token's private keys");
    PKCS11_KEY *hit = NULL;
    unsigned hits = 0;
    for (unsigned i = 0; i < n; i++) {
        PKCS11_KEY *k = &keys[i];
        if (!k->isPrivate)
            continue;
        if (u->object[0] && !(k->label && strcmp(k->label, u->object) == 0))
            continue;
        if (u->id_len && !(k->id_len == u->id_len && memcmp(k->id, u->id, u->id_len) == 0))
            continue;
        hit = k;
        hits++;
    }
    if (hits == 0)
        return sfi_seterr(ctx, SFI_E_NOT_FOUND, "token '%s' has no private key %s%s%s%s",
                          tok->label, u->object[0] ? "labelled '" : "",
                          u->object[0] ? u->object : "", u->object[0] ? "'" : "",
                          u->id_len ? (u->object[0] ? " with that id" : "with that id") : "");
    if (hits > 1)
        return sfi_seterr(ctx, SFI_E_USAGE, "token '%s' has %u private keys matching the URI: "
                                            "add object= or id=", tok->label, hits);
    *out = hit;
    return SFI_OK;
}

/* Signs msg with key (SHA-256, DER ECDSA) and checks the signature with pub. */
static int sign_with(struct sfi_ctx *ctx, EVP_PKEY *key, EVP_PKEY *pub, const void *msg,
                     size_t len, unsigned char **sig, size_t *siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *s = NULL;
    size_t sl = 0;
    int rc = SFI_OK;
    if (!md) {
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "signing");
    } else if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
               EVP_DigestSign(md, NULL, &sl, msg, len) != 1 || !(s = malloc(sl)) ||
               EVP_DigestSign(md, s, &sl, msg, len) != 1) {
        rc = p11fail(ctx, SFI_E_CRYPTO, "signing on the token");
    }
    EVP_MD_CTX_free(md);
    if (rc == SFI_OK) {
        EVP_MD_CTX *vc = EVP_MD_CTX_new();
        int ok = vc && EVP_DigestVerifyInit(vc, NULL, EVP_sha256(), NULL, pub) == 1 &&
                 EVP_DigestVerify(vc, s, sl, msg, len) == 1;
        EVP_MD_CTX_free(vc);
        ERR_clear_error();
        if (!ok)
            rc = sfi_seterr(ctx, SFI_E_CRYPTO, "the token's signature does not verify with "
                                               "the key's public point");
    }
    if (rc != SFI_OK) {
        free(s);
        return rc;
    }
    *sig = s;
    *siglen = sl;
    return SFI_OK;
}

static int spki_of(struct sfi_ctx *ctx, EVP_PKEY *pub, unsigned char **out, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pub, &der);
    if (n <= 0) {
        ERR_clear_error();
        return sfi_seterr(ctx, SFI_E_CRYPTO, "encoding the token key's public key");
    }
    unsigned char *copy = malloc((size_t)n);
    if (copy)
        memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    if (!copy)
        return sfi_seterr(ctx, SFI_E_NOMEM, "public key");
    *out = copy;
    *len = (size_t)n;
    return SFI_OK;
}

/* Everything after login: the key, its public point, the signature and the SPKI. */
static int sign_on_token(struct sfi_ctx *ctx, PKCS11_TOKEN *tok, const struct sfi_hsm_uri *u,
                         const void *msg, size_t len, unsigned char **sig, size_t *siglen,
                         unsigned char **spki, size_t *spkilen)
{
    PKCS11_KEY *k = NULL;
    int rc = pick_key(ctx, tok, u, &k);
    if (rc != SFI_OK)
        return rc;
    if (PKCS11_get_key_type(k) != EVP_PKEY_EC)
        return sfi_seterr(ctx, SFI_E_UNSUPPORTED, "token key '%s': only EC P-256 keys sign "
                                                  "bundles on a token", k->label ? k->label : "");
    EVP_PKEY *priv = PKCS11_get_private_key(k);
    if (!priv)
        return p11fail(ctx, SFI_E_NOT_FOUND, "reading the token key");
    unsigned char *pt = NULL;
    size_t ptl = EVP_PKEY_get1_encoded_public_key(priv, &pt);
    EVP_PKEY *pub = pt ? p256_public(pt, ptl) : NULL;
    OPENSSL_free(pt);
    ERR_clear_error();
    if (!pub) {
        rc = sfi_seterr(ctx, SFI_E_UNSUPPORTED, "token key '%s': not an EC P-256 key with a "
                                                "public point (CKA_EC_POINT)",
                        k->label ? k->label : "");
    } else {
        rc = sign_with(ctx, priv, pub, msg, len, sig, siglen);
        if (rc == SFI_OK) {
            rc = spki_of(ctx, pub, spki, spkilen);
            if (rc != SFI_OK) {
                free(*sig);
                *sig = NULL;
            }
        }
    }
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    return rc;
}

int sfi_bsign_sign_p11(struct sfi_ctx *ctx, const char *uri, const void *msg, size_t len,
                       unsigned char **sig, size_t *siglen, unsigned char **spki,
                       size_t *spkilen)
{
    struct sfi_hsm_uri u;
    int rc = sfi_hsm_uri_parse(ctx, uri, &u);
    if (rc != SFI_OK)
        return rc;
    if (!u.token[0])
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 signing key: the URI needs token=LABEL");
    if (!u.object[0] && !u.id_len)
        return sfi_seterr(ctx, SFI_E_USAGE,
                          "PKCS#11 signing key: the URI needs object=LABEL or id=%%XX...");
    if (u.type[0] && strcmp(u.type, "private") != 0)
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 signing key: type=%s; a signing key is "
                                            "type=private",
                          u.type);
    const char *module = u.module[0] ? u.module : getenv("SFI_PKCS11_MODULE");
    if (!module || !*module)
        module = DEFAULT_MODULE;

    if (access(module, R_OK) != 0) /* libp11 would print dlopen's complaint on stderr */
        return sfi_seterr(ctx, SFI_E_NOT_FOUND, "PKCS#11 module %s not found", module);
    ERR_clear_error();
    PKCS11_CTX *p = PKCS11_CTX_new();
    if (!p)
        return sfi_seterr(ctx, SFI_E_NOMEM, "libp11 context");
    PKCS11_SLOT *slots = NULL;
    unsigned nslots = 0;
    int loaded = 0;
    char pin[129] = "";
    if (PKCS11_CTX_load(p, module) != 0) {
        ERR_clear_error();
        rc = sfi_seterr(ctx, SFI_E_NOT_FOUND, "PKCS#11 module %s cannot be loaded", module);
        goto out;
    }
    loaded = 1;
    if (PKCS11_enumerate_slots(p, &slots, &nslots) != 0) {
        rc = p11fail(ctx, SFI_E_IO, "C_GetSlotList");
        goto out;
    }
    PKCS11_SLOT *slot = NULL;
    for (unsigned i = 0; i < nslots && !slot; i++) {
        PKCS11_TOKEN *t = slots[i].token;
        if (t && t->initialized && same(t->label, u.token) && same(t->serialnr, u.serial) &&
            same(t->manufacturer, u.manufacturer) && same(t->model, u.model))
            slot = &slots[i];
    }
    if (!slot) {
        rc = sfi_seterr(ctx, SFI_E_NOT_FOUND, "no PKCS#11 token labelled '%s'%s%s", u.token,
                        u.serial[0] ? " with serial " : "", u.serial);
        goto out;
    }
    rc = sfi_p11_read_pin(ctx, u.pin_env[0] ? u.pin_env : NULL,
                          u.pin_file[0] ? u.pin_file : NULL, pin, sizeof pin);
    if (rc != SFI_OK)
        goto out;
    int lr = PKCS11_login(slot, 0, pin);
    sfi_wipe(pin, sizeof pin);
    if (lr != 0) {
        rc = p11fail(ctx, SFI_E_AUTH, "C_Login");
        goto out;
    }
    rc = sign_on_token(ctx, slot->token, &u, msg, len, sig, siglen, spki, spkilen);
    PKCS11_logout(slot);
    if (rc == SFI_OK)
        sfi_log(ctx, SFI_LOG_DEBUG, "bundle: manifest signed on token '%s' (%s)", u.token,
                module);
out:
    sfi_wipe(pin, sizeof pin);
    ERR_clear_error();
    if (slots)
        PKCS11_release_all_slots(p, slots, nslots);
    if (loaded)
        PKCS11_CTX_unload(p);
    PKCS11_CTX_free(p);
    return rc;
}
