/* test_license.c: chip certificate, simulated chip identity and licence crypto
 * (software provider and the RSS-side open), including forged and foreign inputs. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "license/ossl_err.h"
#include "sfi/license.h"

static struct sfi_ctx *ctx;
static const uint8_t seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t uid_a[12] = {0x41, 0x00, 0x2c, 0x00, 0x12, 0x51, 0x33, 0x30, 0x35, 0x38, 0x39};
static const uint8_t uid_b[12] = {0x42, 0x00, 0x2c, 0x00, 0x12, 0x51, 0x33, 0x30, 0x35, 0x38, 0x39};
static uint8_t ca_priv[32], ca_pub[64];

static char *slurp(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SFI_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 8192);
    assert_non_null(buf);
    *len = fread(buf, 1, 8191, f);
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    if (sfi_ctx_new(&ctx) != SFI_OK)
        return -1;
    size_t n;
    char *pem = slurp("vendor/sim/ca-key.pem", &n);
    int rc = sfi_ec_from_pem(ctx, pem, n, ca_priv, ca_pub);
    free(pem);
    return rc == SFI_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sfi_ctx_free(ctx);
    return 0;
}

static void test_ca_pem_pair(void **state)
{
    (void)state;
    size_t n;
    uint8_t pub[64], derived[64];
    char *pem = slurp("vendor/sim/ca-pub.pem", &n);
    assert_int_equal(sfi_ec_from_pem(ctx, pem, n, NULL, pub), SFI_OK);
    free(pem);
    assert_memory_equal(pub, ca_pub, 64);
    assert_int_equal(sfi_ec_pub_from_priv(ctx, ca_priv, derived), SFI_OK);
    assert_memory_equal(derived, ca_pub, 64);
    assert_int_equal(sfi_ec_from_pem(ctx, "junk", 4, NULL, pub), SFI_E_FORMAT);
}

static void test_identity(void **state)
{
    (void)state;
    uint8_t p1[32], q1[64], p2[32], q2[64], p3[32], q3[64], chk[64];
    assert_int_equal(sfi_chip_identity(ctx, uid_a, 12, seed, p1, q1), SFI_OK);
    assert_int_equal(sfi_chip_identity(ctx, uid_a, 12, seed, p2, q2), SFI_OK);
    assert_memory_equal(p1, p2, 32);
    assert_memory_equal(q1, q2, 64);
    assert_int_equal(sfi_chip_identity(ctx, uid_b, 12, seed, p3, q3), SFI_OK);
    assert_memory_not_equal(p1, p3, 32);
    assert_int_equal(sfi_ec_pub_from_priv(ctx, p1, chk), SFI_OK);
    assert_memory_equal(chk, q1, 64);
    assert_int_equal(sfi_chip_identity(ctx, uid_a, 0, seed, p1, q1), SFI_E_INVALID);
}

static void make_cert(const uint8_t *uid, uint8_t cert[136], uint8_t priv[32])
{
    uint8_t pub[64];
    assert_int_equal(sfi_chip_identity(ctx, uid, 12, seed, priv, pub), SFI_OK);
    assert_int_equal(sfi_cert_make(ctx, ca_priv, "45002001", pub, cert), SFI_OK);
}

static void test_cert(void **state)
{
    (void)state;
    uint8_t cert[136], priv[32], bad[136];
    struct sfi_cert c;
    make_cert(uid_a, cert, priv);
    assert_int_equal(sfi_cert_verify(ctx, cert, ca_pub), SFI_OK);
    assert_int_equal(sfi_cert_parse(ctx, cert, &c), SFI_OK);
    assert_string_equal(c.product_id, "45002001");
    /* every signed region matters */
    int offs[] = {0, 7, 8, 40, 71, 72, 103, 104, 135};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(bad, cert, 136);
        bad[offs[i]] ^= (offs[i] < 8) ? 0x01 : 0x40;
        int rc = sfi_cert_verify(ctx, bad, ca_pub);
        assert_true(rc == SFI_E_AUTH || rc == SFI_E_FORMAT);
    }
    memcpy(bad, cert, 136);
    bad[3] = 0x01;
    assert_int_equal(sfi_cert_verify(ctx, bad, ca_pub), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "product ID"));
    memcpy(bad, cert, 136);
    memset(bad + 8, 0x11, 64); /* not on the curve */
    assert_int_equal(sfi_cert_verify(ctx, bad, ca_pub), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "chip public key"));
    /* signed by another CA */
    uint8_t other_priv[32], other_pub[64], cert2[136];
    assert_int_equal(sfi_chip_identity(ctx, (const uint8_t *)"ca2", 3, seed, other_priv,
                                       other_pub), SFI_OK);
    assert_int_equal(sfi_cert_verify(ctx, cert, other_pub), SFI_E_AUTH);
    assert_int_equal(sfi_cert_make(ctx, other_priv, "45002001", c.pub, cert2), SFI_OK);
    assert_int_equal(sfi_cert_verify(ctx, cert2, ca_pub), SFI_E_AUTH);
    assert_int_equal(sfi_cert_make(ctx, ca_priv, "4500200", c.pub, cert2), SFI_E_INVALID);
}

