/* archive.c: the libarchive side of bundles: a raw writer (any entry kind, used by the
 * bundle writer and by tests building hostile archives) and a reader that works only in
 * memory, validates every name and kind itself (libarchive's SECURE_* flags only apply to
 * disk extraction) and counts the bytes it really decompresses against the limits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "bundle/bundle_int.h"

#define DEF_MAX_MEMBER (16u << 20)
#define DEF_MAX_TOTAL (64u << 20)
#define DEF_MAX_MEMBERS 4096u

/* ---- writing ------------------------------------------------------------------------ */

struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int nomem;
};

static la_ssize_t w_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct wbuf *w = ud;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p) {
            w->nomem = 1;
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, buf, n);
    w->len += n;
    return (la_ssize_t)n;
}

static int w_entry(struct sfi_ctx *ctx, struct archive *a, const struct sfi_archive_entry *e)
{
    static const unsigned char zeros[65536];
    struct archive_entry *ae = archive_entry_new();
    if (!ae)
        return sfi_seterr(ctx, SFI_E_NOMEM, "archive entry");
    archive_entry_set_pathname(ae, e->path);
    archive_entry_set_mtime(ae, 0, 0);
    archive_entry_set_perm(ae, 0644);
    size_t size = 0;
    switch (e->kind) {
    case SFI_AK_FILE:
        archive_entry_set_filetype(ae, AE_IFREG);
        size = e->size;
        break;
    case SFI_AK_DIR:
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_perm(ae, 0755);
        break;
    case SFI_AK_SYMLINK:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e->link ? e->link : "");
        break;
    case SFI_AK_HARDLINK:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e->link ? e->link : "");
        break;
    case SFI_AK_CHARDEV:
        archive_entry_set_filetype(ae, AE_IFCHR);
        archive_entry_set_rdev(ae, 0x0103);
        break;
    case SFI_AK_FIFO:
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    }
    archive_entry_set_size(ae, (la_int64_t)size);
    int rc = SFI_OK;
    if (archive_write_header(a, ae) < ARCHIVE_WARN) {
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s: %s", e->path, archive_error_string(a));
    } else {
        size_t done = 0;
        while (done < size) {
            size_t n = size - done;
            const void *src;
            if (e->data) {
                src = (const unsigned char *)e->data + done;
            } else {
                src = zeros;
                if (n > sizeof zeros)
                    n = sizeof zeros;
            }
            la_ssize_t w = archive_write_data(a, src, n);
            if (w <= 0) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s: %s", e->path, archive_error_string(a));
                break;
            }
            done += (size_t)w;
        }
    }
    archive_entry_free(ae);
    return rc;
}

int sfi_archive_write(struct sfi_ctx *ctx, const struct sfi_archive_entry *entries, size_t n,
                      enum sfi_archive_format fmt, unsigned char **out, size_t *outlen)
{
    for (size_t i = 0; i < n; i++)
        if (!entries[i].path || (entries[i].kind == SFI_AK_FILE && !entries[i].data &&
                                 entries[i].size > ((size_t)1 << 32)))
            return sfi_seterr(ctx, SFI_E_INVALID, "archive entry %zu", i + 1);
    struct archive *a = archive_write_new();
    if (!a)
        return sfi_seterr(ctx, SFI_E_NOMEM, "archive writer");
    int r;
    if (fmt == SFI_ARCHIVE_ZIP) {
        r = archive_write_set_format_zip(a);
        if (r == ARCHIVE_OK)
            r = archive_write_zip_set_compression_deflate(a);
    } else {
        r = archive_write_set_format_pax_restricted(a);
        if (r == ARCHIVE_OK && fmt == SFI_ARCHIVE_TGZ) {
            r = archive_write_add_filter_gzip(a);
            /* no name or time in the gzip header: the same input gives the same bytes */
            if (r == ARCHIVE_OK)
                r = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
        }
    }
    if (r == ARCHIVE_OK) /* no padding to a 10 KiB block */
        r = archive_write_set_bytes_in_last_block(a, 1);
    struct wbuf w = {0};
    if (r == ARCHIVE_OK)
        r = archive_write_open2(a, &w, NULL, w_write, NULL, NULL);
    int rc = SFI_OK;
    if (r != ARCHIVE_OK)
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "archive writer: %s", archive_error_string(a));
    for (size_t i = 0; rc == SFI_OK && i < n; i++)
        rc = w_entry(ctx, a, &entries[i]);
    if (rc == SFI_OK && archive_write_close(a) != ARCHIVE_OK)
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "archive writer: %s", archive_error_string(a));
    archive_write_free(a);
    if (rc == SFI_OK && w.nomem)
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "archive");
    if (rc != SFI_OK) {
        free(w.p);
        return rc;
    }
    *out = w.p ? w.p : malloc(1);
    *outlen = w.len;
    return *out ? SFI_OK : sfi_seterr(ctx, SFI_E_NOMEM, "archive");
}

/* ---- reading ------------------------------------------------------------------------ */

void sfi_members_free(struct sfi_member *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].path);
        free(m[i].data);
    }
    free(m);
}

