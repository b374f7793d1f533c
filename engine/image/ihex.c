/* ihex.c: Intel HEX and Motorola S-record loaders. Both are line formats with hex bytes and
 * a checksum per record; errors name the file and the line. Intel HEX record types
 * 00 01 02 03 04 05; S-record S0-S3, S5, S6, S7-S9. */
#include <string.h>

#include "fw_int.h"
#include "sfi/bytes.h"

/* Next line [*p, end): returns start and length without CR/LF, advances *p. */
static const uint8_t *next_line(const uint8_t **p, const uint8_t *end, size_t *n)
{
    const uint8_t *s = *p;
    const uint8_t *e = memchr(s, '\n', (size_t)(end - s));
    *p = e ? e + 1 : end;
    if (!e)
        e = end;
    while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *n = (size_t)(e - s);
    return s;
}

int sfi_fw_load_ihex(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t first = fw->n, lineno = 0;
    uint32_t base = 0;
    int rc = SFI_OK, eof = 0;
    uint8_t rec[5 + 255];
    while (p < end) {
        size_t n;
        const uint8_t *s = next_line(&p, end, &n);
        lineno++;
        if (n == 0)
            continue;
        if (eof) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: data after the end-of-file record",
                            name, lineno);
            goto fail;
        }
        if (s[0] != ':' || n < 11 || (n - 1) % 2 != 0 ||
            sfi_hex_decode((const char *)s + 1, 1, rec) != 0 || n != 11 + 2 * (size_t)rec[0]) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: malformed Intel HEX record", name,
                            lineno);
            goto fail;
        }
        size_t cnt = rec[0];
        if (sfi_hex_decode((const char *)s + 1, 5 + cnt, rec) != 0) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: bad hex digit", name, lineno);
            goto fail;
        }
        uint8_t sum = 0;
        for (size_t i = 0; i < 5 + cnt; i++)
            sum = (uint8_t)(sum + rec[i]);
        if (sum != 0) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: checksum mismatch", name, lineno);
            goto fail;
        }
        uint16_t off = sfi_get_be16(rec + 1);
        uint8_t type = rec[3];
        const uint8_t *d = rec + 4;
        switch (type) {
        case 0x00:
            rc = sfi_fw_put(ctx, fw, first, name, base + off, d, cnt);
            if (rc)
                goto fail;
            break;
        case 0x01:
            eof = 1;
            break;
        case 0x02:
        case 0x04:
            if (cnt != 2) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: type %02X needs 2 data bytes", name,
                                lineno, type);
                goto fail;
            }
            base = (uint32_t)sfi_get_be16(d) << (type == 0x02 ? 4 : 16);
            break;
        case 0x03:
        case 0x05:
            break; /* start address: not part of the image */
        default:
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: unknown record type %02X", name,
                            lineno, type);
            goto fail;
        }
    }
    if (!eof) {
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: no end-of-file record (type 01)", name,
                        lineno);
        goto fail;
    }
    return SFI_OK;
fail:
    sfi_fw_truncate(fw, first);
    return rc;
}

int sfi_fw_load_srec(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t first = fw->n, lineno = 0;
    int rc = SFI_OK, term = 0;
    uint8_t rec[256];
    while (p < end) {
        size_t n;
        const uint8_t *s = next_line(&p, end, &n);
        lineno++;
        if (n == 0)
            continue;
        if (term) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: record after the termination record",
                            name, lineno);
            goto fail;
        }
        if (n < 4 || s[0] != 'S' || sfi_hex_decode((const char *)s + 2, 1, rec) != 0 ||
            n != 4 + 2 * (size_t)rec[0]) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: malformed S-record", name, lineno);
            goto fail;
        }
        size_t cnt = rec[0];
        if (sfi_hex_decode((const char *)s + 2, 1 + cnt, rec) != 0) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: bad hex digit", name, lineno);
            goto fail;
        }
        uint8_t sum = 0;
        for (size_t i = 0; i < cnt; i++)
            sum = (uint8_t)(sum + rec[i]);
        if ((uint8_t)(sum + rec[cnt]) != 0xFF) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: checksum mismatch", name, lineno);
            goto fail;
        }
        size_t alen;
        switch (s[1]) {
        case '0': case '1': case '5': case '9': alen = 2; break;
        case '2': case '6': case '8': alen = 3; break;
        case '3': case '7': alen = 4; break;
        default:
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: unsupported record S%c", name, lineno,
                            s[1]);
            goto fail;
        }
        if (cnt < alen + 1) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: S%c record too short", name, lineno,
                            s[1]);
            goto fail;
        }
        uint32_t addr = 0;
        for (size_t i = 0; i < alen; i++)
            addr = addr << 8 | rec[1 + i];
        if (s[1] >= '1' && s[1] <= '3') {
            rc = sfi_fw_put(ctx, fw, first, name, addr, rec + 1 + alen, cnt - alen - 1);
            if (rc)
                goto fail;
        } else if (s[1] >= '7') {
            term = 1;
        }
    }
    if (fw->n == first) {
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: no data records", name, lineno);
        goto fail;
    }
    return SFI_OK;
fail:
    sfi_fw_truncate(fw, first);
    return rc;
}
