/* test_image_parse.c: the SFI parser against ST's own 2017 image (tests/data/st-tpc-2017):
 * its three areas, its exact end, every truncation, inconsistent counts and sizes, and the
 * streaming reader a simulated RSS uses; and ST's 2024 protocol-2 image with its key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfi/bytes.h"
#include "sfi/image.h"

static uint8_t *st_buf;
static size_t st_len;

static int load_st(void **state)
{
    FILE *f = fopen(SFI_SOURCE_DIR "/tests/data/st-tpc-2017/data.sfi", "rb");
    assert_non_null(f);
    st_buf = malloc(20000);
    st_len = fread(st_buf, 1, 20000, f);
    fclose(f);
    return 0;
}

static int free_st(void **state)
{
    free(st_buf);
    return 0;
}

static void test_st_file_areas(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    assert_int_equal(st_len, 10882);
    struct sfi_image *img = NULL;
    assert_int_equal(sfi_image_parse(ctx, st_buf, st_len, &img), SFI_OK);
    assert_int_equal(img->hdr.protocol, 1);
    assert_int_equal(img->hdr.hashed, 0);
    assert_int_equal(img->version, 0x17); /* the image version, in each area's version byte */
    assert_int_equal(sfi_get_le16(st_buf + 8), 1);  /* u16 protocol */
    assert_int_equal(sfi_get_le16(st_buf + 10), 3); /* u16 area count */
    assert_int_equal(img->n, 3);
    const char types[] = "FFC";
    const uint32_t sizes[] = {844, 9884, 36};
    const uint32_t addrs[] = {0x08000000, 0x08030000, 0};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(img->area[i].type, types[i]);
        assert_int_equal(img->area[i].index, i + 1);
        assert_int_equal(img->area[i].size, sizes[i]);
        assert_int_equal(img->area[i].addr, addrs[i]);
        assert_int_equal(img->area[i].ver, 0x17);
        assert_int_equal(img->area[i].has_hash, 0);
    }
    const struct sfi_image_area *last = &img->area[2];
    assert_int_equal(last->offset + last->length, st_len);
    sfi_image_free(img);
    sfi_ctx_free(ctx);
}

static void test_st_truncated_everywhere(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    for (size_t n = 0; n < st_len; n++) {
        /* an exact-size heap copy so ASan sees any read past the end */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, st_buf, n);
        struct sfi_image *img = NULL;
        int rc = sfi_image_parse(ctx, cut, n, &img);
        if (rc != SFI_E_FORMAT)
            fail_msg("truncated at %zu: rc %d", n, rc);
        assert_null(img);
        assert_true(strstr(sfi_errdetail(ctx), "offset") != NULL);
        free(cut);
    }
    /* one byte too many is trailing garbage */
    uint8_t *more = malloc(st_len + 1);
    memcpy(more, st_buf, st_len);
    more[st_len] = 0;
    struct sfi_image *img = NULL;
    assert_int_equal(sfi_image_parse(ctx, more, st_len + 1, &img), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "trailing"));
    free(more);
    sfi_ctx_free(ctx);
}

static int parse_mod(struct sfi_ctx *ctx, size_t at, const uint8_t *bytes, size_t n)
{
    uint8_t *b = malloc(st_len);
    memcpy(b, st_buf, st_len);
    memcpy(b + at, bytes, n);
    struct sfi_image *img = NULL;
    int rc = sfi_image_parse(ctx, b, st_len, &img);
    sfi_image_free(img);
    free(b);
    return rc;
}

static void test_inconsistent(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    const uint8_t big_count[2] = {0xFF, 0xFF};
    assert_int_equal(parse_mod(ctx, 10, big_count, 2), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "area count 65535"));
    const uint8_t four[2] = {4, 0};
    assert_int_equal(parse_mod(ctx, 10, four, 2), SFI_E_FORMAT); /* totals now disagree */
    assert_non_null(strstr(sfi_errdetail(ctx), "area 1"));
    /* size overflow in area 2 (descriptor at 28 + 30 + 844) */
    const size_t a2 = 28 + 30 + 844;
    const uint8_t huge[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(parse_mod(ctx, a2 + 4, huge, 4), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "area 2"));
    assert_non_null(strstr(sfi_errdetail(ctx), "size 4294967295"));
    const uint8_t magic = 'X';
    assert_int_equal(parse_mod(ctx, 0, &magic, 1), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "magic"));
    const uint8_t type = 'Z';
    assert_int_equal(parse_mod(ctx, a2, &type, 1), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "unknown type"));
    const uint8_t idx[2] = {3, 0};
    assert_int_equal(parse_mod(ctx, a2 + 2, idx, 2), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "out of order"));
    const uint8_t proto = 9;
    assert_int_equal(parse_mod(ctx, 8, &proto, 1), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "protocol 9"));
    sfi_ctx_free(ctx);
}