static const char *kind_name(unsigned type)
{
    switch (type) {
    case AE_IFDIR: return "a directory";
    case AE_IFLNK: return "a symbolic link";
    case AE_IFCHR: return "a character device";
    case AE_IFBLK: return "a block device";
    case AE_IFIFO: return "a FIFO";
    case AE_IFSOCK: return "a socket";
    default: return "not a regular file";
    }
}

/* Why a name is refused, or NULL. */
static const char *bad_name(const char *p)
{
    if (!p || !*p)
        return "empty name";
    if (p[0] == '/')
        return "absolute path";
    if (strchr(p, '\\'))
        return "backslash in name";
    for (const char *c = p; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "'..' component";
        if (!end)
            break;
        c = end + 1;
    }
    if (!sfi_bundle_path_ok(p))
        return "name outside [A-Za-z0-9._-] components";
    return NULL;
}

static int read_members(struct sfi_ctx *ctx, struct archive *a,
                        const struct sfi_bundle_limits *lim, struct sfi_member **out,
                        size_t *count)
{
    struct sfi_member *m = NULL;
    size_t n = 0, cap = 0, total = 0;
    int rc = SFI_OK;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "archive entry %zu: %s", n + 1,
                            archive_error_string(a));
            break;
        }
        const char *p = archive_entry_pathname(e);
        char shown[64];
        snprintf(shown, sizeof shown, "%s", p ? p : "(no name)");
        const char *why = p ? bad_name(p) : "empty name";
        if (why) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': %s", shown, why);
            break;
        }
        if (archive_entry_hardlink(e)) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': a hard link", shown);
            break;
        }
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_symlink(e)) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': %s", shown,
                            kind_name(archive_entry_filetype(e)));
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(m[i].path, p) == 0) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': duplicate name", shown);
                break;
            }
        if (rc != SFI_OK)
            break;
        if (n == lim->max_members) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "more than %zu members", lim->max_members);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct sfi_member *nm = realloc(m, nc * sizeof *nm);
            if (!nm) {
                rc = sfi_seterr(ctx, SFI_E_NOMEM, "archive members");
                break;
            }
            m = nm;
            cap = nc;
        }
        struct sfi_member *cur = &m[n];
        cur->path = strdup(p);
        cur->data = NULL;
        cur->size = 0;
        n++;
        if (!cur->path) {
            rc = sfi_seterr(ctx, SFI_E_NOMEM, "archive members");
            break;
        }
        /* The header size is not trusted: count what really comes out. */
        size_t dcap = 0;
        for (;;) {
            unsigned char buf[16384];
            la_ssize_t got = archive_read_data(a, buf, sizeof buf);
            if (got == 0)
                break;
            if (got < 0) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': %s", shown,
                                archive_error_string(a));
                break;
            }
            if ((size_t)got > lim->max_member - cur->size) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT, "member '%s': larger than the limit of %zu bytes",
                                shown, lim->max_member);
                break;
            }
            if ((size_t)got > lim->max_total - total) {
                rc = sfi_seterr(ctx, SFI_E_FORMAT,
                                "member '%s': the members exceed the total limit of %zu bytes",
                                shown, lim->max_total);
                break;
            }
            if (cur->size + (size_t)got > dcap) {
                size_t nc = dcap ? dcap : 16384;
                while (nc < cur->size + (size_t)got)
                    nc *= 2;
                unsigned char *nd = realloc(cur->data, nc);
                if (!nd) {
                    rc = sfi_seterr(ctx, SFI_E_NOMEM, "member '%s'", shown);
                    break;
                }
                cur->data = nd;
                dcap = nc;
            }
            memcpy(cur->data + cur->size, buf, (size_t)got);
            cur->size += (size_t)got;
            total += (size_t)got;
        }
        if (rc != SFI_OK)
            break;
        if (!cur->data) {
            cur->data = malloc(1);
            if (!cur->data) {
                rc = sfi_seterr(ctx, SFI_E_NOMEM, "member '%s'", shown);
                break;
            }
        }
    }
    if (rc != SFI_OK) {
        sfi_members_free(m, n);
        return rc;
    }
    *out = m;
    *count = n;
    return SFI_OK;
}

int sfi_archive_read(struct sfi_ctx *ctx, const void *data, size_t len,
                     const struct sfi_bundle_limits *limits, struct sfi_member **out, size_t *n,
                     const char **format)
{
    struct sfi_bundle_limits lim = {DEF_MAX_MEMBER, DEF_MAX_TOTAL, DEF_MAX_MEMBERS};
    if (limits) {
        if (limits->max_member)
            lim.max_member = limits->max_member;
        if (limits->max_total)
            lim.max_total = limits->max_total;
        if (limits->max_members)
            lim.max_members = limits->max_members;
    }
    struct archive *a = archive_read_new();
    if (!a)
        return sfi_seterr(ctx, SFI_E_NOMEM, "archive reader");
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    int rc;
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "not a tar.gz or zip bundle: %s",
                        archive_error_string(a));
    } else {
        rc = read_members(ctx, a, &lim, out, n);
        if (rc == SFI_OK) {
            int zip = archive_format(a) == ARCHIVE_FORMAT_ZIP ||
                      (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP;
            int gz = archive_filter_code(a, 0) == ARCHIVE_FILTER_GZIP;
            *format = zip ? "zip" : gz ? "tar.gz" : "tar";
        }
    }
    archive_read_free(a);
    return rc;
}
