/* state.c: the simulated chip's state file: flash contents, the programmed-word map, the
 * option window, identity and RSS security state, with a CRC-32 trailer. Loaded on open,
 * written atomically (temp file + rename). Layout (little-endian):
 * "SFISIM01" u32 version=1 dev_id flash_bytes flash_word, u32 ob[77], u8 has_id, priv[32],
 * cert[136], secstate[64], u8 prog[flash_bytes/flash_word], flash[flash_bytes], u32 crc32. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfi/bytes.h"
#include "sim_int.h"

#define MAGIC "SFISIM01"
#define HDR (8 + 4 * 4)
#define FIXED (HDR + 4 * SFI_SIM_OB_WORDS + 1 + SFI_SIM_PRIV_SIZE + SFI_SIM_CERT_SIZE + \
               SFI_SIM_SECSTATE_SIZE)

uint32_t sim_crc32(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static size_t state_size(const struct sfi_sim *sim)
{
    return FIXED + sim->nwords + sim->flash_bytes + 4;
}

static int bad(struct sfi_sim *sim, const char *what)
{
    return sfi_seterr(sim->ctx, SFI_E_FORMAT, "sim state: %s", what);
}

int sfi_sim_load_state(struct sfi_sim *sim, const uint8_t *buf, size_t n)
{
    if (n < HDR || memcmp(buf, MAGIC, 8) != 0)
        return bad(sim, "not a simulator state file (bad magic)");
    if (sfi_get_le32(buf + 8) != 1)
        return bad(sim, "unsupported version");
    if (sfi_get_le32(buf + 12) != sim->cfg.dev_id)
        return bad(sim, "saved for another DEV_ID");
    if (sfi_get_le32(buf + 16) != sim->flash_bytes || sfi_get_le32(buf + 20) != sim->cfg.flash_word)
        return bad(sim, "flash size or flash word differs from this part");
    if (n != state_size(sim))
        return bad(sim, "wrong size (truncated or trailing data)");
    if (sim_crc32(buf, n - 4) != sfi_get_le32(buf + n - 4))
        return bad(sim, "CRC mismatch");
    const uint8_t *p = buf + HDR + 4 * SFI_SIM_OB_WORDS;
    if (p[0] > 1)
        return bad(sim, "identity flag is not 0 or 1");
    const uint8_t *prog = buf + FIXED;
    for (uint32_t i = 0; i < sim->nwords; i++)
        if (prog[i] > 2)
            return bad(sim, "programmed-word map entry is not 0, 1 or 2");
    for (unsigned i = 0; i < SFI_SIM_OB_WORDS; i++)
        sim->ob[i] = sfi_get_le32(buf + HDR + 4 * i);
    sim->has_id = p[0];
    memcpy(sim->priv, p + 1, SFI_SIM_PRIV_SIZE);
    memcpy(sim->cert, p + 1 + SFI_SIM_PRIV_SIZE, SFI_SIM_CERT_SIZE);
    memcpy(sim->secstate, p + 1 + SFI_SIM_PRIV_SIZE + SFI_SIM_CERT_SIZE, SFI_SIM_SECSTATE_SIZE);
    memcpy(sim->prog, prog, sim->nwords);
    memcpy(sim->flash, prog + sim->nwords, sim->flash_bytes);
    return SFI_OK;
}

int sim_load_file(struct sfi_sim *sim)
{
    FILE *f = fopen(sim->state_file, "rb");
    if (!f) {
        if (errno == ENOENT)
            return SFI_OK;   /* a fresh chip */
        return sfi_seterr(sim->ctx, SFI_E_IO, "sim state %s: %s", sim->state_file,
                          strerror(errno));
    }
    size_t want = state_size(sim);
    uint8_t *buf = malloc(want + 1);
    if (!buf) {
        fclose(f);
        return SFI_E_NOMEM;
    }
    size_t got = fread(buf, 1, want + 1, f);
    fclose(f);
    int rc = sfi_sim_load_state(sim, buf, got);
    sfi_wipe(buf, got);
    free(buf);
    if (rc)
        sfi_seterr(sim->ctx, rc, "%s: %s", sim->state_file, sfi_errdetail(sim->ctx));
    return rc;
}

/* fsync of the directory holding path (the rename's durability); best effort. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int sfi_sim_save(struct sfi_sim *sim)
{
    if (!sim || !sim->state_file)
        return SFI_OK;
    size_t n = state_size(sim);
    uint8_t *buf = malloc(n);
    if (!buf)
        return SFI_E_NOMEM;
    memcpy(buf, MAGIC, 8); /* NOLINT(bugprone-not-null-terminated-result): bytes, no NUL */
    sfi_put_le32(buf + 8, 1);
    sfi_put_le32(buf + 12, sim->cfg.dev_id);
    sfi_put_le32(buf + 16, sim->flash_bytes);
    sfi_put_le32(buf + 20, sim->cfg.flash_word);
    for (unsigned i = 0; i < SFI_SIM_OB_WORDS; i++)
        sfi_put_le32(buf + HDR + 4 * i, sim->ob[i]);
    uint8_t *p = buf + HDR + 4 * SFI_SIM_OB_WORDS;
    p[0] = (uint8_t)sim->has_id;
    memcpy(p + 1, sim->priv, SFI_SIM_PRIV_SIZE);
    memcpy(p + 1 + SFI_SIM_PRIV_SIZE, sim->cert, SFI_SIM_CERT_SIZE);
    memcpy(p + 1 + SFI_SIM_PRIV_SIZE + SFI_SIM_CERT_SIZE, sim->secstate, SFI_SIM_SECSTATE_SIZE);
    memcpy(buf + FIXED, sim->prog, sim->nwords);
    memcpy(buf + FIXED + sim->nwords, sim->flash, sim->flash_bytes);
    sfi_put_le32(buf + n - 4, sim_crc32(buf, n - 4));
    size_t tl = strlen(sim->state_file) + 32;
    char *tmp = malloc(tl);
    int rc = SFI_OK;
    if (!tmp) {
        rc = SFI_E_NOMEM;
    } else {
        /* durable and atomic: the new file is on disk before it replaces the old one, and the
         * rename is on disk before this returns; a crash leaves the old state or the new */
        snprintf(tmp, tl, "%s.tmp.%ld", sim->state_file, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(buf, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok || rename(tmp, sim->state_file) != 0) {
            rc = sfi_seterr(sim->ctx, SFI_E_IO, "sim state %s: %s", sim->state_file,
                            strerror(errno));
            remove(tmp);
        } else {
            sync_dir(sim->state_file);
        }
        free(tmp);
    }
    sfi_wipe(buf, n);
    free(buf);
    return rc;
}
