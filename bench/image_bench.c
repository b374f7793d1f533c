/* image_bench.c: builds an SFI image from 2 MiB of firmware (load + merge + build) and
 * compares its throughput with raw AES-128-GCM over the same bytes (OpenSSL, same run; goal:
 * ratio >= 0.5), then reports the build's own peak memory: RSS high-water growth over the
 * process's RSS just before the firmware is loaded (goal <= 3x the firmware size). */
#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sfi/image.h"

#define FW_SIZE (2u << 20)
/* the token must not lie inside the firmware: leave the last 64 KiB free */
#define FW_LEN (FW_SIZE - 0x10000u)
#define RUN_NS 300000000ull /* each timed run repeats its work for about 0.3 s */
#define RUNS 7              /* best of */

static const uint8_t KEY[16] = "0123456789abcdef", NONCE[12] = "abcdefghijkl";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct job {
    int (*fn)(struct job *j);
    const uint8_t *in;
    uint8_t *out;
    int hash;
    struct sfi_ctx *ctx;
    EVP_CIPHER_CTX *gcm;
    EVP_MD_CTX *sha;
    const EVP_MD *md;
    double best; /* MB/s */
};

/* The reference: one AES-128-GCM message over the firmware, cipher fetched once. */
static int raw_gcm(struct job *j)
{
    uint8_t tag[16];
    int n;
    if (EVP_EncryptInit_ex(j->gcm, NULL, NULL, KEY, NONCE) != 1 ||
        EVP_EncryptUpdate(j->gcm, j->out, &n, j->in, (int)FW_LEN) != 1 ||
        EVP_EncryptFinal_ex(j->gcm, j->out + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(j->gcm, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return 1;
    return 0;
}

/* The bound for hash=on: SHA-256 over the same bytes (the hash is AAD, so it precedes GCM). */
static int raw_sha(struct job *j)
{
    uint8_t md[32];
    return EVP_DigestInit_ex2(j->sha, j->md, NULL) != 1 ||
           EVP_DigestUpdate(j->sha, j->in, FW_LEN) != 1 ||
           EVP_DigestFinal_ex(j->sha, md, NULL) != 1;
}

/* What a user runs: protocol 2, split at 0x1E000, the raw binary loaded from memory. */
static int build(struct job *j)
{
    struct sfi_flash_range flash = {0x08000000, 0x200000};
    struct sfi_image_build_cfg cfg = {.protocol = 2, .hash = j->hash, .ram_size = 0x1E000,
                                      .token = 0x081FF000, .has_token = 1, .key = KEY,
                                      .nonce = NONCE, .flash = &flash, .nflash = 1};
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    uint8_t *img = NULL;
    size_t len;
    int rc = sfi_fw_load_bin(j->ctx, &fw, "bench.bin", j->in, FW_LEN, 0x08000000);
    if (rc == SFI_OK)
        rc = sfi_fw_merge(j->ctx, &fw);
    if (rc == SFI_OK)
        rc = sfi_image_build(j->ctx, &cfg, &fw, &img, &len);
    if (rc)
        fprintf(stderr, "build failed: %s\n", sfi_errdetail(j->ctx));
    free(img);
    sfi_fw_free(&fw);
    return rc != SFI_OK;
}

/* One timed run: repeat for about RUN_NS; keeps the best throughput seen. */
static int timed(struct job *j)
{
    uint64_t t0 = now_ns(), t;
    unsigned iters = 0;
    do {
        if (j->fn(j))
            return 1;
        iters++;
        t = now_ns() - t0;
    } while (t < RUN_NS);
    double mbps = (double)FW_LEN * iters / (1 << 20) / ((double)t / 1e9);
    if (mbps > j->best)
        j->best = mbps;
    return 0;
}

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* In a fresh child: RSS before loading (the firmware bytes, as read from a file, and one small
 * warm-up build so library code is paged in), reset the high-water mark, build once, read it. */
static int peak(int hash)
{
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        struct job j = {.fn = build, .hash = hash};
        uint8_t *fw = malloc(FW_SIZE);
        if (!fw || sfi_ctx_new(&j.ctx))
            _exit(1);
        for (size_t i = 0; i < FW_SIZE; i++)
            fw[i] = (uint8_t)(i * 2654435761u >> 24);
        j.in = fw;
        struct sfi_fw w;
        struct sfi_image_build_cfg cfg = {.protocol = 2, .hash = hash, .key = KEY,
                                          .nonce = NONCE};
        uint8_t *img;
        size_t len;
        sfi_fw_init(&w);
        if (sfi_fw_load_bin(j.ctx, &w, "warm.bin", fw, 4096, 0x08000000) ||
            sfi_fw_merge(j.ctx, &w) || sfi_image_build(j.ctx, &cfg, &w, &img, &len))
            _exit(1);
        free(img);
        sfi_fw_free(&w);
        long base = status_kib("VmRSS");
        FILE *f = fopen("/proc/self/clear_refs", "w");
        if (!f || fputs("5", f) < 0 || fclose(f) != 0)
            _exit(2); /* cannot reset the high-water mark: no honest figure */
        if (build(&j))
            _exit(1);
        long hwm = status_kib("VmHWM");
        double grow = (double)(hwm - base) * 1024;
        printf("%+5.1f MiB  %.2fx firmware (goal <= 3x; baseline RSS %.1f MiB)\n",
               grow / (1 << 20), grow / FW_LEN, (double)base / 1024);
        fflush(stdout);
        _exit(0);
    }
    int st;
    return waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

int main(void)
{
    uint8_t *in = malloc(FW_SIZE), *out = malloc(FW_SIZE + 16);
    struct sfi_ctx *ctx;
    EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    EVP_CIPHER_CTX *gcm = EVP_CIPHER_CTX_new();
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!in || !out || !aes || !gcm || !md || !sha || sfi_ctx_new(&ctx) ||
        EVP_EncryptInit_ex(gcm, aes, NULL, NULL, NULL) != 1)
        return 1;
    for (size_t i = 0; i < FW_SIZE; i++)
        in[i] = (uint8_t)(i * 2654435761u >> 24);
    struct job ref = {.fn = raw_gcm, .in = in, .out = out, .gcm = gcm};
    struct job hsh = {.fn = raw_sha, .in = in, .sha = sha, .md = md};
    struct job off = {.fn = build, .in = in, .ctx = ctx, .hash = 0};
    struct job on = {.fn = build, .in = in, .ctx = ctx, .hash = 1};
    /* interleaved, so that a slow phase of the machine hits all three alike */
    for (int r = 0; r < RUNS; r++)
        if (timed(&ref) || timed(&hsh) || timed(&off) || timed(&on))
            return 1;
    printf("raw AES-128-GCM (OpenSSL, same run)  %5.0f MB/s  (best of %d runs of ~%.1f s, "
           "%u KiB message)\n", ref.best, RUNS, RUN_NS / 1e9, FW_LEN >> 10);
    printf("image.build hash=off  %5.0f MB/s  ratio %.2f (goal >= 0.5)\n", off.best,
           off.best / ref.best);
    printf("image.build hash=on   %5.0f MB/s  ratio %.2f (goal >= 0.5)\n", on.best,
           on.best / ref.best);
    /* one pass of SHA-256 then one of GCM over every byte: time adds up */
    double bound = 1.0 / (1.0 / ref.best + 1.0 / hsh.best);
    printf("  hash=on bound: raw SHA-256 %.0f MB/s, SHA-256 then GCM %.0f MB/s = ratio %.2f\n",
           hsh.best, bound, bound / ref.best);
    fflush(stdout);
    for (int hash = 0; hash <= 1; hash++) {
        printf("image.build peak hash=%-3s ", hash ? "on" : "off");
        fflush(stdout);
        if (peak(hash))
            printf("not measured (no /proc/self/clear_refs)\n");
    }
    printf("  (peak = RSS high-water growth from just before loading the %u KiB firmware to "
           "the end of the build, over the firmware bytes already in memory; "
           "x = growth / firmware size)\n", FW_LEN >> 10);
    EVP_MD_CTX_free(sha);
    EVP_MD_free(md);
    EVP_CIPHER_CTX_free(gcm);
    EVP_CIPHER_free(aes);
    sfi_ctx_free(ctx);
    free(in);
    free(out);
    return 0;
}
