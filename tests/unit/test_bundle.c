/* test_bundle.c: the bundle codec: manifest grammar, create/open round trip (tar.gz and zip,
 * Ed25519 and P-256), reproducible output, tampered members, wrong keys, hostile archives and
 * a compression bomb stopped by the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundle/bundle_int.h"

static struct sfi_ctx *ctx;
static char priv_ed[1024], pub_ed[1024], priv_ec[1024], pub_ec[1024], pub_other[1024];

static void pem_pair(const char *type, const char *arg, char *priv, char *pub)
{
    EVP_PKEY *k = arg ? EVP_PKEY_Q_keygen(NULL, NULL, type, arg) : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(k);
    BIO *b = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
    int n = BIO_read(b, priv, 1023);
    priv[n > 0 ? n : 0] = 0;
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_PUBKEY(b, k));
    n = BIO_read(b, pub, 1023);
    pub[n > 0 ? n : 0] = 0;
    BIO_free(b);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    if (sfi_ctx_new(&ctx) != SFI_OK)
        return -1;
    sfi_log_set_level(ctx, SFI_LOG_ERROR);
    char scratch[1024];
    pem_pair("ED25519", NULL, priv_ed, pub_ed);
    pem_pair("EC", "P-256", priv_ec, pub_ec);
    pem_pair("ED25519", NULL, scratch, pub_other);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sfi_ctx_free(ctx);
    return 0;
}

static const char RECIPE[] = "return 1\n";
static const char LIB[] = "return {}\n";

static void make(enum sfi_archive_format fmt, const char *key, const char *lo, const char *hi,
                 unsigned char **out, size_t *len)
{
    struct sfi_bundle_input files[] = {
        {"scripts/acme/util.lua", LIB, sizeof LIB - 1},
        {"recipes/demo.lua", RECIPE, sizeof RECIPE - 1},
    };
    const char *permits[] = {"read:image"};
    struct sfi_bundle_spec s = {.name = "demo", .version = "1.2", .min_sfirun = lo,
                                .max_sfirun = hi, .entry = "recipes/demo.lua",
                                .permits = permits, .npermits = 1, .files = files, .nfiles = 2,
                                .key_pem = key, .key_len = strlen(key), .format = fmt};
    int rc = sfi_bundle_create(ctx, &s, out, len);
    if (rc != SFI_OK)
        fail_msg("create: %s", sfi_errdetail(ctx));
}

static int open_with(const unsigned char *d, size_t n, const char *trust, struct sfi_bundle **b)
{
    return sfi_bundle_open(ctx, d, n, trust, strlen(trust), NULL, b);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *keys[][2] = {{priv_ed, pub_ed}, {priv_ec, pub_ec}};
    for (int fmt = 0; fmt < 2; fmt++)
        for (int k = 0; k < 2; k++) {
            unsigned char *a;
            size_t n;
            make((enum sfi_archive_format)fmt, keys[k][0], "0.1", "0.2", &a, &n);
            struct sfi_bundle *b = NULL;
            int rc = open_with(a, n, keys[k][1], &b);
            if (rc != SFI_OK)
                fail_msg("open: %s", sfi_errdetail(ctx));
            const struct sfi_bundle_manifest *m = sfi_bundle_get_manifest(b);
            assert_string_equal(m->name, "demo");
            assert_string_equal(m->version, "1.2");
            assert_string_equal(m->entry, "recipes/demo.lua");
            assert_int_equal(m->nfiles, 2);
            assert_string_equal(m->files[0].path, "recipes/demo.lua");
            assert_int_equal(m->npermits, 1);
            assert_string_equal(m->permits[0].param, "image");
            assert_string_equal(sfi_bundle_format(b), fmt ? "zip" : "tar.gz");
            const void *d;
            size_t dl;
            assert_int_equal(sfi_bundle_member(b, "recipes/demo.lua", &d, &dl), SFI_OK);
            assert_int_equal(dl, sizeof RECIPE - 1);
            assert_memory_equal(d, RECIPE, dl);
            assert_int_equal(sfi_bundle_member(b, "nope.lua", &d, &dl), SFI_E_NOT_FOUND);
            char fp[65];
            assert_int_equal(sfi_bundle_fingerprint(ctx, keys[k][1], strlen(keys[k][1]), fp), 0);
            assert_string_equal(sfi_bundle_signer(b), fp);
            sfi_bundle_free(b);
            free(a);
        }
}

static void test_reproducible(void **state)
{
    (void)state;
    unsigned char *a, *b;
    size_t an, bn;
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.1", "0.2", &a, &an);
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.1", "0.2", &b, &bn);
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an);
    free(a);
    free(b);
}

static void test_wrong_key_and_version(void **state)
{
    (void)state;
    unsigned char *a;
    size_t n;
    struct sfi_bundle *b = NULL;
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.1", "0.2", &a, &n);
    assert_int_equal(open_with(a, n, pub_other, &b), SFI_E_AUTH);
    assert_non_null(strstr(sfi_errdetail(ctx), "not by the trusted key"));
    assert_null(b);
    assert_int_equal(open_with(a, n, "garbage", &b), SFI_E_FORMAT);
    free(a);
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.2", "0.3", &a, &n);
    assert_int_equal(open_with(a, n, pub_ed, &b), SFI_E_UNSUPPORTED);
    assert_non_null(strstr(sfi_errdetail(ctx), "needs sfirun >=0.2 <0.3"));
    free(a);
}

/* Rebuilds a verified bundle's members through the raw writer with one change. */
static int rebuild(const unsigned char *orig, size_t on, struct sfi_archive_entry *extra,
                   const char *flip, enum sfi_archive_format fmt, const char *skip)
{
    struct sfi_member *m;
    size_t n;
    const char *f;
    assert_int_equal(sfi_archive_read(ctx, orig, on, NULL, &m, &n, &f), SFI_OK);
    struct sfi_archive_entry e[16];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(m[i].path, skip) == 0)
            continue;
        if (flip && strcmp(m[i].path, flip) == 0)
            m[i].data[m[i].size / 2] ^= 1;
        e[k++] = (struct sfi_archive_entry){.path = m[i].path, .data = m[i].data,
                                            .size = m[i].size};
    }
    if (extra)
        e[k++] = *extra;
    unsigned char *out;
    size_t outn;
    assert_int_equal(sfi_archive_write(ctx, e, k, fmt, &out, &outn), SFI_OK);
    sfi_members_free(m, n);
    struct sfi_bundle *b = NULL;
    int rc = open_with(out, outn, pub_ed, &b);
    sfi_bundle_free(b);
    free(out);
    return rc;
}