static void test_license_roundtrip(void **state)
{
    (void)state;
    uint8_t cert[136], priv_a[32], priv_b[32], cert_b[136], lic[136], lic2[136];
    uint8_t key[16], iv[16], k[16] = {0}, v[16] = {0};
    struct sfi_cert c;
    struct sfi_license_info info;
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)(0xA0 + i);
        iv[i] = i < 12 ? (uint8_t)(0x10 + i) : 0;
    }
    make_cert(uid_a, cert, priv_a);
    make_cert(uid_b, cert_b, priv_b);
    assert_int_equal(sfi_cert_parse(ctx, cert, &c), SFI_OK);
    assert_int_equal(sfi_license_make_soft(ctx, c.pub, key, iv, lic), SFI_OK);
    assert_int_equal(sfi_license_parse(ctx, lic, &info), SFI_OK);
    assert_int_equal(info.type, SFI_LIC_TYPE);
    assert_memory_equal(lic, "SFL1", 4);
    assert_int_equal(sfi_license_open(ctx, priv_a, lic, k, v), SFI_OK);
    assert_memory_equal(k, key, 16);
    assert_memory_equal(v, iv, 16);
    /* the firmware key is not visible in the licence */
    assert_null(memmem(lic, 136, key, 16));
    /* a fresh ephemeral key per licence */
    assert_int_equal(sfi_license_make_soft(ctx, c.pub, key, iv, lic2), SFI_OK);
    assert_memory_not_equal(lic + 24, lic2 + 24, 64);
    /* chip B cannot open chip A's licence */
    memset(k, 0, 16);
    assert_int_equal(sfi_license_open(ctx, priv_b, lic, k, v), SFI_E_AUTH);
    assert_memory_equal(k, (uint8_t[16]){0}, 16);
    /* every byte is bound */
    for (int off = 4; off < 136; off += 3) {
        uint8_t bad[136];
        memcpy(bad, lic, 136);
        bad[off] ^= 0x04;
        int rc = sfi_license_open(ctx, priv_a, bad, k, v);
        assert_true(rc == SFI_E_AUTH || rc == SFI_E_CRYPTO);
    }
    uint8_t bad[136];
    memcpy(bad, lic, 136);
    bad[0] ^= 1;
    assert_int_equal(sfi_license_open(ctx, priv_a, bad, k, v), SFI_E_FORMAT);
    memset(bad, 0, 136);
    assert_int_equal(sfi_license_open(ctx, priv_a, bad, k, v), SFI_E_FORMAT);
}

