/* bundle.c: signed recipe bundles: the writer (manifest + detached signature + members in
 * one reproducible archive) and the verifying reader, which trusts nothing before the
 * signature over the manifest and every member's size and SHA-256 have been checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle_int.h"

struct sfi_bundle {
    struct sfi_member *members;
    size_t nmembers;
    struct sfi_bundle_manifest *manifest;
    char signer[65];
    const char *format;
};

/* ---- a small growing text buffer ---------------------------------------------------- */

struct tbuf {
    char *p;
    size_t len, cap;
    int nomem;
};

static void tput(struct tbuf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void tputs(struct tbuf *b, const char *s)
{
    tput(b, s, strlen(s));
}

/* ---- the signature member ----------------------------------------------------------- */

/* "sfirun-signature 1\nkey <hex DER SPKI>\nsig <hex signature>\n" */
static int sig_text(struct tbuf *b, const unsigned char *spki, size_t sl,
                    const unsigned char *sig, size_t gl)
{
    char *hex = malloc(2 * (sl > gl ? sl : gl) + 1);
    if (!hex)
        return SFI_E_NOMEM;
    tputs(b, "sfirun-signature 1\nkey ");
    sfi_hex_str(spki, sl, hex);
    tputs(b, hex);
    tputs(b, "\nsig ");
    sfi_hex_str(sig, gl, hex);
    tputs(b, hex);
    tputs(b, "\n");
    free(hex);
    return b->nomem ? SFI_E_NOMEM : SFI_OK;
}

static int unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v << 4 | d;
        }
        out[i] = (unsigned char)v;
    }
    return (n % 2) ? -1 : 0;
}

/* Splits the signature member; spki and sig point into buf (decoded in place). */
static int sig_parse(struct sfi_ctx *ctx, unsigned char *buf, size_t len, unsigned char **spki,
                     size_t *sl, unsigned char **sig, size_t *gl)
{
    static const char head[] = "sfirun-signature 1\nkey ";
    const char *t = (const char *)buf;
    if (len > 4096 || len < sizeof head || memcmp(t, head, sizeof head - 1) != 0 ||
        t[len - 1] != '\n')
        return sfi_seterr(ctx, SFI_E_AUTH, "manifest.sig: not a sfirun signature");
    const char *k = t + sizeof head - 1;
    const char *nl = memchr(k, '\n', len - (sizeof head - 1));
    if (!nl || (size_t)(t + len - nl) < 6 || memcmp(nl, "\nsig ", 5) != 0)
        return sfi_seterr(ctx, SFI_E_AUTH, "manifest.sig: not a sfirun signature");
    const char *g = nl + 5;
    size_t kn = (size_t)(nl - k), gn = (size_t)(t + len - 1 - g);
    if (kn == 0 || gn == 0 || memchr(g, '\n', gn) || unhex(k, kn, buf) != 0)
        return sfi_seterr(ctx, SFI_E_AUTH, "manifest.sig: malformed key or signature");
    /* decode the signature after the key's bytes (both shrink to half) */
    unsigned char *gout = buf + kn / 2;
    if (unhex(g, gn, gout) != 0)
        return sfi_seterr(ctx, SFI_E_AUTH, "manifest.sig: malformed key or signature");
    *spki = buf;
    *sl = kn / 2;
    *sig = gout;
    *gl = gn / 2;
    return SFI_OK;
}

