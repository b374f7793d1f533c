/* fw.c: firmware segment sets (what the loaders produce and the builder consumes): append,
 * merge and overlap checks, the raw-binary loader (which borrows the caller's buffer instead
 * of copying it), loader selection by content, and the atomic file writer (temporary file +
 * rename) used for every output. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fw_int.h"

void sfi_fw_init(struct sfi_fw *fw)
{
    memset(fw, 0, sizeof *fw);
}

/* A segment owns its bytes when cap > 0; cap == 0 with data set borrows the caller's buffer
 * (raw binaries: no copy). Owned storage is allocated on the first write into a segment. */
static void seg_release(struct sfi_fw_seg *s)
{
    if (s->cap)
        free(s->data);
    s->data = NULL;
    s->cap = 0;
}

/* Sets the capacity to exactly cap (>= len), copying borrowed bytes into owned storage. */
static int seg_resize(struct sfi_fw_seg *s, size_t cap)
{
    uint8_t *p;
    if (s->cap == 0 && s->data) {
        p = malloc(cap);
        if (p)
            memcpy(p, s->data, s->len);
    } else {
        p = realloc(s->data, cap);
    }
    if (!p)
        return SFI_E_NOMEM;
    s->data = p;
    s->cap = cap;
    return SFI_OK;
}

void sfi_fw_free(struct sfi_fw *fw)
{
    if (!fw)
        return;
    for (size_t i = 0; i < fw->n; i++)
        seg_release(&fw->seg[i]);
    free(fw->seg);
    memset(fw, 0, sizeof *fw);
}

void sfi_fw_truncate(struct sfi_fw *fw, size_t n)
{
    for (size_t i = n; i < fw->n; i++)
        seg_release(&fw->seg[i]);
    if (n < fw->n)
        fw->n = n;
}

static int check_span(struct sfi_ctx *ctx, const char *name, uint32_t addr, size_t len)
{
    if ((uint64_t)addr + len > 0x100000000ull)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: data at 0x%08lX (+%zu) passes 4 GiB", name,
                          (unsigned long)addr, len);
    return SFI_OK;
}

static struct sfi_fw_seg *seg_new(struct sfi_ctx *ctx, struct sfi_fw *fw, size_t first,
                                  const char *name, uint32_t addr)
{
    if (fw->n == fw->cap || fw->seg == NULL) {
        size_t cap = fw->cap ? fw->cap * 2 : 8;
        struct sfi_fw_seg *p = realloc(fw->seg, cap * sizeof *p);
        if (!p) {
            sfi_seterr(ctx, SFI_E_NOMEM, "segments");
            return NULL;
        }
        fw->seg = p;
        fw->cap = cap;
    }
    struct sfi_fw_seg *s = &fw->seg[fw->n++];
    memset(s, 0, sizeof *s);
    s->addr = addr;
    snprintf(s->name, sizeof s->name, "%s segment %zu", name, fw->n - first);
    return s;
}

int sfi_fw_put(struct sfi_ctx *ctx, struct sfi_fw *fw, size_t first, const char *name,
               uint32_t addr, const uint8_t *data, size_t len)
{
    if (len == 0)
        return SFI_OK;
    int rc = check_span(ctx, name, addr, len);
    if (rc)
        return rc;
    struct sfi_fw_seg *s = fw->n > first ? &fw->seg[fw->n - 1] : NULL;
    if (!s || (uint64_t)s->addr + s->len != addr) {
        s = seg_new(ctx, fw, first, name, addr);
        if (!s)
            return SFI_E_NOMEM;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + len)
            cap *= 2;
        if (seg_resize(s, cap))
            return sfi_seterr(ctx, SFI_E_NOMEM, "%s: %zu bytes", name, cap);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return SFI_OK;
}