/* The documented scheme, recomputed step by step: sfi_license_kdf_input is the public half. */
static void test_kdf_input(void **state)
{
    (void)state;
    uint8_t hdr[88], pub[64], d1[16], d2[16];
    memset(pub, 7, 64);
    sfi_license_header(0, 1, 0, pub, hdr);
    sfi_license_kdf_input(hdr, pub, d1);
    hdr[8] = 2; /* version */
    sfi_license_kdf_input(hdr, pub, d2);
    assert_memory_not_equal(d1, d2, 16);
}

/* One OpenSSL drain for licences, image crypto and bundle signing: the whole queue goes into
 * the detail, the root cause (queued first) named first, nothing left behind. */
static void test_ossl_err_drain(void **state)
{
    (void)state;
    ERR_clear_error();
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    assert_int_equal(sfi_ossl_err(ctx, SFI_E_CRYPTO, "area 3"), SFI_E_CRYPTO);
    const char *d = sfi_errdetail(ctx);
    assert_true(strncmp(d, "area 3: ", 8) == 0);
    const char *root = strstr(d, "bad decrypt"), *outer = strstr(d, "no start line");
    assert_non_null(root);
    assert_non_null(outer);
    assert_true(root < outer);
    assert_int_equal(ERR_peek_error(), 0);

    for (int i = 0; i < 40; i++)
        ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    sfi_ossl_err(ctx, SFI_E_CRYPTO, "flood");
    assert_non_null(strstr(sfi_errdetail(ctx), " more)"));
    assert_int_equal(ERR_peek_error(), 0);

    sfi_ossl_err(ctx, SFI_E_CRYPTO, "nothing queued");
    assert_string_equal(sfi_errdetail(ctx), "nothing queued");

    /* through a caller: a key file OpenSSL cannot read */
    static const char bad[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    uint8_t priv[32], pub[64];
    assert_int_not_equal(sfi_ec_from_pem(ctx, bad, sizeof bad - 1, priv, pub), SFI_OK);
    assert_non_null(strstr(sfi_errdetail(ctx), "error:"));
    assert_int_equal(ERR_peek_error(), 0);
}

/* The simulated chip's identity as sfi.core.rss gives it: a certificate the CA key verifies,
 * the same for the same UID; a CA key that is no key is FORMAT, and no private scalar is left. */
static void test_chip_identity_cert(void **state)
{
    (void)state;
    size_t n;
    char *pem = slurp("vendor/sim/ca-key.pem", &n);
    uint8_t priv[32], priv2[32], cert[SFI_CERT_SIZE], cert2[SFI_CERT_SIZE];
    assert_int_equal(sfi_chip_identity_cert(ctx, pem, n, "45002001", uid_a, sizeof uid_a, priv,
                                            cert), SFI_OK);
    assert_int_equal(sfi_cert_verify(ctx, cert, ca_pub), SFI_OK);
    assert_int_equal(sfi_chip_identity_cert(ctx, pem, n, "45002001", uid_a, sizeof uid_a, priv2,
                                            cert2), SFI_OK);
    assert_memory_equal(priv, priv2, 32);
    assert_int_equal(sfi_chip_identity_cert(ctx, pem, n, "45002001", uid_b, sizeof uid_b, priv2,
                                            cert2), SFI_OK);
    assert_memory_not_equal(priv, priv2, 32);
    static const uint8_t zero[32];
    memset(priv, 0xA5, sizeof priv);
    assert_int_equal(sfi_chip_identity_cert(ctx, "nope", 4, "45002001", uid_a, sizeof uid_a,
                                            priv, cert), SFI_E_FORMAT);
    assert_memory_equal(priv, zero, 32);
    memset(priv, 0xA5, sizeof priv);
    assert_int_equal(sfi_chip_identity_cert(ctx, pem, n, "bad", uid_a, sizeof uid_a, priv, cert),
                     SFI_E_INVALID);
    assert_memory_equal(priv, zero, 32);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_pem_pair),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_cert),
        cmocka_unit_test(test_license_roundtrip),
        cmocka_unit_test(test_kdf_input),
        cmocka_unit_test(test_ossl_err_drain),
        cmocka_unit_test(test_chip_identity_cert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