/* ---- writer ------------------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct sfi_archive_entry *)a)->path,
                   ((const struct sfi_archive_entry *)b)->path);
}

static int cmp_input(const void *a, const void *b)
{
    return strcmp((*(const struct sfi_bundle_input *const *)a)->path,
                  (*(const struct sfi_bundle_input *const *)b)->path);
}

static int manifest_text(struct sfi_ctx *ctx, const struct sfi_bundle_spec *s,
                         const struct sfi_bundle_input **sorted, struct tbuf *b)
{
    char line[64];
    tputs(b, "sfirun-bundle 1\nname ");
    tputs(b, s->name);
    tputs(b, "\nversion ");
    tputs(b, s->version);
    tputs(b, "\nsfirun >=");
    tputs(b, s->min_sfirun);
    tputs(b, " <");
    tputs(b, s->max_sfirun);
    tputs(b, "\nentry ");
    tputs(b, s->entry);
    tputs(b, "\n");
    for (size_t i = 0; i < s->npermits; i++) {
        tputs(b, "permit ");
        tputs(b, s->permits[i]);
        tputs(b, "\n");
    }
    for (size_t i = 0; i < s->nfiles; i++) {
        unsigned char md[32];
        char hex[65];
        int rc = sfi_bsign_sha256(ctx, sorted[i]->data, sorted[i]->size, md);
        if (rc != SFI_OK)
            return rc;
        sfi_hex_str(md, 32, hex);
        tputs(b, "file ");
        tputs(b, hex);
        snprintf(line, sizeof line, " %zu ", sorted[i]->size);
        tputs(b, line);
        tputs(b, sorted[i]->path);
        tputs(b, "\n");
    }
    return b->nomem ? sfi_seterr(ctx, SFI_E_NOMEM, "manifest") : SFI_OK;
}

int sfi_bundle_create(struct sfi_ctx *ctx, const struct sfi_bundle_spec *s, unsigned char **out,
                      size_t *outlen)
{
    if (!s->name || !s->version || !s->min_sfirun || !s->max_sfirun || !s->entry ||
        (!s->key_pem == !s->key_uri) || (s->nfiles && !s->files) || (s->npermits && !s->permits))
        return sfi_seterr(ctx, SFI_E_INVALID, "bundle spec: missing field");
    for (size_t i = 0; i < s->nfiles; i++)
        if (!s->files[i].path || (!s->files[i].data && s->files[i].size))
            return sfi_seterr(ctx, SFI_E_INVALID, "bundle spec: file %zu", i + 1);
    for (size_t i = 0; i < s->npermits; i++)
        if (!s->permits[i] || strchr(s->permits[i], '\n'))
            return sfi_seterr(ctx, SFI_E_INVALID, "bundle spec: permit %zu", i + 1);
    const char *strs[] = {s->name, s->version, s->min_sfirun, s->max_sfirun, s->entry};
    for (size_t i = 0; i < 5; i++)
        if (strchr(strs[i], '\n'))
            return sfi_seterr(ctx, SFI_E_INVALID, "bundle spec: newline in '%s'", strs[i]);

    /* an array of pointers: sizeof *sorted is the pointer size, as meant */
    const struct sfi_bundle_input **sorted =
        calloc(s->nfiles + 1, sizeof *sorted); /* NOLINT(bugprone-sizeof-expression) */
    struct sfi_archive_entry *ents = calloc(s->nfiles + 2, sizeof *ents);
    struct tbuf man = {0}, sig = {0};
    unsigned char *raw = NULL, *spki = NULL;
    size_t rawlen = 0, spkilen = 0;
    struct sfi_bundle_manifest *check = NULL;
    int rc = SFI_OK;
    if (!sorted || !ents) {
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "bundle");
        goto done;
    }
    for (size_t i = 0; i < s->nfiles; i++)
        sorted[i] = &s->files[i];
    qsort(sorted, s->nfiles, sizeof *sorted, cmp_input); /* NOLINT(bugprone-sizeof-expression) */
    rc = manifest_text(ctx, s, sorted, &man);
    if (rc != SFI_OK)
        goto done;
    /* The reader's parser is the validator: what we sign must parse back. */
    rc = sfi_bundle_manifest_parse(ctx, man.p, man.len, &check);
    if (rc == SFI_E_FORMAT) {
        char why[256];
        snprintf(why, sizeof why, "%s", sfi_errdetail(ctx));
        rc = sfi_seterr(ctx, SFI_E_INVALID, "bundle spec: %s", why);
    }
    if (rc != SFI_OK)
        goto done;
    if (s->key_uri)
        rc = sfi_bsign_sign_p11(ctx, s->key_uri, man.p, man.len, &raw, &rawlen, &spki, &spkilen);
    else
        rc = sfi_bsign_sign(ctx, s->key_pem, s->key_len, man.p, man.len, &raw, &rawlen, &spki,
                            &spkilen);
    if (rc != SFI_OK)
        goto done;
    if (s->signer_out) {
        unsigned char md[32];
        rc = sfi_bsign_sha256(ctx, spki, spkilen, md);
        if (rc != SFI_OK)
            goto done;
        sfi_hex_str(md, 32, s->signer_out);
    }
    if (sig_text(&sig, spki, spkilen, raw, rawlen) != SFI_OK) {
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "signature");
        goto done;
    }
    for (size_t i = 0; i < s->nfiles; i++)
        ents[i] = (struct sfi_archive_entry){.path = sorted[i]->path, .kind = SFI_AK_FILE,
                                             .data = sorted[i]->data ? sorted[i]->data : "",
                                             .size = sorted[i]->size};
    ents[s->nfiles] = (struct sfi_archive_entry){.path = SFI_BUNDLE_MANIFEST, .data = man.p,
                                                 .size = man.len};
    ents[s->nfiles + 1] = (struct sfi_archive_entry){.path = SFI_BUNDLE_SIGNATURE,
                                                     .data = sig.p, .size = sig.len};
    qsort(ents, s->nfiles + 2, sizeof *ents, cmp_entry);
    rc = sfi_archive_write(ctx, ents, s->nfiles + 2, s->format, out, outlen);
done:
    sfi_bundle_manifest_free(check);
    free(sorted);
    free(ents);
    free(man.p);
    free(sig.p);
    free(raw);
    free(spki);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------- */

static struct sfi_member *find(struct sfi_member *m, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].path, path) == 0)
            return &m[i];
    return NULL;
}

