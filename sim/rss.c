/* rss.c: the simulated RSS's Secure Firmware Install: licence -> key, header and area
 * checks, flash and option-byte programming, continuation token between parts. Runs inside
 * the simulated chip's reset (sim.h trigger) with privileged access only. Model: see
 * docs/sfi-model.md; the addresses and codes come from the device pack. */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/image.h"
#include "sfi/license.h"
#include "sfi/rss.h"

#define TOKEN_MAGIC 0x54434653u /* "SFCT" little-endian */
#define TOKEN_IN_PROGRESS 1
#define TOKEN_DONE 2

struct sfi_rss {
    struct sfi_ctx *ctx;
    struct sfi_sim *sim;
    struct sfi_rss_cfg cfg;
    enum sfi_rss_code last_code;
    char last[256];
};

struct token {
    uint32_t magic;
    uint8_t state;
    uint16_t part, next, total;
    uint8_t digest[16];
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int fail(struct sfi_rss *r, enum sfi_rss_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct sfi_rss *r, enum sfi_rss_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->last, sizeof r->last, fmt, ap);
    va_end(ap);
    r->last_code = code;
    sfi_log(r->ctx, SFI_LOG_DEBUG, "simulated RSS: %s (result 0x%08X)", r->last,
            r->cfg.codes[code]);
    return (int)r->cfg.codes[code];
}

/* The newest token record at token_addr (slots are written in order; erased = all 0xFF).
 * Returns the slot count used; *t valid when > 0. */
static unsigned read_token(struct sfi_rss *r, struct token *t)
{
    unsigned used = 0;
    for (unsigned k = 0; k < r->cfg.token_slots; k++) {
        uint8_t rec[SFI_RSS_TOKEN_SIZE];
        if (sfi_sim_priv_read(r->sim, r->cfg.token_addr + k * SFI_RSS_TOKEN_SIZE, rec,
                              sizeof rec) != SFI_OK)
            break;
        if (rd32(rec) != TOKEN_MAGIC)
            break;
        t->magic = TOKEN_MAGIC;
        t->state = rec[4];
        t->part = rd16(rec + 6);
        t->next = rd16(rec + 8);
        t->total = rd16(rec + 10);
        memcpy(t->digest, rec + 12, 16);
        used = k + 1;
    }
    return used;
}

static int write_token(struct sfi_rss *r, unsigned slot, const struct token *t)
{
    if (slot >= r->cfg.token_slots)
        return SFI_E_TARGET;
    uint8_t rec[SFI_RSS_TOKEN_SIZE];
    memset(rec, 0, sizeof rec);
    wr32(rec, TOKEN_MAGIC);
    rec[4] = t->state;
    wr16(rec + 6, t->part);
    wr16(rec + 8, t->next);
    wr16(rec + 10, t->total);
    memcpy(rec + 12, t->digest, 16);
    return sfi_sim_priv_program(r->sim, r->cfg.token_addr + slot * SFI_RSS_TOKEN_SIZE, rec,
                                sizeof rec);
}

/* [addr, addr+n) lies in flash; adjacent banks are one address range (an area may cross
 * from bank 1 into bank 2). */
static int in_flash(const struct sfi_sim_cfg *c, uint32_t addr, uint32_t n)
{
    uint64_t at = addr, end = (uint64_t)addr + n;
    for (int moved = 1; at < end && moved;) {
        moved = 0;
        for (unsigned b = 0; b < c->nbanks; b++) {
            uint64_t lo = c->bank_start[b], hi = lo + c->bank_size[b];
            if (at >= lo && at < hi) {
                at = hi;
                moved = 1;
            }
        }
    }
    return at >= end;
}

/* Programs [addr, addr+n), one bank at a time. */
static int program(struct sfi_sim *sim, uint32_t addr, const uint8_t *data, uint32_t n)
{
    const struct sfi_sim_cfg *c = sfi_sim_config(sim);
    while (n > 0) {
        uint32_t chunk = n;
        for (unsigned b = 0; b < c->nbanks; b++) {
            uint64_t hi = (uint64_t)c->bank_start[b] + c->bank_size[b];
            if (addr >= c->bank_start[b] && addr < hi && (uint64_t)addr + n > hi)
                chunk = (uint32_t)(hi - addr);
        }
        int rc = sfi_sim_priv_program(sim, addr, data, chunk);
        if (rc != SFI_OK)
            return rc;
        addr += chunk;
        data += chunk;
        n -= chunk;
    }
    return SFI_OK;
}

