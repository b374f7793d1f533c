/* build.c: the SFI image builder. Checks merged firmware segments against flash, plans the
 * areas (F per segment, cut into parts separated by P/R areas at the continuation token when
 * a RAM size is given, the C area last) and encrypts each area from the segments straight
 * into the one output buffer (no intermediate copy; the input is never written).
 * The cut rule and the P/R record are a model: docs/sfi-image.md. */
#include <stdlib.h>
#include <string.h>

#include "image_int.h"

struct plan {
    char type;
    uint32_t addr;
    const uint8_t *data; /* NULL for P/R (record built here) */
    uint32_t size;       /* plaintext bytes taken from data */
    uint32_t fill;       /* 0xFF bytes after them (F areas: up to a multiple of 16) */
    uint16_t part;
};

struct planner {
    struct sfi_ctx *ctx;
    struct plan *a;
    size_t n, cap;
    uint16_t part;
};

static int add(struct planner *p, char type, uint32_t addr, const uint8_t *data, size_t size,
               size_t fill)
{
    if (p->n >= 0xFFFF)
        return sfi_seterr(p->ctx, SFI_E_FORMAT, "more than 65535 areas (RAM size too small?)");
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct plan *q = realloc(p->a, cap * sizeof *q);
        if (!q)
            return sfi_seterr(p->ctx, SFI_E_NOMEM, "area plan");
        p->a = q;
        p->cap = cap;
    }
    p->a[p->n++] = (struct plan){type, addr, data, (uint32_t)size, (uint32_t)fill, p->part};
    return SFI_OK;
}

static int pause_resume(struct planner *p, const struct sfi_image_build_cfg *cfg, size_t prsz)
{
    int rc = add(p, 'P', cfg->token, NULL, prsz, 0);
    if (rc)
        return rc;
    p->part++;
    return add(p, 'R', cfg->token, NULL, prsz, 0);
}

static const char *outside_flash(const struct sfi_image_build_cfg *cfg, uint64_t lo, uint64_t hi)
{
    if (!cfg->flash)
        return NULL;
    uint64_t cur = lo;
    while (cur < hi) {
        size_t i;
        for (i = 0; i < cfg->nflash; i++) {
            uint64_t s = cfg->flash[i].start, e = s + cfg->flash[i].size;
            if (cur >= s && cur < e) {
                cur = e;
                break;
            }
        }
        if (i == cfg->nflash)
            return "outside flash";
    }
    return NULL;
}

static int plan_areas(struct planner *p, const struct sfi_image_build_cfg *cfg,
                      const struct sfi_fw *fw, size_t wrap, size_t prsz)
{
    size_t used = 0;
    const uint64_t ram = cfg->ram_size;
    for (size_t i = 0; i < cfg->nextra; i++) {
        const struct sfi_image_extra *x = &cfg->extra[i];
        if (ram && used + wrap + x->size > ram) {
            int rc = pause_resume(p, cfg, prsz);
            if (rc)
                return rc;
            used = 0;
        }
        int rc = add(p, x->type, x->addr, x->data, x->size, 0);
        if (rc)
            return rc;
        used += wrap + x->size;
    }
    for (size_t i = 0; i < fw->n; i++) {
        const struct sfi_fw_seg *s = &fw->seg[i];
        size_t pos = 0;
        while (pos < s->len) {
            size_t chunk = s->len - pos;
            if (ram) {
                uint64_t room = ram - used;
                if (room < wrap + chunk) {
                    chunk = room > wrap ? (size_t)(room - wrap) / SFI_IMAGE_CUT_ALIGN *
                                              SFI_IMAGE_CUT_ALIGN
                                        : 0;
                    if (chunk == 0) {
                        int rc = pause_resume(p, cfg, prsz);
                        if (rc)
                            return rc;
                        used = 0;
                        continue;
                    }
                }
            }
            if (chunk > 0xFFFFFFFFu - 63)
                chunk = 0xFFFFFFC0u;
            /* the end of a segment is padded with 0xFF to a multiple of 16 (TPC does) */
            size_t fill = pos + chunk == s->len ? (SFI_IMAGE_FILL - chunk % SFI_IMAGE_FILL) %
                                                      SFI_IMAGE_FILL
                                                : 0;
            int rc = add(p, 'F', s->addr + (uint32_t)pos, s->data + pos, chunk, fill);
            if (rc)
                return rc;
            used += wrap + chunk + fill;
            pos += chunk;
        }
    }
    if (cfg->ob) {
        if (ram && used + wrap + cfg->ob_len > ram) {
            int rc = pause_resume(p, cfg, prsz);
            if (rc)
                return rc;
        }
        return add(p, 'C', 0, cfg->ob, cfg->ob_len, 0);
    }
    return SFI_OK;
}

