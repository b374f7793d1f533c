/* obcsv.c: the option-byte CSV of ST's TrustedPackageCreator (two columns: register name,
 * value) -> the C area content, one u32 LE per row. Rows must appear exactly as the product
 * defines them (ST: do not reorder or delete rows). Errors name the file and the row. */
#include <stdlib.h>
#include <string.h>

#include "image_int.h"

const char *const sfi_obcsv_h7_rows[SFI_IMAGE_OB_WORDS] = {
    "FOPTSR_PRG",  "FPRAR_PRG_A", "FPRAR_PRG_B", "FSCAR_PRG_A", "FSCAR_PRG_B",
    "FWPSN_PRG_A", "FWPSN_PRG_B", "FBOOT7_PRG",  "RESERVED",
};

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
    if (!names) {
        names = sfi_obcsv_h7_rows;
        nrows = SFI_IMAGE_OB_WORDS;
    }
    const char *p = (const char *)buf, *end = p + len;
    size_t row = 0, lineno = 0;
    uint32_t vals[64];
    if (nrows > 64)
        return sfi_seterr(ctx, SFI_E_INVALID, "%s: more than 64 option-byte rows", name);
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
        sfi_wr32(out + 4 * i, vals[i]);
    return SFI_OK;
}