/* One RSS run. Everything read comes from the chip's RAM through privileged access. */
static int run(struct sfi_rss *r, uint8_t *key, uint8_t *iv, uint8_t *buf, size_t n)
{
    const struct sfi_rss_cfg *c = &r->cfg;
    struct sfi_sim *sim = r->sim;
    uint8_t priv[SFI_SIM_PRIV_SIZE], cert[SFI_SIM_CERT_SIZE], lic[SFI_LIC_SIZE];

    if (sfi_sim_get_identity(sim, priv, cert) != SFI_OK)
        return fail(r, SFI_RSS_E_STATE, "chip has no identity");
    int rc = sfi_sim_priv_read(sim, c->license_addr, lic, sizeof lic);
    if (rc == SFI_OK)
        rc = sfi_license_open(r->ctx, priv, lic, key, iv);
    sfi_wipe(priv, sizeof priv);
    if (rc != SFI_OK)
        return fail(r, SFI_RSS_E_LICENSE, "licence rejected: %s (%s)", sfi_errname(rc),
                    sfi_errdetail(r->ctx));

    if (sfi_sim_priv_read(sim, c->header_addr, buf, n) != SFI_OK)
        return fail(r, SFI_RSS_E_HEADER, "header not readable");
    struct sfi_image_header hdr;
    if (sfi_image_parse_header(r->ctx, buf, n, &hdr) != SFI_OK)
        return fail(r, SFI_RSS_E_HEADER, "header malformed: %s", sfi_errdetail(r->ctx));
    if (hdr.protocol > 31 || !(c->protocols & (1u << hdr.protocol)))
        return fail(r, SFI_RSS_E_PROTOCOL, "protocol %u not accepted", hdr.protocol);
    if (sfi_image_check_header_tag(r->ctx, buf, key, iv) != SFI_OK)
        return fail(r, SFI_RSS_E_HEADER, "header tag does not verify with the licence key");
    uint8_t digest[32];
    unsigned dlen = 0;
    EVP_Digest(buf, SFI_IMAGE_HDR_SIZE, digest, &dlen, EVP_sha256(), NULL);

    /* Where the previous part left off. */
    struct token tok;
    unsigned used = read_token(r, &tok);
    uint16_t expect = 1, part = 1;
    int resuming = 0;
    if (used > 0 && tok.state == TOKEN_IN_PROGRESS && memcmp(tok.digest, digest, 16) == 0) {
        expect = tok.next;
        part = (uint16_t)(tok.part + 1);
        resuming = 1;
    } else {
        uint32_t optsr = 0;
        sfi_sim_ob_get(sim, 0x00, &optsr);
        if (((optsr >> 8) & 0xFF) != 0xAA)
            return fail(r, SFI_RSS_E_STATE, "first part needs RDP level 0");
    }

    /* The header does not say whether areas carry the hash (ST's layout): the first area of
     * the part decides, read both ways; the layout whose tag verifies is the image's. */
    hdr.hashed = -1;
    for (int h = hdr.protocol >= 2 ? 1 : 0; h >= 0 && hdr.hashed < 0; h--) {
        struct sfi_image_area a0;
        size_t o0 = SFI_IMAGE_HDR_SIZE;
        hdr.hashed = h;
        uint8_t *p0 = NULL;
        int ok = sfi_image_next_area(r->ctx, buf, n, &o0, &hdr, &a0) == SFI_OK &&
                 (p0 = malloc(a0.size ? a0.size : 1)) != NULL &&
                 sfi_image_decrypt_area(r->ctx, &a0, buf + a0.offset, key, iv, p0) == SFI_OK;
        if (p0) {
            sfi_wipe(p0, a0.size);
            free(p0);
        }
        if (!ok)
            hdr.hashed = -1;
    }
    if (hdr.hashed < 0)
        hdr.hashed = 0; /* neither verifies: the loop below reports the area */

    uint32_t ob[SFI_RSS_OB_ROWS];
    int have_ob = 0;
    size_t off = SFI_IMAGE_HDR_SIZE;
    for (int first = 1;; first = 0) {
        struct sfi_image_area a;
        if (sfi_image_next_area(r->ctx, buf, n, &off, &hdr, &a) != SFI_OK)
            return fail(r, SFI_RSS_E_AREA, "area %u malformed: %s", expect,
                        sfi_errdetail(r->ctx));
        if (first && resuming && a.type != 'R')
            return fail(r, SFI_RSS_E_TOKEN, "part %u does not start with a resume area", part);
        if (a.index != expect)
            return fail(r, SFI_RSS_E_AREA, "area %u found where area %u was expected", a.index,
                        expect);
        if (a.has_hash && c->hash == SFI_RSS_HASH_UNSUPPORTED)
            return fail(r, SFI_RSS_E_HASH, "area %u is hashed: hash not supported", a.index);
        if (!a.has_hash && c->hash == SFI_RSS_HASH_REQUIRED && (a.type == 'F' || a.type == 'C'))
            return fail(r, SFI_RSS_E_HASH, "area %u has no hash: hash required", a.index);
        uint8_t *plain = malloc(a.size ? a.size : 1);
        if (plain == NULL)
            return fail(r, SFI_RSS_E_AREA, "out of memory");
        rc = sfi_image_decrypt_area(r->ctx, &a, buf + a.offset, key, iv, plain);
        if (rc != SFI_OK) {
            free(plain);
            return fail(r, SFI_RSS_E_AREA, "area %u does not verify: %s", a.index,
                        sfi_errdetail(r->ctx));
        }
        int stop = 0;
        enum sfi_rss_code done = SFI_RSS_OK;
        switch (a.type) {
        case 'F':
            if (!in_flash(sfi_sim_config(sim), a.addr, a.size)) {
                free(plain);
                return fail(r, SFI_RSS_E_PROGRAM, "area %u at 0x%08X is outside flash", a.index,
                            a.addr);
            }
            if (c->corrupt && a.size > 0)
                plain[(a.size / 2) & ~3u] ^= 0x01; /* errata model: one wrong bit per area */
            rc = program(sim, a.addr, plain, a.size);
            if (rc != SFI_OK) {
                free(plain);
                return fail(r, SFI_RSS_E_PROGRAM, "area %u at 0x%08X: flash not erased", a.index,
                            a.addr);
            }
            break;
        case 'C':
            if (a.size != SFI_RSS_OB_ROWS * 4) {
                free(plain);
                return fail(r, SFI_RSS_E_AREA, "area %u: option bytes must be %d bytes",
                            a.index, SFI_RSS_OB_ROWS * 4);
            }
            for (int i = 0; i < SFI_RSS_OB_ROWS; i++)
                ob[i] = rd32(plain + 4 * i);
            have_ob = 1;
            break;
        case 'P': {
            struct token t = {.state = TOKEN_IN_PROGRESS, .part = part,
                              .next = (uint16_t)(a.index + 1), .total = hdr.areas};
            memcpy(t.digest, digest, 16);
            if (write_token(r, used, &t) != SFI_OK) {
                free(plain);
                return fail(r, SFI_RSS_E_TOKEN, "continuation token at 0x%08X not writable",
                            c->token_addr);
            }
            stop = 1;
            done = SFI_RSS_PART_OK;
            break;
        }
        case 'R':
            if (!resuming) {
                free(plain);
                return fail(r, SFI_RSS_E_TOKEN, "resume area %u without a continuation token",
                            a.index);
            }
            break;
        default:
            free(plain);
            return fail(r, SFI_RSS_E_AREA, "area %u: type '%c' not supported", a.index, a.type);
        }
        sfi_wipe(plain, a.size);
        free(plain);
        if (!stop && a.index == hdr.areas) {
            if (have_ob)
                for (int i = 0; i < SFI_RSS_OB_ROWS; i++)
                    if (c->ob_map[i] >= 0)
                        sfi_sim_ob_set(sim, (unsigned)c->ob_map[i], ob[i]);
            struct token t = {.state = TOKEN_DONE, .part = part, .next = 0, .total = hdr.areas};
            memcpy(t.digest, digest, 16);
            if (used > 0 || resuming)
                write_token(r, used, &t); /* best effort: a token log exists only when split */
            stop = 1;
            done = SFI_RSS_OK;
        }
        if (stop) {
            r->last_code = done;
            snprintf(r->last, sizeof r->last, "part %u installed (areas up to %u of %u)%s", part,
                     a.index, hdr.areas, done == SFI_RSS_OK ? ", install complete" : "");
            sfi_log(r->ctx, SFI_LOG_DEBUG, "simulated RSS: %s", r->last);
            return (int)c->codes[done];
        }
        expect++;
    }
}

