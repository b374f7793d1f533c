/* manifest.c: the bundle manifest, a strict line-based text format (docs/bundles.md):
 * fixed line order, single spaces, LF endings, sorted unique file lines. Anything else is
 * refused with the line number, so the signed bytes have exactly one meaning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle_int.h"

#define MANIFEST_MAX (1u << 20)

void sfi_bundle_manifest_free(struct sfi_bundle_manifest *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->version);
    free(m->min_sfirun);
    free(m->max_sfirun);
    free(m->entry);
    for (size_t i = 0; i < m->npermits; i++) {
        free(m->permits[i].access);
        free(m->permits[i].param);
    }
    free(m->permits);
    for (size_t i = 0; i < m->nfiles; i++)
        free(m->files[i].path);
    free(m->files);
    free(m);
}

static int in_set(const char *s, size_t n, const char *extra, size_t maxlen)
{
    if (n == 0 || n > maxlen)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

int sfi_bundle_path_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > SFI_BUNDLE_PATH_MAX)
        return 0;
    const char *c = p;
    for (;;) {
        const char *end = strchr(c, '/');
        size_t cl = end ? (size_t)(end - c) : strlen(c);
        if (!in_set(c, cl, "._-", SFI_BUNDLE_PATH_MAX))
            return 0;
        if ((cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (!end)
            return 1;
        c = end + 1;
    }
}

/* dotted decimal: 1 to 4 numbers of at most 6 digits */
static int version_ok(const char *s, size_t n)
{
    size_t parts = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (++digits > 6)
                return 0;
        } else if (s[i] == '.' && digits > 0) {
            digits = 0;
            parts++;
        } else {
            return 0;
        }
    }
    return digits > 0 && parts < 4;
}

int sfi_bundle_vercmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

struct mp {
    struct sfi_ctx *ctx;
    struct sfi_bundle_manifest *m;
    size_t line;
};

static int bad(struct mp *s, const char *why)
{
    return sfi_seterr(s->ctx, SFI_E_FORMAT, "manifest line %zu: %s", s->line, why);
}

static int nomem(struct mp *s)
{
    return sfi_seterr(s->ctx, SFI_E_NOMEM, "manifest");
}

/* Parses the value of "key value" with the exact key into v and vn. */
static int keyed(const char *l, size_t n, const char *key, const char **v, size_t *vn)
{
    size_t k = strlen(key);
    if (n <= k + 1 || memcmp(l, key, k) != 0 || l[k] != ' ')
        return 0;
    *v = l + k + 1;
    *vn = n - k - 1;
    return 1;
}

static int parse_file(struct mp *s, const char *v, size_t vn)
{
    /* <64 hex> <size> <path> */
    if (vn < 68 || v[64] != ' ')
        return bad(s, "expected 'file <sha256> <size> <path>'");
    struct sfi_bundle_file f = {0};
    for (int i = 0; i < 64; i++)
        if (v[i] >= 'A' && v[i] <= 'F')
            return bad(s, "sha256 must be 64 lowercase hex digits");
    if (sfi_hex_decode(v, 32, f.sha256) != 0)
        return bad(s, "sha256 must be 64 lowercase hex digits");
    const char *p = v + 65, *end = v + vn;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp - p > 20 || (p[0] == '0' && sp - p > 1))
        return bad(s, "size must be a decimal number without leading zeros");
    for (const char *c = p; c < sp; c++) {
        if (*c < '0' || *c > '9')
            return bad(s, "size must be a decimal number without leading zeros");
        unsigned d = (unsigned)(*c - '0');
        if (f.size > (UINT64_MAX - d) / 10)
            return bad(s, "size too large");
        f.size = f.size * 10 + d;
    }
    size_t pl = (size_t)(end - sp - 1);
    f.path = dupn(sp + 1, pl);
    if (!f.path)
        return nomem(s);
    if (strlen(f.path) != pl || !sfi_bundle_path_ok(f.path)) {
        free(f.path);
        return bad(s, "member path must be relative with [A-Za-z0-9._-] components");
    }
    if (strcmp(f.path, SFI_BUNDLE_MANIFEST) == 0 || strcmp(f.path, SFI_BUNDLE_SIGNATURE) == 0) {
        free(f.path);
        return bad(s, "the manifest and its signature are not listed");
    }
    struct sfi_bundle_manifest *m = s->m;
    if (m->nfiles && strcmp(m->files[m->nfiles - 1].path, f.path) >= 0) {
        free(f.path);
        return bad(s, "file lines must be sorted by path, without duplicates");
    }
    struct sfi_bundle_file *nf = realloc(m->files, (m->nfiles + 1) * sizeof *nf);
    if (!nf) {
        free(f.path);
        return nomem(s);
    }
    m->files = nf;
    m->files[m->nfiles++] = f;
    return SFI_OK;
}