static int check_cfg(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                     const struct sfi_fw *fw, size_t wrap)
{
    if (cfg->protocol != 1 && cfg->protocol != 2)
        return sfi_seterr(ctx, SFI_E_USAGE, "protocol %u: only 1 and 2 exist",
                          (unsigned)cfg->protocol);
    if (cfg->hash && cfg->protocol < 2)
        return sfi_seterr(ctx, SFI_E_USAGE, "hash needs protocol 2");
    if (!cfg->key || !cfg->nonce)
        return sfi_seterr(ctx, SFI_E_USAGE, "key and nonce are required");
    if (!fw || fw->n == 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "no firmware data: the image would be empty");
    for (size_t i = 0; i < fw->n; i++) {
        const struct sfi_fw_seg *s = &fw->seg[i];
        if (outside_flash(cfg, s->addr, (uint64_t)s->addr + s->len))
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s [0x%08lX..0x%08llX) is outside flash",
                              s->name, (unsigned long)s->addr,
                              (unsigned long long)s->addr + s->len);
        if (i && (uint64_t)fw->seg[i - 1].addr + fw->seg[i - 1].len > s->addr)
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s overlaps %s (segments not merged)",
                              fw->seg[i - 1].name, s->name);
    }
    if (cfg->ram_size) {
        size_t need = wrap + (cfg->ob_len > SFI_IMAGE_CUT_ALIGN ? cfg->ob_len
                                                                 : SFI_IMAGE_CUT_ALIGN);
        if (cfg->ram_size < need)
            return sfi_seterr(ctx, SFI_E_USAGE, "RAM size %lu is too small (at least %zu)",
                              (unsigned long)cfg->ram_size, need);
    }
    return SFI_OK;
}

static int token_check(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                       const struct sfi_fw *fw)
{
    if (!cfg->has_token)
        return sfi_seterr(ctx, SFI_E_USAGE, "the image needs %s parts but no continuation "
                          "token address was given", "several");
    if (outside_flash(cfg, cfg->token, (uint64_t)cfg->token + 1))
        return sfi_seterr(ctx, SFI_E_FORMAT, "continuation token 0x%08lX is outside flash",
                          (unsigned long)cfg->token);
    for (size_t i = 0; i < fw->n; i++) {
        const struct sfi_fw_seg *s = &fw->seg[i];
        if (cfg->token >= s->addr && (uint64_t)cfg->token < (uint64_t)s->addr + s->len)
            return sfi_seterr(ctx, SFI_E_FORMAT, "continuation token 0x%08lX lies inside %s",
                              (unsigned long)cfg->token, s->name);
    }
    return SFI_OK;
}

