/* test_hsm_stations.c: several stations on one token, each with its own licence guard, so that
 * nothing but the token orders their requests. The token is one SoftHSM2 instance shared by
 * threads (one session each, as a networked HSM's server shares one store among its clients;
 * SoftHSM2's file store shared by processes is not such a store, docs/hsm.md). Every thread
 * is a station of its own (its own guard directory) and asks licences until refused: no
 * counter value may be released twice, every released value has its tag on the token, and
 * only COUNTER or BUSY refuse. Skips (77) without SoftHSM2. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfi/hsm.h"
#include "sfi/license.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define STATIONS 8
#define REQUESTS 12
#define COUNTER 40

static char dir[64];
static uint8_t cert[SFI_CERT_SIZE];

struct station {
    int n;
    pthread_mutex_t *mu;
    int *released; /* per counter value: how many licences were released for it */
    int issued, withheld, busy, counter, other;
    char other_msg[256];
};

static void *run_station(void *arg)
{
    struct station *st = arg;
    struct sfi_ctx *ctx = NULL;
    struct sfi_hsm *h = NULL;
    char guard[96];
    snprintf(guard, sizeof guard, "%s/station-%d", dir, st->n);
    struct sfi_hsm_cfg cfg = {.module = MODULE, .token = "stations", .guard_dir = guard};
    if (sfi_ctx_new(&ctx) != SFI_OK)
        return NULL;
    sfi_log_set_level(ctx, getenv("STATIONS_DEBUG") ? SFI_LOG_DEBUG : SFI_LOG_ERROR);
    int rc = sfi_hsm_open(ctx, &cfg, &h);
    unsigned seed = (unsigned)st->n * 7919u + 1u;
    for (int i = 0; rc == SFI_OK && i < REQUESTS; i++) {
        /* a station asks between two installs: 10..70 ms apart here, seconds on a real line;
         * the closer, the more requests collide on one counter value */
        usleep(1000u * (10u + (unsigned)(rand_r(&seed) % 61)));
        uint8_t lic[SFI_LIC_SIZE];
        uint32_t after = 0;
        unsigned withheld = 0;
        int lrc = sfi_hsm_license(h, cert, NULL, lic, &after, &withheld);
        pthread_mutex_lock(st->mu);
        if (lrc == SFI_OK) {
            st->issued++;
            st->withheld += (int)withheld;
            if (after < COUNTER)
                st->released[after]++;
        } else if (lrc == SFI_E_BUSY) {
            st->busy++;
        } else if (lrc == SFI_E_COUNTER) {
            st->counter++;
        } else if (!st->other++) {
            snprintf(st->other_msg, sizeof st->other_msg, "%s: %s", sfi_errname(lrc),
                     sfi_errdetail(ctx));
        }
        pthread_mutex_unlock(st->mu);
    }
    if (rc != SFI_OK)
        snprintf(st->other_msg, sizeof st->other_msg, "open: %s", sfi_errdetail(ctx));
    st->other += rc != SFI_OK;
    sfi_hsm_close(h);
    sfi_ctx_free(ctx);
    return NULL;
}

static int setup_token(void)
{
    if (access(MODULE, R_OK) != 0 || system("command -v softhsm2-util >/dev/null") != 0)
        return -1;
    /* tmpfs when there is one: SoftHSM2 rewrites an object file per change */
    snprintf(dir, sizeof dir, "%s/sfi-stations-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/tokens && printf 'directories.tokendir = %s/tokens\\nobjectstore.backend"
             " = file\\nlog.level = ERROR\\n' > %s/softhsm2.conf",
             dir, dir, dir);
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", cmd, 1);
    setenv("SFI_HSM_PIN", "1234", 1);
    snprintf(cmd, sizeof cmd, "softhsm2-util --init-token --free --label stations "
                              "--so-pin 12345678 --pin 1234 >/dev/null");
    return system(cmd) == 0 ? 0 : -1;
}