static int parse_permit(struct mp *s, const char *v, size_t vn)
{
    const char *colon = memchr(v, ':', vn);
    if (!colon)
        return bad(s, "expected 'permit read:<param>' or 'permit write:<param>'");
    size_t al = (size_t)(colon - v), pl = vn - al - 1;
    if (!((al == 4 && memcmp(v, "read", 4) == 0) || (al == 5 && memcmp(v, "write", 5) == 0)))
        return bad(s, "permit access must be 'read' or 'write'");
    if (!in_set(colon + 1, pl, "_", 64) || (colon[1] >= '0' && colon[1] <= '9'))
        return bad(s, "permit parameter must be a name ([A-Za-z_][A-Za-z0-9_]*)");
    struct sfi_bundle_manifest *m = s->m;
    for (size_t i = 0; i < m->npermits; i++)
        if (strlen(m->permits[i].access) == al && memcmp(m->permits[i].access, v, al) == 0 &&
            strlen(m->permits[i].param) == pl && memcmp(m->permits[i].param, colon + 1, pl) == 0)
            return bad(s, "duplicate permit");
    struct sfi_bundle_permit *np = realloc(m->permits, (m->npermits + 1) * sizeof *np);
    if (!np)
        return nomem(s);
    m->permits = np;
    char *a = dupn(v, al), *p = dupn(colon + 1, pl);
    if (!a || !p) {
        free(a);
        free(p);
        return nomem(s);
    }
    m->permits[m->npermits].access = a;
    m->permits[m->npermits].param = p;
    m->npermits++;
    return SFI_OK;
}

static int parse_line(struct mp *s, const char *l, size_t n)
{
    struct sfi_bundle_manifest *m = s->m;
    const char *v;
    size_t vn;
    if (memchr(l, '\r', n) || memchr(l, '\t', n) || memchr(l, 0, n))
        return bad(s, "CR, TAB or NUL in a line");
    if (n == 0 || l[n - 1] == ' ' || l[0] == ' ')
        return bad(s, "empty line or stray space");
    switch (s->line) {
    case 1:
        if (n != 15 || memcmp(l, "sfirun-bundle 1", 15) != 0)
            return bad(s, "expected 'sfirun-bundle 1'");
        return SFI_OK;
    case 2:
        if (!keyed(l, n, "name", &v, &vn) || !in_set(v, vn, "._-", 64))
            return bad(s, "expected 'name <[A-Za-z0-9._-], at most 64>'");
        m->name = dupn(v, vn);
        return m->name ? SFI_OK : nomem(s);
    case 3:
        if (!keyed(l, n, "version", &v, &vn) || !in_set(v, vn, "._+-", 64))
            return bad(s, "expected 'version <[A-Za-z0-9._+-], at most 64>'");
        m->version = dupn(v, vn);
        return m->version ? SFI_OK : nomem(s);
    case 4: {
        const char *sp;
        if (!keyed(l, n, "sfirun", &v, &vn) || vn < 5 || v[0] != '>' || v[1] != '=' ||
            !(sp = memchr(v, ' ', vn)) || sp[1] != '<' || !version_ok(v + 2, (size_t)(sp - v - 2)) ||
            !version_ok(sp + 2, (size_t)(v + vn - sp - 2)))
            return bad(s, "expected 'sfirun >=<min> <<max>' with dotted version numbers");
        m->min_sfirun = dupn(v + 2, (size_t)(sp - v - 2));
        m->max_sfirun = dupn(sp + 2, (size_t)(v + vn - sp - 2));
        if (!m->min_sfirun || !m->max_sfirun)
            return nomem(s);
        if (sfi_bundle_vercmp(m->min_sfirun, m->max_sfirun) >= 0)
            return bad(s, "empty sfirun version range");
        return SFI_OK;
    }
    case 5:
        if (!keyed(l, n, "entry", &v, &vn))
            return bad(s, "expected 'entry <path>'");
        m->entry = dupn(v, vn);
        if (!m->entry)
            return nomem(s);
        if (strlen(m->entry) != vn || !sfi_bundle_path_ok(m->entry))
            return bad(s, "entry must be a member path");
        return SFI_OK;
    default:
        if (keyed(l, n, "permit", &v, &vn)) {
            if (m->nfiles)
                return bad(s, "permit lines come before file lines");
            return parse_permit(s, v, vn);
        }
        if (keyed(l, n, "file", &v, &vn))
            return parse_file(s, v, vn);
        return bad(s, "expected 'permit ...' or 'file ...'");
    }
}

int sfi_bundle_manifest_parse(struct sfi_ctx *ctx, const char *text, size_t len,
                              struct sfi_bundle_manifest **out)
{
    if (len > MANIFEST_MAX)
        return sfi_seterr(ctx, SFI_E_FORMAT, "manifest larger than %u bytes", MANIFEST_MAX);
    if (len == 0 || text[len - 1] != '\n')
        return sfi_seterr(ctx, SFI_E_FORMAT, "manifest must end with a newline");
    struct mp s = {ctx, calloc(1, sizeof(struct sfi_bundle_manifest)), 0};
    if (!s.m)
        return nomem(&s);
    int rc = SFI_OK;
    const char *p = text, *end = text + len;
    while (p < end && rc == SFI_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        s.line++;
        rc = parse_line(&s, p, (size_t)(nl - p));
        p = nl + 1;
    }
    if (rc == SFI_OK && s.m->nfiles == 0)
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "manifest: %s", s.line < 5 ? "truncated header"
                                                                      : "no file lines");
    if (rc == SFI_OK) {
        int found = 0;
        for (size_t i = 0; i < s.m->nfiles && !found; i++)
            found = strcmp(s.m->files[i].path, s.m->entry) == 0;
        if (!found)
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "manifest: entry '%s' is not a listed file",
                            s.m->entry);
    }
    if (rc != SFI_OK) {
        sfi_bundle_manifest_free(s.m);
        return rc;
    }
    *out = s.m;
    return SFI_OK;
}