static void test_tampered(void **state)
{
    (void)state;
    unsigned char *a;
    size_t n;
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.1", "0.2", &a, &n);
    const char *members[] = {"recipes/demo.lua", "scripts/acme/util.lua"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rebuild(a, n, NULL, members[i], SFI_ARCHIVE_ZIP, NULL), SFI_E_AUTH);
        assert_non_null(strstr(sfi_errdetail(ctx), members[i]));
    }
    assert_int_equal(rebuild(a, n, NULL, "manifest", SFI_ARCHIVE_TGZ, NULL), SFI_E_AUTH);
    assert_int_equal(rebuild(a, n, NULL, "manifest.sig", SFI_ARCHIVE_TGZ, NULL), SFI_E_AUTH);
    assert_int_equal(rebuild(a, n, NULL, NULL, SFI_ARCHIVE_TGZ, "manifest.sig"), SFI_E_AUTH);
    assert_int_equal(rebuild(a, n, NULL, NULL, SFI_ARCHIVE_TGZ, "recipes/demo.lua"), SFI_E_AUTH);
    assert_non_null(strstr(sfi_errdetail(ctx), "'recipes/demo.lua' is listed"));
    struct sfi_archive_entry extra = {.path = "evil.lua", .data = "x", .size = 1};
    assert_int_equal(rebuild(a, n, &extra, NULL, SFI_ARCHIVE_TAR, NULL), SFI_E_AUTH);
    assert_non_null(strstr(sfi_errdetail(ctx), "'evil.lua' is not listed"));
    free(a);
}

static void test_hostile(void **state)
{
    (void)state;
    unsigned char *a;
    size_t n;
    make(SFI_ARCHIVE_TGZ, priv_ed, "0.1", "0.2", &a, &n);
    struct sfi_archive_entry bad[] = {
        {.path = "../evil.lua", .data = "x", .size = 1},
        {.path = "recipes/../../evil.lua", .data = "x", .size = 1},
        {.path = "/etc/evil.lua", .data = "x", .size = 1},
        {.path = "recipes\\evil.lua", .data = "x", .size = 1},
        {.path = "link.lua", .kind = SFI_AK_SYMLINK, .link = "/etc/passwd"},
        {.path = "hard.lua", .kind = SFI_AK_HARDLINK, .link = "recipes/demo.lua"},
        {.path = "dev", .kind = SFI_AK_CHARDEV},
        {.path = "fifo", .kind = SFI_AK_FIFO},
        {.path = "dir", .kind = SFI_AK_DIR},
        {.path = "recipes/demo.lua", .data = "x", .size = 1},
    };
    for (int fmt = 0; fmt < 3; fmt++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (fmt == SFI_ARCHIVE_ZIP && (bad[i].kind == SFI_AK_CHARDEV ||
                                           bad[i].kind == SFI_AK_FIFO ||
                                           bad[i].kind == SFI_AK_HARDLINK))
                continue; /* zip cannot carry these */
            int rc = rebuild(a, n, &bad[i], NULL, (enum sfi_archive_format)fmt, NULL);
            /* libarchive's zip reader turns '\\' into '/': then the name is unlisted */
            int want = fmt == SFI_ARCHIVE_ZIP && strchr(bad[i].path, '\\') ? SFI_E_AUTH
                                                                           : SFI_E_FORMAT;
            if (rc != want)
                fail_msg("format %d entry %s: rc %d (%s)", fmt, bad[i].path, rc,
                         sfi_errdetail(ctx));
        }
    free(a);
}