static void test_streaming(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct sfi_image_header h;
    assert_int_equal(sfi_image_parse_header(ctx, st_buf, st_len, &h), SFI_OK);
    assert_int_equal(h.areas, 3);
    /* RSS view: header at one address, the areas elsewhere */
    const uint8_t *areas = st_buf + SFI_IMAGE_HDR_SIZE;
    size_t len = st_len - SFI_IMAGE_HDR_SIZE, off = 0;
    struct sfi_image_area a;
    for (unsigned i = 1; i <= 3; i++) {
        assert_int_equal(sfi_image_next_area(ctx, areas, len, &off, &h, &a), SFI_OK);
        assert_int_equal(a.index, i);
    }
    assert_int_equal(off, len);
    assert_int_equal(sfi_image_next_area(ctx, areas, len, &off, &h, &a), SFI_E_FORMAT);
    /* unknown key: the header tag does not verify, it does not crash */
    uint8_t key[16] = {0}, nonce[12] = {0};
    assert_int_equal(sfi_image_check_header_tag(ctx, st_buf, key, nonce), SFI_E_CRYPTO);
    sfi_ctx_free(ctx);
}

static uint8_t *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *b = malloc(max);
    assert_non_null(b);
    *len = fread(b, 1, max, f);
    fclose(f);
    return b;
}

/* ST's 2024 protocol-2 image (tests/data/st-tpc-2024-h5) with its key and nonce: header
 * bytes 8..11 are u16 protocol, u16 count; the hash is found from the lengths; every tag
 * verifies; the streaming reader walks it only when told the areas carry the hash. */
static void test_st_h5_image(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    size_t len, klen, nlen;
    uint8_t *buf = slurp(SFI_SOURCE_DIR "/tests/data/st-tpc-2024-h5/SecureManagerPackage.sfi",
                         500000, &len);
    uint8_t *key = slurp(SFI_SOURCE_DIR "/tests/data/st-tpc-2024-h5/SFI_Encryption_Key.bin", 64,
                         &klen);
    uint8_t *nonce = slurp(SFI_SOURCE_DIR "/tests/data/st-tpc-2024-h5/SFI_Encryption_Nonce.bin",
                           64, &nlen);
    assert_int_equal(len, 415702);
    assert_int_equal(klen, 16);
    assert_int_equal(nlen, 12);
    assert_memory_equal(buf + 8, "\x02\x00\x0d\x00", 4);
    struct sfi_image *img = NULL;
    assert_int_equal(sfi_image_parse(ctx, buf, len, &img), SFI_OK);
    assert_int_equal(img->hdr.protocol, 2);
    assert_int_equal(img->n, 13);
    assert_int_equal(img->hdr.hashed, 1);
    assert_int_equal(img->version, 0);
    assert_int_equal(img->legacy, 0);
    assert_int_equal(sfi_image_check_header_tag(ctx, img->buf, key, nonce), SFI_OK);
    const char types[] = "HOOOOSSSSFFFC";
    uint8_t *plain = malloc(200000);
    assert_non_null(plain);
    for (size_t i = 0; i < img->n; i++) {
        const struct sfi_image_area *a = &img->area[i];
        assert_int_equal(a->type, types[i]);
        assert_int_equal(a->ver, 0);
        assert_true(a->has_hash);
        assert_int_equal(sfi_image_decrypt_area(ctx, a, img->buf + a->offset, key, nonce, plain),
                         SFI_OK);
    }
    /* the hashed layout read without the hash runs off the end or into a bad type */
    struct sfi_image_header h;
    assert_int_equal(sfi_image_parse_header(ctx, buf, len, &h), SFI_OK);
    size_t off = SFI_IMAGE_HDR_SIZE, n = 0;
    struct sfi_image_area a;
    h.hashed = 1;
    while (sfi_image_next_area(ctx, buf, len, &off, &h, &a) == SFI_OK)
        n++;
    assert_int_equal(n, 13);
    assert_int_equal(off, len);
    h.hashed = 0;
    off = SFI_IMAGE_HDR_SIZE;
    n = 0;
    while (n < 13 && sfi_image_next_area(ctx, buf, len, &off, &h, &a) == SFI_OK)
        n++;
    assert_true(n < 13 || off != len);
    sfi_image_free(img);
    /* an earlier sfirun's --ver 5: byte 9 held the version; refused, saying so */
    buf[9] = 5;
    assert_int_equal(sfi_image_parse(ctx, buf, len, &img), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "earlier sfirun"));
    free(plain);
    free(buf);
    free(key);
    free(nonce);
    sfi_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_file_areas),
        cmocka_unit_test(test_st_truncated_everywhere),
        cmocka_unit_test(test_inconsistent),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_st_h5_image),
    };
    return cmocka_run_group_tests(tests, load_st, free_st);
}