static int rss_cb(void *ud, struct sfi_sim *sim)
{
    struct sfi_rss *r = ud;
    (void)sim;
    uint32_t lo = r->cfg.header_addr, hi = r->cfg.ram_limit;
    size_t n = hi - lo;
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return fail(r, SFI_RSS_E_STATE, "out of memory");
    uint8_t key[16], iv[16];
    int res = run(r, key, iv, buf, n);
    sfi_wipe(key, sizeof key);
    sfi_wipe(iv, sizeof iv);
    sfi_wipe(buf, n);
    free(buf);
    return res;
}

int sfi_rss_new(struct sfi_ctx *ctx, struct sfi_sim *sim, const struct sfi_rss_cfg *cfg,
                struct sfi_rss **out)
{
    if (sim == NULL || cfg == NULL || cfg->ram_limit <= cfg->header_addr + SFI_IMAGE_HDR_SIZE ||
        cfg->ram_limit - cfg->header_addr > 0x200000 || cfg->token_slots == 0)
        return sfi_seterr(ctx, SFI_E_INVALID, "bad RSS configuration");
    struct sfi_rss *r = calloc(1, sizeof *r);
    if (r == NULL)
        return SFI_E_NOMEM;
    r->ctx = ctx;
    r->sim = sfi_sim_ref(sim);
    r->cfg = *cfg;
    snprintf(r->last, sizeof r->last, "never ran");
    sfi_sim_set_rss(sim, rss_cb, r);
    *out = r;
    return SFI_OK;
}

void sfi_rss_free(struct sfi_rss *rss)
{
    if (rss == NULL)
        return;
    sfi_sim_set_rss(rss->sim, NULL, NULL);
    sfi_sim_free(rss->sim);
    free(rss);
}

const char *sfi_rss_last(const struct sfi_rss *rss)
{
    return rss->last;
}

enum sfi_rss_code sfi_rss_last_code(const struct sfi_rss *rss)
{
    return rss->last_code;
}
