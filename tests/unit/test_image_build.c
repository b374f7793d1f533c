/* test_image_build.c: built images round-trip through the parser and GCM; every flipped byte
 * is caught (CRYPTO or FORMAT naming the area or header); a wrong key fails; the loaders and
 * the option-byte CSV reject bad input naming the line, record or row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sfi/bytes.h"
#include "sfi/image.h"

static const uint8_t KEY[16] = "0123456789abcdef";
static const uint8_t NONCE[12] = "nonce-12byte";

static int build(struct sfi_ctx *ctx, int protocol, int hash, uint32_t ram, uint8_t **out,
                 size_t *len)
{
    static uint8_t fwdata[700];
    for (size_t i = 0; i < sizeof fwdata; i++)
        fwdata[i] = (uint8_t)(i * 7 + 1);
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "a.bin", fwdata, 300, 0x08000000), SFI_OK);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "b.bin", fwdata + 300, 400, 0x08010000), SFI_OK);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_OK);
    static const uint8_t ob[36] = {1, 2, 3};
    struct sfi_flash_range flash = {0x08000000, 0x200000};
    struct sfi_image_build_cfg cfg = {
        .protocol = (uint8_t)protocol, .version = 7, .hash = hash, .ram_size = ram,
        .token = 0x081FF000, .has_token = 1, .key = KEY, .nonce = NONCE, .ob = ob,
        .ob_len = sizeof ob, .flash = &flash, .nflash = 1,
    };
    int rc = sfi_image_build(ctx, &cfg, &fw, out, len);
    sfi_fw_free(&fw);
    return rc;
}

static int check_all(struct sfi_ctx *ctx, const uint8_t *buf, size_t len)
{
    struct sfi_image *img;
    int rc = sfi_image_parse(ctx, buf, len, &img);
    if (rc)
        return rc;
    rc = sfi_image_check_header_tag(ctx, img->buf, KEY, NONCE);
    uint8_t *plain = malloc(len);
    for (size_t i = 0; rc == SFI_OK && i < img->n; i++)
        rc = sfi_image_decrypt_area(ctx, &img->area[i], img->buf + img->area[i].offset, KEY,
                                    NONCE, plain);
    free(plain);
    sfi_image_free(img);
    return rc;
}

static void flip_every_byte(int protocol, int hash, uint32_t ram)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(build(ctx, protocol, hash, ram, &buf, &len), SFI_OK);
    assert_int_equal(check_all(ctx, buf, len), SFI_OK);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        int rc = check_all(ctx, buf, len);
        const char *d = sfi_errdetail(ctx);
        if (rc != SFI_E_CRYPTO && rc != SFI_E_FORMAT)
            fail_msg("flip at %zu not detected (rc %d)", i, rc);
        if (!strstr(d, "area") && !strstr(d, "header") && !strstr(d, "magic") &&
            !strstr(d, "protocol"))
            fail_msg("flip at %zu: message names no area: %s", i, d);
        buf[i] ^= 0x01;
    }
    free(buf);
    sfi_ctx_free(ctx);
}

static void test_flip_p1(void **state) { flip_every_byte(1, 0, 0); }
static void test_flip_p2_hash_split(void **state) { flip_every_byte(2, 1, 400); }

static void test_split_and_wrong_key(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(build(ctx, 2, 0, 400, &buf, &len), SFI_OK);
    struct sfi_image *img;
    assert_int_equal(sfi_image_parse(ctx, buf, len, &img), SFI_OK);
    assert_int_equal(img->version, 7);
    assert_int_equal(img->hdr.hashed, 0);
    assert_int_equal(img->hdr.protocol, 2);
    assert_int_equal(sfi_get_le16(buf + 8), 2);            /* u16 protocol */
    assert_int_equal(sfi_get_le16(buf + 10), (int)img->n); /* u16 area count */
    for (size_t i = 0; i < img->n; i++)
        assert_int_equal(img->area[i].ver, 7); /* the image version in every descriptor */
    assert_true(img->n > 3);
    assert_int_equal(img->area[img->n - 1].type, 'C');
    int p = 0, r = 0;
    for (size_t i = 0; i < img->n; i++) {
        p += img->area[i].type == 'P';
        r += img->area[i].type == 'R';
        if (img->area[i].type == 'P')
            assert_int_equal(img->area[i + 1].type, 'R');
        assert_true(img->area[i].size <= 400);
    }
    assert_true(p > 0 && p == r);
    uint8_t bad[16];
    memcpy(bad, KEY, 16);
    bad[15] ^= 0x80;
    assert_int_equal(sfi_image_check_header_tag(ctx, img->buf, bad, NONCE), SFI_E_CRYPTO);
    uint8_t plain[400];
    assert_int_equal(sfi_image_decrypt_area(ctx, &img->area[0], img->buf + img->area[0].offset,
                                            bad, NONCE, plain), SFI_E_CRYPTO);
    assert_non_null(strstr(sfi_errdetail(ctx), "area 1"));
    sfi_image_free(img);
    free(buf);
    sfi_ctx_free(ctx);
}

