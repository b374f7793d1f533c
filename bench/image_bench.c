/* image_bench.c: builds an SFI image from 2 MiB of firmware and compares its throughput with
 * raw AES-128-GCM over the same bytes measured with OpenSSL in the same run (goal: ratio
 * >= 0.5), and reports peak memory (ru_maxrss; goal <= 3x the firmware size). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "sfi/image.h"

#define FW_SIZE (2u << 20)
#define ROUNDS 20

static double raw_gcm_mbps(const uint8_t *in, uint8_t *out)
{
    static const uint8_t key[16], iv[12];
    uint8_t tag[16];
    int n;
    uint64_t t0 = sfi_now_ms();
    for (int r = 0; r < ROUNDS; r++) {
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv);
        EVP_EncryptUpdate(c, out, &n, in, (int)FW_SIZE);
        EVP_EncryptFinal_ex(c, out + n, &n);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
        EVP_CIPHER_CTX_free(c);
    }
    double s = (double)(sfi_now_ms() - t0) / 1000.0;
    return (double)FW_SIZE * ROUNDS / (1 << 20) / (s > 0 ? s : 1e-3);
}

static int run(int hash)
{
    struct sfi_ctx *ctx;
    if (sfi_ctx_new(&ctx))
        return 1;
    uint8_t *fwdata = malloc(FW_SIZE);
    for (size_t i = 0; i < FW_SIZE; i++)
        fwdata[i] = (uint8_t)(i * 2654435761u >> 24);
    static const uint8_t key[16] = "0123456789abcdef", nonce[12] = "abcdefghijkl";
    struct sfi_flash_range flash = {0x08000000, 0x200000};
    struct sfi_image_build_cfg cfg = {.protocol = 2, .hash = hash, .ram_size = 0x1E000,
                                      .token = 0x081FF000, .has_token = 1, .key = key,
                                      .nonce = nonce, .flash = &flash, .nflash = 1};
    /* the token must not lie inside the firmware: leave the last 64 KiB free */
    size_t fwlen = FW_SIZE - 0x10000;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long base_kb = ru.ru_maxrss;
    uint64_t t0 = sfi_now_ms();
    size_t total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        struct sfi_fw fw;
        sfi_fw_init(&fw);
        uint8_t *img;
        size_t len;
        if (sfi_fw_load_bin(ctx, &fw, "bench.bin", fwdata, fwlen, 0x08000000) ||
            sfi_fw_merge(ctx, &fw) || sfi_image_build(ctx, &cfg, &fw, &img, &len)) {
            fprintf(stderr, "build failed: %s\n", sfi_errdetail(ctx));
            return 1;
        }
        total += fwlen;
        free(img);
        sfi_fw_free(&fw);
    }
    double s = (double)(sfi_now_ms() - t0) / 1000.0;
    double mbps = (double)total / (1 << 20) / (s > 0 ? s : 1e-3);
    getrusage(RUSAGE_SELF, &ru);
    long peak_kb = ru.ru_maxrss;
    uint8_t *out = malloc(FW_SIZE + 16);
    double raw = raw_gcm_mbps(fwdata, out);
    printf("image build (protocol 2, hash %s, split at 0x1E000): %.1f MB/s\n", hash ? "on" : "off", mbps);
    printf("raw AES-128-GCM (OpenSSL, same run):             %.1f MB/s\n", raw);
    printf("ratio: %.2f (goal >= 0.5)\n", mbps / raw);
    printf("peak RSS: %ld KiB (before build %ld KiB); build added %.2f x firmware "
           "(goal <= 3)\n", peak_kb, base_kb, (double)(peak_kb - base_kb) * 1024 / fwlen);
    printf("peak RSS / firmware: %.2f\n", (double)peak_kb * 1024 / fwlen);
    free(out);
    free(fwdata);
    sfi_ctx_free(ctx);
    return 0;
}

int main(void)
{
    return run(0) || run(1);
}