static void test_bomb(void **state)
{
    (void)state;
    struct sfi_archive_entry e = {.path = "zeros.bin", .data = NULL, .size = 200u << 20};
    unsigned char *a;
    size_t n;
    assert_int_equal(sfi_archive_write(ctx, &e, 1, SFI_ARCHIVE_TGZ, &a, &n), SFI_OK);
    assert_true(n < (1u << 20));
    uint64_t t0 = sfi_now_ms();
    struct sfi_bundle *b = NULL;
    assert_int_equal(open_with(a, n, pub_ed, &b), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "larger than the limit"));
    assert_true(sfi_now_ms() - t0 < 5000);
    struct sfi_bundle_limits lim = {.max_member = 1 << 20, .max_total = 1 << 20};
    struct sfi_member *m;
    size_t mn;
    const char *f;
    assert_int_equal(sfi_archive_read(ctx, a, n, &lim, &m, &mn, &f), SFI_E_FORMAT);
    free(a);
}

static void test_manifest_grammar(void **state)
{
    (void)state;
    static const char good[] = "sfirun-bundle 1\nname demo\nversion 1\nsfirun >=0.1 <0.2\n"
                               "entry a.lua\npermit read:image\nfile "
                               "0000000000000000000000000000000000000000000000000000000000000000"
                               " 3 a.lua\n";
    struct sfi_bundle_manifest *m = NULL;
    assert_int_equal(sfi_bundle_manifest_parse(ctx, good, sizeof good - 1, &m), SFI_OK);
    assert_int_equal(m->files[0].size, 3);
    sfi_bundle_manifest_free(m);
    const char *bad[] = {
        "sfirun-bundle 2\n", "sfirun-bundle 1\nname de mo\n",
        "sfirun-bundle 1\nname demo\nversion 1\nsfirun >=0.2 <0.1\n",
        "sfirun-bundle 1\nname demo\nversion 1\nsfirun >=0.1 <0.2\nentry a.lua\n",
        "sfirun-bundle 1\r\n", "sfirun-bundle 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = NULL;
        assert_int_equal(sfi_bundle_manifest_parse(ctx, bad[i], strlen(bad[i]), &m),
                         SFI_E_FORMAT);
        assert_null(m);
    }
    /* unsorted / duplicate file lines, entry not listed, path with .. */
    char buf[1024];
    const char *z = "0000000000000000000000000000000000000000000000000000000000000000";
    char t0[256], t1[256];
    snprintf(t0, sizeof t0, " 3 b.lua\nfile %s 3 a.lua\n", z);
    snprintf(t1, sizeof t1, " 3 a.lua\nfile %s 3 a.lua\n", z);
    const char *tails[] = {t0, t1, " 3 c.lua\n", " 3 ../a.lua\n"};
    for (size_t i = 0; i < 4; i++) {
        const char *tail = tails[i];
        snprintf(buf, sizeof buf, "sfirun-bundle 1\nname d\nversion 1\nsfirun >=0.1 <0.2\n"
                                  "entry a.lua\nfile %s%s", z, tail);
        assert_int_equal(sfi_bundle_manifest_parse(ctx, buf, strlen(buf), &m), SFI_E_FORMAT);
    }
    assert_true(sfi_bundle_path_ok("scripts/acme/x.lua"));
    assert_false(sfi_bundle_path_ok("a//b"));
    assert_false(sfi_bundle_path_ok("./a"));
    assert_false(sfi_bundle_path_ok("a/"));
    assert_true(sfi_bundle_vercmp("0.10", "0.9") > 0);
    assert_true(sfi_bundle_vercmp("0.1.0", "0.1") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_grammar), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reproducible),     cmocka_unit_test(test_wrong_key_and_version),
        cmocka_unit_test(test_tampered),         cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_bomb),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