static int listed(const struct sfi_bundle_manifest *man, const char *path)
{
    size_t lo = 0, hi = man->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(man->files[mid].path, path);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int verify(struct sfi_ctx *ctx, struct sfi_bundle *b, const char *trust_pem,
                  size_t trust_len)
{
    struct sfi_member *man = find(b->members, b->nmembers, SFI_BUNDLE_MANIFEST);
    struct sfi_member *sig = find(b->members, b->nmembers, SFI_BUNDLE_SIGNATURE);
    if (!man)
        return sfi_seterr(ctx, SFI_E_FORMAT, "not a sfirun bundle: no member 'manifest'");
    if (!sig)
        return sfi_seterr(ctx, SFI_E_AUTH, "manifest.sig: missing (unsigned bundle)");
    unsigned char *copy = malloc(sig->size + 1);
    if (!copy)
        return sfi_seterr(ctx, SFI_E_NOMEM, "signature");
    memcpy(copy, sig->data, sig->size);
    unsigned char *spki = NULL, *sg = NULL; /* set by sig_parse on success (gcc -O2 cannot */
    size_t sl = 0, gl = 0;                  /* see that its errors are never SFI_OK) */
    int rc = sig_parse(ctx, copy, sig->size, &spki, &sl, &sg, &gl);
    if (rc == SFI_OK)
        rc = sfi_bsign_verify(ctx, trust_pem, trust_len, spki, sl, man->data, man->size, sg, gl,
                              b->signer);
    free(copy);
    if (rc != SFI_OK)
        return rc;
    rc = sfi_bundle_manifest_parse(ctx, (const char *)man->data, man->size, &b->manifest);
    if (rc != SFI_OK)
        return rc;
    const struct sfi_bundle_manifest *m = b->manifest;
    for (size_t i = 0; i < b->nmembers; i++) {
        const char *p = b->members[i].path;
        if (strcmp(p, SFI_BUNDLE_MANIFEST) != 0 && strcmp(p, SFI_BUNDLE_SIGNATURE) != 0 &&
            !listed(m, p))
            return sfi_seterr(ctx, SFI_E_AUTH, "member '%s' is not listed in the manifest", p);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct sfi_bundle_file *f = &m->files[i];
        struct sfi_member *mem = find(b->members, b->nmembers, f->path);
        if (!mem)
            return sfi_seterr(ctx, SFI_E_AUTH, "member '%s' is listed in the manifest but "
                                               "missing from the archive", f->path);
        unsigned char md[32];
        if (mem->size != f->size)
            return sfi_seterr(ctx, SFI_E_AUTH, "member '%s': size %zu, the manifest says %llu",
                              f->path, mem->size, (unsigned long long)f->size);
        rc = sfi_bsign_sha256(ctx, mem->data, mem->size, md);
        if (rc != SFI_OK)
            return rc;
        if (memcmp(md, f->sha256, 32) != 0)
            return sfi_seterr(ctx, SFI_E_AUTH, "member '%s': SHA-256 does not match the manifest",
                              f->path);
    }
    const char *v = sfi_version();
    if (sfi_bundle_vercmp(v, m->min_sfirun) < 0 || sfi_bundle_vercmp(v, m->max_sfirun) >= 0)
        return sfi_seterr(ctx, SFI_E_UNSUPPORTED,
                          "bundle '%s' %s needs sfirun >=%s <%s; this is sfirun %s", m->name,
                          m->version, m->min_sfirun, m->max_sfirun, v);
    return SFI_OK;
}

int sfi_bundle_open(struct sfi_ctx *ctx, const void *data, size_t len, const char *trust_pem,
                    size_t trust_len, const struct sfi_bundle_limits *limits,
                    struct sfi_bundle **out)
{
    if (!data || !trust_pem)
        return sfi_seterr(ctx, SFI_E_INVALID, "bundle: no data or no trust key");
    struct sfi_bundle *b = calloc(1, sizeof *b);
    if (!b)
        return sfi_seterr(ctx, SFI_E_NOMEM, "bundle");
    int rc = sfi_archive_read(ctx, data, len, limits, &b->members, &b->nmembers, &b->format);
    if (rc == SFI_OK)
        rc = verify(ctx, b, trust_pem, trust_len);
    if (rc != SFI_OK) {
        sfi_bundle_free(b);
        return rc;
    }
    *out = b;
    return SFI_OK;
}

void sfi_bundle_free(struct sfi_bundle *b)
{
    if (!b)
        return;
    sfi_members_free(b->members, b->nmembers);
    sfi_bundle_manifest_free(b->manifest);
    free(b);
}

const struct sfi_bundle_manifest *sfi_bundle_get_manifest(const struct sfi_bundle *b)
{
    return b->manifest;
}

const char *sfi_bundle_signer(const struct sfi_bundle *b)
{
    return b->signer;
}

const char *sfi_bundle_format(const struct sfi_bundle *b)
{
    return b->format;
}

int sfi_bundle_member(const struct sfi_bundle *b, const char *path, const void **data,
                      size_t *size)
{
    for (size_t i = 0; i < b->nmembers; i++)
        if (strcmp(b->members[i].path, path) == 0) {
            *data = b->members[i].data;
            *size = b->members[i].size;
            return SFI_OK;
        }
    return SFI_E_NOT_FOUND;
}
