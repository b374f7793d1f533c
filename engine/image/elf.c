/* elf.c: ELF32 little-endian loader: one segment per PT_LOAD program header with file data,
 * placed at its physical address (p_paddr, the load address in flash). Errors name the file
 * and the program header. Bounds are checked against the file before any read. */
#include <stdio.h>
#include <string.h>

#include "fw_int.h"
#include "sfi/bytes.h"

int sfi_fw_load_elf(struct sfi_ctx *ctx, struct sfi_fw *fw, const char *name,
                    const uint8_t *buf, size_t len)
{
    if (len < 52 || memcmp(buf, "\x7f" "ELF", 4) != 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: not an ELF file (header truncated or bad magic)",
                          name);
    if (buf[4] != 1 || buf[5] != 1)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: only ELF32 little-endian is supported "
                          "(class %u, data %u)", name, buf[4], buf[5]);
    uint32_t phoff = sfi_get_le32(buf + 28);
    uint16_t phentsize = sfi_get_le16(buf + 42), phnum = sfi_get_le16(buf + 44);
    if (phnum == 0)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: no program headers", name);
    if (phentsize < 32 || (uint64_t)phoff + (uint64_t)phentsize * phnum > len)
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s: program header table at 0x%lX runs past the "
                          "end of the file", name, (unsigned long)phoff);
    size_t first = fw->n;
    int rc = SFI_OK;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = buf + phoff + (size_t)i * phentsize;
        if (sfi_get_le32(ph) != 1 /* PT_LOAD */)
            continue;
        uint32_t off = sfi_get_le32(ph + 4), paddr = sfi_get_le32(ph + 12);
        uint32_t filesz = sfi_get_le32(ph + 16);
        if (filesz == 0)
            continue;
        if ((uint64_t)off + filesz > len) {
            rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s: program header %u: data [0x%lX+%lu) runs "
                            "past the end of the file", name, i, (unsigned long)off,
                            (unsigned long)filesz);
            goto fail;
        }
        /* each PT_LOAD is its own segment, named by its program header */
        size_t before = fw->n;
        rc = sfi_fw_put(ctx, fw, fw->n, name, paddr, buf + off, filesz);
        if (rc)
            goto fail;
        if (fw->n > before) {
            char *nm = fw->seg[fw->n - 1].name;
            size_t cap = sizeof fw->seg[0].name;
            snprintf(nm, cap, "%s program header %u", name, i);
        }
    }
    if (fw->n == first) {
        rc = sfi_seterr(ctx, SFI_E_FORMAT, "%s: no PT_LOAD segment with data", name);
        goto fail;
    }
    return SFI_OK;
fail:
    sfi_fw_truncate(fw, first);
    return rc;
}
