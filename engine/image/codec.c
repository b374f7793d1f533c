/* codec.c: SFI image parser, ST's layout (docs/sfi-image.md). Whole files (sfi_image_parse)
 * and a streaming reader (header, then one area at a time) for a simulated RSS that reads a
 * part from RAM. Every error is FORMAT and names the byte offset and the area. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/image.h"

int sfi_image_parse_header(struct sfi_ctx *ctx, const uint8_t *buf, size_t len,
                           struct sfi_image_header *out)
{
    if (len < SFI_IMAGE_HDR_SIZE)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "header truncated at offset %zu (%d bytes needed)", len,
                          SFI_IMAGE_HDR_SIZE);
    if (memcmp(buf, SFI_IMAGE_MAGIC, 8) != 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "bad magic at offset 0 (not an SFI image)");
    uint16_t proto = sfi_get_le16(buf + 8);
    if (proto != 1 && proto != 2) {
        if ((buf[8] == 1 || buf[8] == 2) && buf[9] != 0)
            return sfi_seterr(ctx, SFI_E_FORMAT,
                              "header bytes 8..9 read as protocol 0x%04X: this image was "
                              "written by an earlier sfirun, which put the image version (%u) "
                              "in byte 9 where ST's tools keep the protocol's high byte; "
                              "rebuild it with this sfirun",
                              (unsigned)proto, (unsigned)buf[9]);
        return sfi_seterr(ctx, SFI_E_FORMAT, "unsupported SFI protocol %u at offset 8",
                          (unsigned)proto);
    }
    uint16_t n = sfi_get_le16(buf + 10);
    if (n == 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "area count 0 at offset 10");
    out->protocol = proto;
    out->areas = n;
    out->hashed = 0;
    memcpy(out->tag, buf + 12, SFI_IMAGE_TAG_SIZE);
    return SFI_OK;
}

static int known_type(uint8_t t)
{
    return t != 0 && strchr(SFI_IMAGE_TYPES, t) != NULL;
}

const char *sfi_image_type_name(char type)
{
    switch (type) {
    case 'F': return "firmware (flash)";
    case 'C': return "option bytes";
    case 'P': return "pause (end of a part)";
    case 'R': return "resume (start of a part)";
    case 'M': return "module";
    case 'K': return "keys";
    case 'E': return "external flash";
    case 'H': return "header record (16 bytes; meaning not public)";
    case 'O': return "option-byte key record (.obk)";
    case 'S': return "secure manager package (.ssfi)";
    default: return NULL;
    }
}

int sfi_image_next_area(struct sfi_ctx *ctx, const uint8_t *buf, size_t len, size_t *off,
                        const struct sfi_image_header *hdr, struct sfi_image_area *out)
{
    size_t o = *off;
    if (o > len || len - o < SFI_IMAGE_DESC_SIZE)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "area descriptor truncated at offset %zu (%zu of %d bytes)", o,
                          o > len ? (size_t)0 : len - o, SFI_IMAGE_DESC_SIZE);
    const uint8_t *d = buf + o;
    struct sfi_image_area a;
    memset(&a, 0, sizeof a);
    a.type = (char)d[0];
    a.ver = d[1];
    a.index = sfi_get_le16(d + 2);
    a.size = sfi_get_le32(d + 4);
    a.addr = sfi_get_le32(d + 8);
    a.total = sfi_get_le16(d + 12);
    a.offset = o;
    if (a.index == 0 || a.index > hdr->areas)
        return sfi_seterr(ctx, SFI_E_FORMAT, "area at offset %zu: index %u out of 1..%u", o,
                          (unsigned)a.index, (unsigned)hdr->areas);
    if (!known_type(d[0]))
        return sfi_seterr(ctx, SFI_E_FORMAT, "area %u at offset %zu: unknown type 0x%02X",
                          (unsigned)a.index, o, (unsigned)d[0]);
    if (a.total != hdr->areas)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "area %u at offset %zu: total %u differs from the header's %u",
                          (unsigned)a.index, o + 12, (unsigned)a.total, (unsigned)hdr->areas);
    a.has_hash = hdr->hashed;
    size_t wrap = SFI_IMAGE_DESC_SIZE + (a.has_hash ? SFI_IMAGE_HASH_SIZE : 0) +
                  SFI_IMAGE_TAG_SIZE;
    size_t left = len - o;
    if (left < wrap)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "area %u at offset %zu: %s truncated (%zu of %zu bytes)",
                          (unsigned)a.index, o, a.has_hash ? "hash/tag" : "tag", left, wrap);
    if ((uint64_t)a.size > (uint64_t)(left - wrap))
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "area %u at offset %zu: size %lu runs past the end (%zu bytes left)",
                          (unsigned)a.index, o + 4, (unsigned long)a.size, left - wrap);
    size_t p = o + SFI_IMAGE_DESC_SIZE;
    if (a.has_hash) {
        memcpy(a.hash, buf + p, SFI_IMAGE_HASH_SIZE);
        p += SFI_IMAGE_HASH_SIZE;
    }
    memcpy(a.tag, buf + p, SFI_IMAGE_TAG_SIZE);
    a.length = wrap + a.size;
    *out = a;
    *off = o + a.length;
    return SFI_OK;
}

/* Reads every area of img->buf with hdr.hashed as set; FORMAT (ctx) at the first problem. */
static int walk(struct sfi_ctx *ctx, struct sfi_image *img)
{
    const struct sfi_image_header *hdr = &img->hdr;
    size_t off = SFI_IMAGE_HDR_SIZE;
    for (size_t i = 0; i < hdr->areas; i++) {
        if (off == img->len)
            return sfi_seterr(ctx, SFI_E_FORMAT,
                              "header says %u areas but the file ends after %zu (offset %zu)",
                              (unsigned)hdr->areas, i, off);
        int rc = sfi_image_next_area(ctx, img->buf, img->len, &off, hdr, &img->area[i]);
        if (rc)
            return rc;
        if (img->area[i].index != i + 1)
            return sfi_seterr(ctx, SFI_E_FORMAT,
                              "area %zu at offset %zu: index %u out of order (expected %zu)",
                              i + 1, img->area[i].offset + 2, (unsigned)img->area[i].index,
                              i + 1);
    }
    if (off != img->len)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "%zu trailing bytes at offset %zu after the last area (%u)",
                          img->len - off, off, (unsigned)hdr->areas);
    return SFI_OK;
}

