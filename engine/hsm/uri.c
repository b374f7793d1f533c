/* uri.c: RFC 7512 PKCS#11 URI parsing (the subset sfirun uses): path attributes token, serial,
 * manufacturer and model (they select the token), object, id and type (they select a key, for
 * signing), query attributes module-path and pin-source (env:VAR or file:PATH). pin-value is refused: a PIN must never travel on a command line.
 * Vendor attributes (x-...) are ignored as RFC 7512 allows; any other attribute is a USAGE
 * error naming it, so a misspelt one (pin-sorce=) never falls back to a default silently. */
#include <string.h>

#include "hsm/p11_int.h"
#include "sfi/bytes.h"

/* Percent-decodes s[0..n) into out (cap bytes); *len = bytes written. NUL bytes are allowed
 * (an id is binary). -1 on a bad escape or overflow. */
static int pdecode_bin(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = sfi_hexval(s[i + 1]), lo = sfi_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o >= cap)
            return -1;
        out[o++] = (unsigned char)c;
    }
    *len = o;
    return 0;
}

/* Percent-decodes s[0..n) into out (cap bytes incl. NUL): a string, so a NUL byte (%00) is
 * refused too; -1 on a bad escape or overflow. */
static int pdecode(const char *s, size_t n, char *out, size_t cap)
{
    size_t len;
    if (cap == 0 || pdecode_bin(s, n, (unsigned char *)out, cap - 1, &len) != 0 ||
        memchr(out, 0, len) != NULL)
        return -1;
    out[len] = '\0';
    return 0;
}

static int attr(struct sfi_ctx *ctx, struct sfi_hsm_uri *u, const char *a, size_t n)
{
    const char *eq = memchr(a, '=', n);
    if (!eq)
        return n == 0 ? SFI_OK
                      : sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: attribute without '='");
    size_t kl = (size_t)(eq - a), vl = n - kl - 1;
    const char *v = eq + 1;
    char src[512] = "";
    if (kl == 5 && memcmp(a, "token", 5) == 0) {
        if (pdecode(v, vl, u->token, sizeof u->token) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad token label");
    } else if (kl == 11 && memcmp(a, "module-path", 11) == 0) {
        if (pdecode(v, vl, u->module, sizeof u->module) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad module-path");
    } else if (kl == 6 && memcmp(a, "serial", 6) == 0) {
        if (pdecode(v, vl, u->serial, sizeof u->serial) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad serial");
    } else if (kl == 12 && memcmp(a, "manufacturer", 12) == 0) {
        if (pdecode(v, vl, u->manufacturer, sizeof u->manufacturer) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad manufacturer");
    } else if (kl == 5 && memcmp(a, "model", 5) == 0) {
        if (pdecode(v, vl, u->model, sizeof u->model) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad model");
    } else if (kl == 6 && memcmp(a, "object", 6) == 0) {
        if (pdecode(v, vl, u->object, sizeof u->object) != 0 || !u->object[0])
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad object label");
    } else if (kl == 2 && memcmp(a, "id", 2) == 0) {
        if (pdecode_bin(v, vl, u->id, sizeof u->id, &u->id_len) != 0 || u->id_len == 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad id (percent-encoded bytes, "
                                                "at most %zu)", sizeof u->id);
    } else if (kl == 4 && memcmp(a, "type", 4) == 0) {
        static const char *const types[] = {"private", "public", "cert", "secret-key", "data"};
        size_t k = 0;
        while (k < 5 && !(strlen(types[k]) == vl && memcmp(v, types[k], vl) == 0))
            k++;
        if (k == 5)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: type must be private, public, "
                                                "cert, secret-key or data");
        strcpy(u->type, types[k]);
    } else if (kl == 9 && memcmp(a, "pin-value", 9) == 0) {
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: pin-value refused (a PIN must not be "
                                            "on a command line): use pin-source=env:VAR or "
                                            "pin-source=file:PATH");
    } else if (kl == 10 && memcmp(a, "pin-source", 10) == 0) {
        if (pdecode(v, vl, src, sizeof src) != 0)
            return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI: bad pin-source");
        if (strncmp(src, "env:", 4) == 0 && src[4] && strlen(src + 4) < sizeof u->pin_env) {
            strcpy(u->pin_env, src + 4);
        } else if (strncmp(src, "file:", 5) == 0 && src[5]) {
            /* file:///abs or file:/abs or file:rel */
            const char *p = src + 5;
            if (strncmp(p, "//", 2) == 0)
                p += 2;
            strcpy(u->pin_file, p);
        } else {
            return sfi_seterr(ctx, SFI_E_USAGE,
                              "PKCS#11 URI: pin-source must be env:VAR or file:PATH");
        }
    } else if (!(kl > 2 && memcmp(a, "x-", 2) == 0)) {
        int shown = kl > 40 ? 40 : (int)kl;
        return sfi_seterr(ctx, SFI_E_USAGE,
                          "PKCS#11 URI: unknown or unused attribute '%.*s' (sfirun takes token, "
                          "serial, manufacturer, model, object, id, type, module-path, "
                          "pin-source)",
                          shown, a);
    }
    return SFI_OK;
}

int sfi_hsm_uri_parse(struct sfi_ctx *ctx, const char *uri, struct sfi_hsm_uri *out)
{
    struct sfi_hsm_uri u;
    memset(&u, 0, sizeof u);
    if (!uri || strncmp(uri, "pkcs11:", 7) != 0)
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI must start with 'pkcs11:'");
    if (strlen(uri) > 2048)
        return sfi_seterr(ctx, SFI_E_USAGE, "PKCS#11 URI too long");
    const char *p = uri + 7;
    const char *q = strchr(p, '?');
    const char *pend = q ? q : p + strlen(p);
    while (p < pend) {
        const char *e = memchr(p, ';', (size_t)(pend - p));
        if (!e)
            e = pend;
        int rc = attr(ctx, &u, p, (size_t)(e - p));
        if (rc != SFI_OK)
            return rc;
        p = e + 1;
    }
    if (q) {
        p = q + 1;
        const char *end = p + strlen(p);
        while (p < end) {
            const char *e = memchr(p, '&', (size_t)(end - p));
            if (!e)
                e = end;
            int rc = attr(ctx, &u, p, (size_t)(e - p));
            if (rc != SFI_OK)
                return rc;
            p = e + 1;
        }
    }
    *out = u;
    return SFI_OK;
}