int sfi_image_build(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                    const struct sfi_fw *fw, uint8_t **out, size_t *out_len)
{
    const size_t hl = cfg->hash ? SFI_IMAGE_HASH_SIZE : 0;
    const size_t wrap = SFI_IMAGE_DESC_SIZE + hl + SFI_IMAGE_TAG_SIZE;
    const size_t prsz = cfg->protocol >= 2 ? SFI_IMAGE_PR_SIZE : 0;
    int rc = check_cfg(ctx, cfg, fw, wrap);
    if (rc)
        return rc;
    struct planner p = {ctx, NULL, 0, 0, 1};
    rc = plan_areas(&p, cfg, fw, wrap, prsz);
    if (rc == SFI_OK && p.part > 1)
        rc = token_check(ctx, cfg, fw);
    if (rc) {
        free(p.a);
        return rc;
    }
    uint64_t total = SFI_IMAGE_HDR_SIZE;
    for (size_t i = 0; i < p.n; i++)
        total += wrap + p.a[i].size + p.a[i].fill;
    if (total > SIZE_MAX / 2) {
        free(p.a);
        return sfi_seterr(ctx, SFI_E_NOMEM, "image of %llu bytes", (unsigned long long)total);
    }
    uint8_t *buf = malloc((size_t)total);
    EVP_CIPHER_CTX *c = NULL;
    struct sfi_img_sha sha = {NULL, NULL};
    if (!buf) {
        free(p.a);
        return sfi_seterr(ctx, SFI_E_NOMEM, "image of %llu bytes", (unsigned long long)total);
    }
    rc = sfi_img_gcm_init(ctx, &c, cfg->key, 1);
    if (rc == SFI_OK && hl)
        rc = sfi_img_sha_init(ctx, &sha);
    if (rc)
        goto done;
    memcpy(buf, SFI_IMAGE_MAGIC, 8); /* NOLINT(bugprone-not-null-terminated-result): bytes */
    sfi_put_le16(buf + 8, cfg->protocol);
    sfi_put_le16(buf + 10, (uint16_t)p.n);
    rc = sfi_img_gcm(ctx, c, 1, cfg->nonce, buf, SFI_IMAGE_AAD_SIZE, NULL, 0, NULL, NULL, 0,
                     buf + SFI_IMAGE_AAD_SIZE);
    if (rc)
        goto done;
    size_t off = SFI_IMAGE_HDR_SIZE;
    for (size_t i = 0; i < p.n; i++) {
        const struct plan *a = &p.a[i];
        uint8_t *d = buf + off, *data = d + wrap;
        const uint8_t *plain = a->data ? a->data : data;
        uint32_t size = a->size + a->fill;
        uint16_t index = (uint16_t)(i + 1);
        if (a->fill && a->data) { /* the padded plaintext is made here, encrypted in place */
            memcpy(data, a->data, a->size);
            memset(data + a->size, 0xFF, a->fill);
            plain = data;
        }
        d[0] = (uint8_t)a->type;
        d[1] = cfg->version;
        sfi_put_le16(d + 2, index);
        sfi_put_le32(d + 4, size);
        sfi_put_le32(d + 8, a->addr);
        sfi_put_le16(d + 12, (uint16_t)p.n);
        if (!a->data && a->size) { /* model P/R record: token, part, parts, next index */
            memset(data, 0, a->size);
            sfi_put_le32(data, cfg->token);
            sfi_put_le16(data + 4, a->part);
            sfi_put_le16(data + 6, p.part);
            sfi_put_le16(data + 8, (uint16_t)((size_t)index + 1 <= p.n ? index + 1 : 0));
        }
        if (hl) {
            rc = sfi_img_sha(ctx, &sha, plain, size, d + SFI_IMAGE_DESC_SIZE);
            if (rc)
                goto done;
        }
        uint8_t iv[SFI_IMAGE_NONCE_SIZE];
        sfi_image_area_iv(cfg->nonce, index, iv);
        rc = sfi_img_gcm(ctx, c, 1, iv, d, SFI_IMAGE_DESC_SIZE, d + SFI_IMAGE_DESC_SIZE, hl,
                         plain, data, size, d + SFI_IMAGE_DESC_SIZE + hl);
        sfi_wipe(iv, sizeof iv);
        if (rc)
            goto done;
        off += wrap + size;
    }
done:
    EVP_CIPHER_CTX_free(c);
    sfi_img_sha_free(&sha);
    free(p.a);
    if (rc) {
        sfi_wipe(buf, (size_t)total);
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = (size_t)total;
    return SFI_OK;
}

int sfi_image_build_file(struct sfi_ctx *ctx, const struct sfi_image_build_cfg *cfg,
                         const struct sfi_image_input *in, size_t nin, const char *path,
                         size_t *len, unsigned *areas)
{
    if (cfg == NULL || path == NULL || (nin > 0 && in == NULL))
        return sfi_seterr(ctx, SFI_E_INVALID, "image build: configuration, inputs and output "
                          "path are required");
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    int rc = SFI_OK;
    for (size_t i = 0; rc == SFI_OK && i < nin; i++)
        rc = sfi_fw_load_auto(ctx, &fw, in[i].name, in[i].data, in[i].len, in[i].has_addr,
                              in[i].addr);
    if (rc == SFI_OK)
        rc = sfi_fw_merge(ctx, &fw);
    uint8_t *img = NULL;
    size_t n = 0;
    if (rc == SFI_OK)
        rc = sfi_image_build(ctx, cfg, &fw, &img, &n);
    sfi_fw_free(&fw);
    if (rc == SFI_OK)
        rc = sfi_file_write_atomic(ctx, path, img, n, 0);
    if (rc == SFI_OK && len != NULL)
        *len = n;
    if (rc == SFI_OK && areas != NULL)
        *areas = sfi_get_le16(img + 10);
    free(img);
    return rc;
}