/* The segment borrows buf (no copy): buf must outlive fw (until sfi_fw_free). */
int sfi_fw_load_bin(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                    const uint8_t *buf, size_t len, uint32_t addr)
{
    if (len == 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: empty file", name);
    int rc = check_span(ctx, name, addr, len);
    if (rc)
        return rc;
    struct sfi_fw_seg *s = seg_new(ctx, fw, fw->n, name, addr);
    if (!s)
        return SFI_E_NOMEM;
    s->data = (uint8_t *)buf;
    s->len = len;
    return SFI_OK;
}

int sfi_fw_load_auto(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                     const uint8_t *buf, size_t len, int has_addr, uint32_t addr)
{
    if (has_addr)
        return sfi_fw_load_bin(ctx, fw, name, buf, len, addr);
    if (len >= 4 && memcmp(buf, "\x7f" "ELF", 4) == 0)
        return sfi_fw_load_elf(ctx, fw, name, buf, len);
    if (len >= 1 && buf[0] == ':')
        return sfi_fw_load_ihex(ctx, fw, name, buf, len);
    if (len >= 2 && buf[0] == 'S' && buf[1] >= '0' && buf[1] <= '9')
        return sfi_fw_load_srec(ctx, fw, name, buf, len);
    return sfi_seterr(ctx, SFI_E_FORMAT,
                      "%s: not ELF, Intel HEX or S-record; a raw binary needs an address", name);
}

static int seg_cmp(const void *a, const void *b)
{
    const struct sfi_fw_seg *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int sfi_fw_merge(struct sfi_ctx *ctx, struct sfi_fw *fw)
{
    size_t k = 0;
    for (size_t i = 0; i < fw->n; i++) {
        if (fw->seg[i].len)
            fw->seg[k++] = fw->seg[i];
        else
            seg_release(&fw->seg[i]);
    }
    fw->n = k;
    if (fw->n == 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "no firmware data: the image would be empty");
    qsort(fw->seg, fw->n, sizeof *fw->seg, seg_cmp);
    for (size_t i = 1; i < fw->n; i++) {
        const struct sfi_fw_seg *a = &fw->seg[i - 1], *b = &fw->seg[i];
        if ((uint64_t)a->addr + a->len > b->addr)
            return sfi_seterr(ctx, SFI_E_FORMAT,
                              "%s [0x%08lX..0x%08llX) overlaps %s [0x%08lX..0x%08llX)",
                              a->name, (unsigned long)a->addr,
                              (unsigned long long)a->addr + a->len, b->name,
                              (unsigned long)b->addr, (unsigned long long)b->addr + b->len);
    }
    /* join touching segments (the first one's name stays) */
    k = 0;
    for (size_t i = 0; i < fw->n; i++) {
        struct sfi_fw_seg *d = k ? &fw->seg[k - 1] : NULL;
        struct sfi_fw_seg *s = &fw->seg[i];
        if (d && (uint64_t)d->addr + d->len == s->addr) {
            if (d->len + s->len > d->cap && seg_resize(d, d->len + s->len))
                return sfi_seterr(ctx, SFI_E_NOMEM, "merging segments");
            memcpy(d->data + d->len, s->data, s->len);
            d->len += s->len;
            seg_release(s);
        } else {
            fw->seg[k++] = *s;
        }
    }
    fw->n = k;
    return SFI_OK;
}

int sfi_file_write_atomic(struct sfi_ctx *ctx, const char *path, const uint8_t *buf, size_t len,
                          int exclusive)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp)
        return sfi_seterr(ctx, SFI_E_NOMEM, "path");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    if (exclusive && access(path, F_OK) == 0) {
        free(tmp);
        return sfi_seterr(ctx, SFI_E_IO, "%s: already exists (not overwritten)", path);
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return sfi_seterr(ctx, e == EACCES ? SFI_E_ACCESS : SFI_E_IO, "%s: %s", path,
                          strerror(e));
    }
    size_t done = 0;
    int rc = SFI_OK;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = sfi_seterr(ctx, SFI_E_IO, "%s: write: %s", path, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (rc == SFI_OK && fsync(fd) != 0)
        rc = sfi_seterr(ctx, SFI_E_IO, "%s: fsync: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == SFI_OK)
        rc = sfi_seterr(ctx, SFI_E_IO, "%s: close: %s", path, strerror(errno));
    if (rc == SFI_OK) {
        if (exclusive) {
            if (link(tmp, path) != 0)
                rc = sfi_seterr(ctx, SFI_E_IO, "%s: %s", path, strerror(errno));
            unlink(tmp);
        } else if (rename(tmp, path) != 0) {
            rc = sfi_seterr(ctx, SFI_E_IO, "%s: rename: %s", path, strerror(errno));
        }
    }
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}