static void test_builder_errors(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint8_t d[64] = {0};
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_E_FORMAT); /* empty */
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "a.bin", d, 64, 0x08000000), SFI_OK);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "b.bin", d, 64, 0x08000020), SFI_OK);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "a.bin segment 1"));
    assert_non_null(strstr(sfi_errdetail(ctx), "b.bin segment 1"));
    sfi_fw_free(&fw);
    sfi_fw_init(&fw);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "c.bin", d, 64, 0x30000000), SFI_OK);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_OK);
    struct sfi_flash_range flash = {0x08000000, 0x200000};
    struct sfi_image_build_cfg cfg = {.protocol = 1, .key = KEY, .nonce = NONCE,
                                      .flash = &flash, .nflash = 1};
    uint8_t *out;
    size_t len;
    assert_int_equal(sfi_image_build(ctx, &cfg, &fw, &out, &len), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "c.bin segment 1"));
    assert_non_null(strstr(sfi_errdetail(ctx), "outside flash"));
    sfi_fw_free(&fw);
    sfi_ctx_free(ctx);
}

static void test_loaders(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    const char *hex = ":020000040800F2\n:0400000001020304F2\n:00000001FF\n";
    assert_int_equal(sfi_fw_load_ihex(ctx, &fw, "x.hex", (const uint8_t *)hex, strlen(hex)),
                     SFI_OK);
    assert_int_equal(fw.n, 1);
    assert_int_equal(fw.seg[0].addr, 0x08000000);
    assert_int_equal(fw.seg[0].len, 4);
    const char *badsum = ":020000040800F2\n:0400000001020304F3\n:00000001FF\n";
    assert_int_equal(sfi_fw_load_ihex(ctx, &fw, "y.hex", (const uint8_t *)badsum,
                                      strlen(badsum)), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "y.hex:2: checksum"));
    assert_int_equal(fw.n, 1); /* the failed file added nothing */
    const char *srec = "S00600004844521B\nS1070000AABBCCDDEA\nS9030000FC\n";
    assert_int_equal(sfi_fw_load_srec(ctx, &fw, "z.srec", (const uint8_t *)srec,
                                      strlen(srec)), SFI_OK);
    assert_int_equal(fw.n, 2);
    const char *badsrec = "S1070000AABBCCDDEB\n";
    assert_int_equal(sfi_fw_load_srec(ctx, &fw, "w.srec", (const uint8_t *)badsrec,
                                      strlen(badsrec)), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "w.srec:1"));
    uint8_t elf[52] = {0x7f, 'E', 'L', 'F', 1, 1};
    assert_int_equal(sfi_fw_load_elf(ctx, &fw, "e.elf", elf, sizeof elf), SFI_E_FORMAT);
    sfi_fw_free(&fw);
    const char *csv = "FOPTSR_PRG,0x1026AAD0\nFPRAR_PRG_A,0x81000200\nFPRAR_PRG_B,0x81000200\n"
                      "FSCAR_PRG_A,0x81000200\nFSCAR_PRG_B,0x81000200\nFWPSN_PRG_A,0xFFFFFFFF\n"
                      "FWPSN_PRG_B,0xFFFFFFFF\nFBOOT7_PRG,0x24000800\nRESERVED,0x10000810\n";
    static const char *const h7[] = {"FOPTSR_PRG",  "FPRAR_PRG_A", "FPRAR_PRG_B",
                                      "FSCAR_PRG_A", "FSCAR_PRG_B", "FWPSN_PRG_A",
                                      "FWPSN_PRG_B", "FBOOT7_PRG",  "RESERVED"};
    uint8_t ob[36];
    assert_int_equal(sfi_obcsv_parse(ctx, "ob.csv", (const uint8_t *)csv, strlen(csv), h7, 9,
                                     ob), SFI_OK);
    assert_int_equal(ob[0], 0xD0);
    assert_int_equal(ob[3], 0x10);
    assert_int_equal(ob[35], 0x10);
    assert_int_equal(sfi_obcsv_parse(ctx, "ob.csv", (const uint8_t *)csv, 40, h7, 9, ob),
                     SFI_E_FORMAT);
    /* a NUL inside a value is an error at its line and column, never a shorter value */
    char nul[256];
    size_t nl = strlen(csv);
    memcpy(nul, csv, nl);
    nul[17] = '\0'; /* FOPTSR_PRG,0x1026<NUL>AD0 */
    assert_int_equal(sfi_obcsv_parse(ctx, "ob.csv", (const uint8_t *)nul, nl, h7, 9, ob),
                     SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "ob.csv:1:18: byte 0x00"));
    assert_int_equal(sfi_obcsv_parse(ctx, "ob.csv", (const uint8_t *)csv, strlen(csv), NULL, 0,
                                     ob), SFI_E_INVALID);
    sfi_ctx_free(ctx);
}