int sfi_image_parse(struct sfi_ctx *ctx, const uint8_t *buf, size_t len, struct sfi_image **out)
{
    struct sfi_image_header hdr;
    int rc = sfi_image_parse_header(ctx, buf, len, &hdr);
    if (rc)
        return rc;
    uint64_t least = SFI_IMAGE_HDR_SIZE +
                     (uint64_t)hdr.areas * (SFI_IMAGE_DESC_SIZE + SFI_IMAGE_TAG_SIZE);
    if (least > len)
        return sfi_seterr(ctx, SFI_E_FORMAT,
                          "area count %u at offset 10 needs at least %llu bytes, file has %zu",
                          (unsigned)hdr.areas, (unsigned long long)least, len);
    struct sfi_image *img = calloc(1, sizeof *img);
    if (!img)
        return sfi_seterr(ctx, SFI_E_NOMEM, "image");
    img->area = calloc(hdr.areas, sizeof *img->area);
    img->buf = malloc(len);
    if (!img->area || !img->buf) {
        sfi_image_free(img);
        return sfi_seterr(ctx, SFI_E_NOMEM, "image of %zu bytes", len);
    }
    memcpy(img->buf, buf, len);
    img->len = len;
    img->hdr = hdr;
    /* The file does not say whether areas carry the hash: protocol 2 files are read with it
     * first (ST's hashed images), then without; the layout that ends exactly at the end of
     * the file is the file's. The error reported is the first layout's. */
    img->hdr.hashed = hdr.protocol >= 2;
    rc = walk(ctx, img);
    if (rc && hdr.protocol >= 2) {
        char first[256];
        snprintf(first, sizeof first, "%s", sfi_errdetail(ctx));
        img->hdr.hashed = 0;
        if (walk(ctx, img) == SFI_OK)
            rc = SFI_OK;
        else
            sfi_seterr(ctx, SFI_E_FORMAT, "%s", first);
    }
    if (rc)
        goto fail;
    img->n = hdr.areas;
    img->version = img->area[0].ver;
    /* An earlier sfirun marked hashed areas with 0x97 in the version byte (0x17 | 0x80). */
    img->legacy = img->hdr.hashed && img->version == 0x97;
    *out = img;
    return SFI_OK;
fail:
    sfi_image_free(img);
    return rc;
}

void sfi_image_free(struct sfi_image *img)
{
    if (!img)
        return;
    free(img->area);
    free(img->buf);
    free(img);
}
