/* test_p11.c: the PKCS#11 return-value mapping and the RFC 7512 URI parser: only CKR_OK maps
 * to success (an "already" answer to a call that cannot give one is an error, so no caller
 * returns success with its outputs unset), and URI fields are decoded and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hsm/p11_int.h"

static void test_only_ckr_ok_succeeds(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    assert_int_equal(sfi_p11_err(ctx, CKR_OK, "C_GetSlotList"), SFI_OK);
    assert_int_equal(sfi_p11_err(ctx, CKR_USER_ALREADY_LOGGED_IN, "C_OpenSession"),
                     SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "C_OpenSession: CKR_USER_ALREADY_LOGGED_IN"));
    assert_int_equal(sfi_p11_err(ctx, CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_GetSlotList"),
                     SFI_E_PROTOCOL);
    assert_int_equal(sfi_p11_err(ctx, CKR_PIN_INCORRECT, "C_Login"), SFI_E_AUTH);
    assert_int_not_equal(sfi_p11_err(ctx, 0x7FFFFFF0ul, "C_Login"), SFI_OK);
    sfi_ctx_free(ctx);
}

static void test_uri(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    struct sfi_hsm_uri u;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=My%20Token;serial=1?module-path="
                                            "%2Fopt%2Fp11.so&pin-source=file:///run/pin", &u),
                     SFI_OK);
    assert_string_equal(u.token, "My Token");
    assert_string_equal(u.module, "/opt/p11.so");
    assert_string_equal(u.pin_file, "/run/pin");
    assert_string_equal(u.pin_env, "");
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a?pin-source=env:PIN", &u), SFI_OK);
    assert_string_equal(u.pin_env, "PIN");
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a?pin-value=1234", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=%zz", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=%4", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=%00", &u), SFI_E_USAGE);
    /* a label longer than the 32-byte PKCS#11 label field */
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=0123456789abcdef0123456789abcdefX", &u),
                     SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "token=a", &u), SFI_E_USAGE);
    /* key selectors: a label, binary id bytes (NUL included), a type */
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a;object=oem%20key;id=%0a%00%ff;"
                                            "type=private", &u),
                     SFI_OK);
    assert_string_equal(u.object, "oem key");
    assert_int_equal(u.id_len, 3);
    assert_memory_equal(u.id, "\x0a\x00\xff", 3);
    assert_string_equal(u.type, "private");
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a;type=secret", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a;id=", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a;id=%0", &u), SFI_E_USAGE);
    assert_int_equal(sfi_hsm_uri_parse(ctx, "pkcs11:token=a;objct=k", &u), SFI_E_USAGE);
    sfi_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_ckr_ok_succeeds),
        cmocka_unit_test(test_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
