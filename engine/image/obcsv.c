/* obcsv.c: the option-byte CSV of ST's TrustedPackageCreator (two columns: register name,
 * value) -> the C area content, one u32 LE per row. Rows must appear exactly as the device
 * pack lists them (ST: do not reorder or delete rows). The text is plain ASCII: any other
 * byte (a NUL inside a value, a control character) is an error naming line and column, never
 * a silently shortened value. Errors name the file, the line and the row. */
#include <stdlib.h>
#include <string.h>

#include "image_int.h"

static int is_sp(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '"';
}

/* Trims [s, e) in place; returns the new length. */
static size_t trim(const char **s, const char *e)
{
    while (*s < e && is_sp(**s))
        (*s)++;
    while (e > *s && is_sp(e[-1]))
        e--;
    return (size_t)(e - *s);
}

static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    int base = 10;
    const char *d = tmp;
    if (n > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
        base = 16;
        d += 2;
    }
    for (const char *q = d; *q; q++) {
        int ok = base == 16 ? ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                               (*q >= 'A' && *q <= 'F'))
                            : (*q >= '0' && *q <= '9');
        if (!ok)
            return -1;
    }
    if (!*d)
        return -1;
    char *end;
    unsigned long long v = strtoull(d, &end, base);
    if (*end || v > 0xFFFFFFFFull)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int sfi_obcsv_parse(struct sfi_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                    const char *const *names, size_t nrows, uint8_t *out)
{
    if (!names || nrows == 0 || nrows > SFI_IMAGE_OB_MAX)
        return sfi_seterr(ctx, SFI_E_INVALID, "%s: the device's option-byte rows (1..%d) are "
                          "needed", name, SFI_IMAGE_OB_MAX);
    size_t line = 1, col = 1;
    for (size_t i = 0; i < len; i++, col++) {
        uint8_t c = buf[i];
        if (c == '\n') {
            line++;
            col = 0;
        } else if (!(c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7F))) {
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu:%zu: byte 0x%02X is not allowed in an "
                              "option-byte CSV (plain ASCII text only)", name, line, col,
                              (unsigned)c);
        }
    }
    const char *p = (const char *)buf, *end = p + len;
    size_t row = 0, lineno = 0;
    uint32_t vals[SFI_IMAGE_OB_MAX];
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = e ? e : end;
        p = e ? e + 1 : end;
        lineno++;
        if (trim(&ls, le) == 0 || *ls == '#')
            continue;
        const char *sep = ls;
        while (sep < le && *sep != ',' && *sep != ';')
            sep++;
        if (sep == le)
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: row %zu has no value column "
                              "(expected 'NAME,VALUE')", name, lineno, row + 1);
        const char *ns = ls, *vs = sep + 1;
        size_t nl = trim(&ns, sep);
        const char *ve = vs;
        while (ve < le && *ve != ',' && *ve != ';')
            ve++;
        size_t vl = trim(&vs, ve);
        if (row >= nrows)
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: row %zu '%.*s': more than the %zu "
                              "rows of this product", name, lineno, row + 1,
                              (int)(nl > 40 ? 40 : nl), ns, nrows);
        if (nl != strlen(names[row]) || memcmp(ns, names[row], nl) != 0)
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: row %zu is '%.*s', expected '%s' "
                              "(rows must not be reordered, renamed or deleted)", name, lineno,
                              row + 1, (int)(nl > 40 ? 40 : nl), ns, names[row]);
        if (parse_u32(vs, vl, &vals[row]) != 0)
            return sfi_seterr(ctx, SFI_E_FORMAT, "%s:%zu: row %zu (%s): '%.*s' is not a 32-bit "
                              "number", name, lineno, row + 1, names[row],
                              (int)(vl > 40 ? 40 : vl), vs);
        row++;
    }
    if (row != nrows)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: %zu rows, expected %zu (missing row %zu, %s)",
                          name, row, nrows, row + 1, names[row]);
    for (size_t i = 0; i < nrows; i++)
        sfi_put_le32(out + 4 * i, vals[i]);
    return SFI_OK;
}