/* Raw binaries joined with HEX data on both sides: the merged bytes are right, the image
 * decrypts to them, and the callers' buffers are never written. */
static void test_join_raw_and_hex(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint8_t a[60], b[64], a0[60], b0[64];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = a0[i] = (uint8_t)(0x40 + i);
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = b0[i] = (uint8_t)(0x90 + i);
    const char *hex = ":020000040800F2\n:0400000001020304F2\n:00000001FF\n";
    const char *tail = ":020000040800F2\n:04008000A1A2A3A4F2\n:00000001FF\n";
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "b.bin", b, sizeof b, 0x08000040), SFI_OK);
    assert_int_equal(sfi_fw_load_ihex(ctx, &fw, "t.hex", (const uint8_t *)tail, strlen(tail)),
                     SFI_OK);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "big.bin", b, sizeof b, 0xFFFFFFF0u),
                     SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "big.bin"));
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "a.bin", a, sizeof a, 0x08000004), SFI_OK);
    assert_int_equal(sfi_fw_load_ihex(ctx, &fw, "h.hex", (const uint8_t *)hex, strlen(hex)),
                     SFI_OK);
    assert_int_equal(fw.n, 4);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_OK);
    assert_int_equal(fw.n, 1);
    assert_int_equal(fw.seg[0].addr, 0x08000000);
    assert_int_equal(fw.seg[0].len, 4 + 60 + 64 + 4);
    uint8_t want[132] = {1, 2, 3, 4};
    memcpy(want + 4, a0, sizeof a0);
    memcpy(want + 64, b0, sizeof b0);
    memcpy(want + 128, "\xA1\xA2\xA3\xA4", 4);
    assert_memory_equal(fw.seg[0].data, want, sizeof want);
    struct sfi_image_build_cfg cfg = {.protocol = 2, .hash = 1, .key = KEY, .nonce = NONCE};
    uint8_t *out;
    size_t len;
    assert_int_equal(sfi_image_build(ctx, &cfg, &fw, &out, &len), SFI_OK);
    sfi_fw_free(&fw);
    struct sfi_image *img;
    assert_int_equal(sfi_image_parse(ctx, out, len, &img), SFI_OK);
    assert_int_equal(img->n, 1);
    assert_int_equal(img->area[0].size, 144); /* 132 bytes, 0xFF-filled to a multiple of 16 */
    uint8_t plain[144];
    assert_int_equal(sfi_image_decrypt_area(ctx, &img->area[0], img->buf + img->area[0].offset,
                                            KEY, NONCE, plain), SFI_OK);
    assert_memory_equal(plain, want, sizeof want);
    for (size_t i = sizeof want; i < sizeof plain; i++)
        assert_int_equal(plain[i], 0xFF);
    assert_memory_equal(a, a0, sizeof a);
    assert_memory_equal(b, b0, sizeof b);
    sfi_image_free(img);
    free(out);
    sfi_ctx_free(ctx);
}

/* The builder reads raw binaries in place: it must leave them as they were. */
static void test_input_untouched(void **state)
{
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    enum { N = 5000 };
    uint8_t *d = malloc(N), *d0 = malloc(N);
    for (size_t i = 0; i < N; i++)
        d[i] = d0[i] = (uint8_t)(i * 13 + 5);
    static const uint8_t ob[36] = {7};
    struct sfi_image_build_cfg cfg = {.protocol = 2, .hash = 1, .ram_size = 1200,
                                      .token = 0x08100000, .has_token = 1, .key = KEY,
                                      .nonce = NONCE, .ob = ob, .ob_len = sizeof ob};
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    assert_int_equal(sfi_fw_load_bin(ctx, &fw, "d.bin", d, N, 0x08000000), SFI_OK);
    assert_int_equal(sfi_fw_merge(ctx, &fw), SFI_OK);
    uint8_t *out;
    size_t len;
    assert_int_equal(sfi_image_build(ctx, &cfg, &fw, &out, &len), SFI_OK);
    sfi_fw_free(&fw);
    assert_memory_equal(d, d0, N);
    struct sfi_image *img;
    assert_int_equal(sfi_image_parse(ctx, out, len, &img), SFI_OK);
    uint8_t *plain = malloc(N + 16);
    size_t got = 0;
    for (size_t i = 0; i < img->n; i++) {
        const struct sfi_image_area *ar = &img->area[i];
        assert_int_equal(sfi_image_decrypt_area(ctx, ar, img->buf + ar->offset, KEY, NONCE,
                                                plain), SFI_OK);
        if (ar->type == 'F') {
            assert_int_equal(ar->addr, 0x08000000 + got);
            size_t data = ar->size < N - got ? ar->size : N - got;
            assert_memory_equal(plain, d0 + got, data);
            for (size_t k = data; k < ar->size; k++) /* the last area's 0xFF fill */
                assert_int_equal(plain[k], 0xFF);
            assert_int_equal(ar->size % 16, 0);
            got += data;
        }
    }
    assert_int_equal(got, N);
    assert_true(img->n > 4);
    free(plain);
    sfi_image_free(img);
    free(out);
    free(d);
    free(d0);
    sfi_ctx_free(ctx);
}