static void test_stations(void **state)
{
    (void)state;
    if (setup_token() != 0) {
        fprintf(stderr, "SoftHSM2 is not installed: skipped\n");
        exit(77);
    }
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint8_t ca_priv[32], ca_pub[64], chip_priv[32], chip_pub[64], seed[32];
    for (int i = 0; i < 32; i++) {
        ca_priv[i] = (uint8_t)(i + 1);
        seed[i] = 0x5a;
    }
    assert_int_equal(sfi_ec_pub_from_priv(ctx, ca_priv, ca_pub), SFI_OK);
    assert_int_equal(sfi_chip_identity(ctx, (const uint8_t *)"chip", 4, seed, chip_priv, chip_pub),
                     SFI_OK);
    assert_int_equal(sfi_cert_make(ctx, ca_priv, "45002001", chip_pub, cert), SFI_OK);
    char guard0[96];
    snprintf(guard0, sizeof guard0, "%s/provisioner", dir);
    struct sfi_hsm_cfg cfg = {.module = MODULE, .token = "stations", .guard_dir = guard0};
    struct sfi_hsm *h = NULL;
    assert_int_equal(sfi_hsm_open(ctx, &cfg, &h), SFI_OK);
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0};
    struct sfi_hsm_prov p = {.key16 = key, .iv16 = iv, .fwid = "STATIONS", .max = COUNTER,
                             .ca_pub64 = ca_pub};
    assert_int_equal(sfi_hsm_provision(h, &p), SFI_OK);

    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int released[COUNTER] = {0};
    struct station st[STATIONS];
    pthread_t th[STATIONS];
    for (int i = 0; i < STATIONS; i++) {
        memset(&st[i], 0, sizeof st[i]);
        st[i].n = i;
        st[i].mu = &mu;
        st[i].released = released;
        assert_int_equal(pthread_create(&th[i], NULL, run_station, &st[i]), 0);
    }
    int issued = 0, withheld = 0, busy = 0, refused = 0, other = 0;
    for (int i = 0; i < STATIONS; i++) {
        pthread_join(th[i], NULL);
        issued += st[i].issued;
        withheld += st[i].withheld;
        busy += st[i].busy;
        refused += st[i].counter;
        if (st[i].other)
            fprintf(stderr, "station %d: %s\n", i, st[i].other_msg);
        other += st[i].other;
    }
    uint32_t left = 0;
    assert_int_equal(sfi_hsm_counter(h, &left), SFI_OK);
    struct sfi_hsm_tag *tags = NULL;
    size_t ntags = 0;
    assert_int_equal(sfi_hsm_tags(h, &tags, &ntags), SFI_OK);
    int twice = 0;
    for (int v = 0; v < COUNTER; v++) {
        twice += released[v] > 1;
        int at = 0;
        for (size_t k = 0; k < ntags; k++)
            at += tags[k].value == (uint32_t)v;
        /* more than one: stale stations that lost the value later; none above the window:
         * pruned */
        if (released[v] == 1 && at < 1 && (uint32_t)v < left + SFI_HSM_TAG_WINDOW)
            fail_msg("value %d was released without its tag on the token", v);
    }
    free(tags);
    printf("  %d stations x %d requests, counter %d: issued %d, decremented %u, withheld %d, "
           "values released twice %d, tags %zu, refused COUNTER %d, BUSY %d\n",
           STATIONS, REQUESTS, COUNTER, issued, (unsigned)(COUNTER - left), withheld, twice,
           ntags, refused, busy);
    assert_int_equal(other, 0);
    assert_int_equal(twice, 0);
    assert_true(issued > 0);
    assert_true((uint32_t)issued <= COUNTER - left);
    assert_true(issued + busy + refused == STATIONS * REQUESTS);
    sfi_hsm_close(h);
    sfi_ctx_free(ctx);
    snprintf(guard0, sizeof guard0, "rm -rf %s", dir);
    (void)!system(guard0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