/* sfi_image_build_file, the whole `image build`: every error exit names what failed and leaves
 * no file behind; the success writes exactly the image sfi_image_build makes. */
static void test_build_file(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    char dir[] = "/tmp/sfi-build-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.sfi", dir);
    static const uint8_t fwdata[256] = {1, 2, 3};
    struct sfi_image_input in[2] = {
        {.name = "a.bin", .data = fwdata, .len = 128, .has_addr = 1, .addr = 0x08000000},
        {.name = "b.bin", .data = fwdata, .len = 128, .has_addr = 1, .addr = 0x08000040},
    };
    struct sfi_flash_range flash = {0x08000000, 0x200000};
    struct sfi_image_build_cfg cfg = {.protocol = 2, .key = KEY, .nonce = NONCE,
                                      .flash = &flash, .nflash = 1};
    size_t len = 0;
    unsigned areas = 0;
    struct stat st;
    /* missing arguments */
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 1, NULL, &len, &areas), SFI_E_INVALID);
    assert_int_equal(sfi_image_build_file(ctx, &cfg, NULL, 1, path, &len, &areas),
                     SFI_E_INVALID);
    /* a loader error: a raw binary without its address */
    struct sfi_image_input noaddr = {.name = "c.bin", .data = fwdata, .len = 16};
    assert_int_not_equal(sfi_image_build_file(ctx, &cfg, &noaddr, 1, path, &len, &areas),
                         SFI_OK);
    assert_non_null(strstr(sfi_errdetail(ctx), "c.bin"));
    assert_int_equal(stat(path, &st), -1);
    /* a merge error: overlapping inputs */
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 2, path, &len, &areas), SFI_E_FORMAT);
    assert_int_equal(stat(path, &st), -1);
    /* a build error: no such protocol, no firmware */
    cfg.protocol = 3;
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 1, path, &len, &areas), SFI_E_USAGE);
    assert_non_null(strstr(sfi_errdetail(ctx), "protocol 3"));
    cfg.protocol = 2;
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 0, path, &len, &areas), SFI_E_FORMAT);
    assert_int_equal(stat(path, &st), -1);
    /* a write error: the directory does not exist */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/none/out.sfi", dir);
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 1, bad, &len, &areas), SFI_E_IO);
    /* success: the file is the image, its size and area count reported */
    assert_int_equal(sfi_image_build_file(ctx, &cfg, in, 1, path, &len, &areas), SFI_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, len);
    assert_int_equal(areas, 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(len);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    assert_int_equal(check_all(ctx, buf, len), SFI_OK);
    free(buf);
    unlink(path);
    rmdir(dir);
    sfi_ctx_free(ctx);
}

/* The digest and the benchmark reference the sfi.core module hands to Lua. */
static void test_sha256_and_floor(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    char hex[65];
    assert_int_equal(sfi_sha256_hex(ctx, "abc", 3, hex), SFI_OK); /* FIPS 180-2 example */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    double ms = -1;
    assert_int_equal(sfi_image_gcm_floor_ms(ctx, 8, &ms), SFI_E_INVALID);
    assert_int_equal(sfi_image_gcm_floor_ms(ctx, 1u << 16, &ms), SFI_OK);
    assert_true(ms >= 0 && ms < 1000);
    sfi_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip_p1),
        cmocka_unit_test(test_flip_p2_hash_split),
        cmocka_unit_test(test_split_and_wrong_key),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_loaders),
        cmocka_unit_test(test_join_raw_and_hex),
        cmocka_unit_test(test_input_untouched),
        cmocka_unit_test(test_build_file),
        cmocka_unit_test(test_sha256_and_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
