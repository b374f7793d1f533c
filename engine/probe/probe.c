/* probe.c: the probe front end: finds the driver, allocates the probe with the driver's state
 * after it, checks state (open, connected) before each call, logs, and provides the shared
 * defaults (32-bit access, halt and resume through SFI_ARMV7M_DHCSR). */
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/driver.h"
#include "sfi/armv7m.h"
#include "sfi/bytes.h"


struct sfi_probe {
    struct sfi_ctx *ctx;
    const struct sfi_probe_driver *drv;
    unsigned khz;
    int connected;
    struct sfi_probe_rdp rdp;
    alignas(max_align_t) unsigned char priv[];
};

void *sfi_probe_priv(struct sfi_probe *p)
{
    return p->priv;
}

const char *sfi_connect_name(enum sfi_connect mode)
{
    switch (mode) {
    case SFI_CONNECT_HOTPLUG: return "hotplug";
    case SFI_CONNECT_UNDER_RESET: return "under-reset";
    default: return "normal";
    }
}

const char *sfi_reset_name(enum sfi_reset kind)
{
    switch (kind) {
    case SFI_RESET_HW: return "hw";
    case SFI_RESET_CORE: return "core";
    default: return "sw";
    }
}

int sfi_probe_scan(struct sfi_ctx *ctx, sfi_probe_found_fn found, void *ud)
{
    for (size_t i = 0; sfi_probe_drivers[i]; i++) {
        const struct sfi_probe_driver *d = sfi_probe_drivers[i];
        if (!d->scan)
            continue;
        int rc = d->scan(ctx, found, ud);
        if (rc)
            sfi_log(ctx, SFI_LOG_DEBUG, "probe: %s scan failed: %s (%s)", d->name,
                    sfi_errname(rc), sfi_errdetail(ctx));
    }
    return SFI_OK;
}

static const struct sfi_probe_driver *find_driver(const char *name)
{
    for (size_t i = 0; sfi_probe_drivers[i]; i++)
        if (!name || strcmp(sfi_probe_drivers[i]->name, name) == 0)
            return sfi_probe_drivers[i];
    return NULL;
}

static int check_rdp(struct sfi_ctx *ctx, const struct sfi_probe_rdp *r)
{
    if (r->flash_hi == 0)
        return SFI_OK;
    if (r->bits < 1 || r->bits > 32 || r->shift > 32 - r->bits)
        return sfi_seterr(ctx, SFI_E_INVALID, "probe rdp: field of %u bits at bit %u does not "
                          "fit a 32-bit register", r->bits, r->shift);
    uint32_t mask = r->bits == 32 ? 0xFFFFFFFFu : (1u << r->bits) - 1u;
    if (r->open > mask)
        return sfi_seterr(ctx, SFI_E_INVALID, "probe rdp: level-0 value 0x%X does not fit a "
                          "%u-bit field", (unsigned)r->open, r->bits);
    if (r->flash_lo >= r->flash_hi)
        return sfi_seterr(ctx, SFI_E_INVALID, "probe rdp: flash range 0x%08X..0x%08X is empty",
                          (unsigned)r->flash_lo, (unsigned)r->flash_hi);
    if (r->reg & 3)
        return sfi_seterr(ctx, SFI_E_INVALID, "probe rdp: register 0x%08X not aligned",
                          (unsigned)r->reg);
    return SFI_OK;
}

int sfi_probe_open(struct sfi_ctx *ctx, const struct sfi_probe_cfg *cfg, struct sfi_probe **out)
{
    const struct sfi_probe_driver *d = find_driver(cfg->driver);
    if (!d)
        return sfi_seterr(ctx, SFI_E_NOT_FOUND, "no probe driver '%s'", cfg->driver);
    int rc = check_rdp(ctx, &cfg->rdp);
    if (rc)
        return rc;
    struct sfi_probe *p = calloc(1, sizeof *p + d->priv_size);
    if (!p)
        return SFI_E_NOMEM;
    p->ctx = ctx;
    p->drv = d;
    p->khz = cfg->speed_khz ? cfg->speed_khz : 4000;
    p->rdp = cfg->rdp;
    rc = d->open(p, cfg);
    if (rc) {
        free(p);
        return rc;
    }
    rc = cfg->no_connect ? SFI_OK : sfi_probe_connect(p, cfg->connect);
    if (rc) {
        d->close(p);
        free(p);
        return rc;
    }
    sfi_log(ctx, SFI_LOG_DEBUG, "probe: %s opened (%s, %u kHz)", d->name,
            sfi_connect_name(cfg->connect), p->khz);
    *out = p;
    return SFI_OK;
}

void sfi_probe_close(struct sfi_probe *p)
{
    if (!p)
        return;
    p->drv->close(p);
    sfi_log(p->ctx, SFI_LOG_DEBUG, "probe: %s closed", p->drv->name);
    free(p);
}

int sfi_probe_connect(struct sfi_probe *p, enum sfi_connect mode)
{
    p->connected = 0;
    int rc = p->drv->connect(p, mode, p->khz);
    if (rc) {
        sfi_log(p->ctx, SFI_LOG_DEBUG, "probe: connect (%s) failed: %s", sfi_connect_name(mode),
                sfi_errname(rc));
        return rc;
    }
    p->connected = 1;
    return SFI_OK;
}

static int need_link(struct sfi_probe *p, const char *op)
{
    if (!p->connected)
        return sfi_seterr(p->ctx, SFI_E_NO_DEVICE, "%s: not connected to the target (reconnect)",
                          op);
    return SFI_OK;
}

/* A lost link (NO_DEVICE) marks the probe disconnected so callers must reconnect. */
static int track(struct sfi_probe *p, int rc)
{
    if (rc == SFI_E_NO_DEVICE)
        p->connected = 0;
    return rc;
}

int sfi_probe_reset(struct sfi_probe *p, enum sfi_reset kind)
{
    int rc = need_link(p, "reset");
    if (rc)
        return rc;
    if (!p->drv->reset)
        return sfi_seterr(p->ctx, SFI_E_UNSUPPORTED, "%s: no reset", p->drv->name);
    sfi_log(p->ctx, SFI_LOG_DEBUG, "probe: reset (%s)", sfi_reset_name(kind));
    return track(p, p->drv->reset(p, kind));
}

int sfi_probe_read_mem(struct sfi_probe *p, uint64_t addr, void *buf, size_t n)
{
    int rc = need_link(p, "read");
    if (rc)
        return rc;
    return track(p, p->drv->read_mem(p, addr, buf, n));
}

int sfi_probe_write_mem(struct sfi_probe *p, uint64_t addr, const void *buf, size_t n)
{
    int rc = need_link(p, "write");
    if (rc)
        return rc;
    return track(p, p->drv->write_mem(p, addr, buf, n));
}

int sfi_probe_read32(struct sfi_probe *p, uint64_t addr, uint32_t *v)
{
    uint8_t b[4];
    if (addr & 3)
        return sfi_seterr(p->ctx, SFI_E_INVALID, "read32: address 0x%llx not aligned",
                          (unsigned long long)addr);
    int rc = sfi_probe_read_mem(p, addr, b, 4);
    if (rc)
        return rc;
    *v = sfi_get_le32(b);
    return SFI_OK;
}

int sfi_probe_write32(struct sfi_probe *p, uint64_t addr, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    if (addr & 3)
        return sfi_seterr(p->ctx, SFI_E_INVALID, "write32: address 0x%llx not aligned",
                          (unsigned long long)addr);
    return sfi_probe_write_mem(p, addr, b, 4);
}

int sfi_probe_halt(struct sfi_probe *p)
{
    int rc = sfi_probe_write32(p, SFI_ARMV7M_DHCSR, SFI_ARMV7M_DHCSR_HALT);
    if (rc)
        return rc;
    uint32_t v;
    rc = sfi_probe_read32(p, SFI_ARMV7M_DHCSR, &v);
    if (rc)
        return rc;
    if (!(v & SFI_ARMV7M_DHCSR_S_HALT))
        return sfi_seterr(p->ctx, SFI_E_TIMEOUT, "halt: core did not halt (DHCSR 0x%08X)",
                          (unsigned)v);
    return SFI_OK;
}

int sfi_probe_resume(struct sfi_probe *p)
{
    return sfi_probe_write32(p, SFI_ARMV7M_DHCSR, SFI_ARMV7M_DHCSR_RUN);
}

int sfi_probe_read_ap(struct sfi_probe *p, unsigned ap, unsigned reg, uint32_t *v)
{
    if (!p->drv->read_ap)
        return sfi_seterr(p->ctx, SFI_E_UNSUPPORTED, "%s: no AP register access", p->drv->name);
    int rc = need_link(p, "read_ap");
    if (rc)
        return rc;
    return track(p, p->drv->read_ap(p, ap, reg, v));
}

int sfi_probe_info(const struct sfi_probe *p, struct sfi_probe_info *info)
{
    memset(info, 0, sizeof *info);
    info->driver = p->drv->name;
    if (p->drv->describe)
        p->drv->describe((struct sfi_probe *)p, info);
    return SFI_OK;
}

const char *sfi_probe_driver_name(const struct sfi_probe *p)
{
    return p->drv->name;
}

int sfi_probe_is_connected(const struct sfi_probe *p)
{
    return p->connected;
}

struct sfi_ctx *sfi_probe_ctx(const struct sfi_probe *p)
{
    return p->ctx;
}

struct sfi_sim *sfi_probe_sim(struct sfi_probe *p)
{
    return p && p->drv->sim ? p->drv->sim(p) : NULL;
}

int sfi_probe_refine_fault(struct sfi_probe *p, int rc, uint64_t addr, size_t n, const char *op,
                           int (*read32)(struct sfi_probe *, uint32_t, uint32_t *))
{
    struct sfi_ctx *ctx = p->ctx;
    if (rc != SFI_E_TARGET)
        return rc;
    char detail[256];
    snprintf(detail, sizeof detail, "%s", sfi_errdetail(ctx));
    uint32_t v;
    if (read32(p, SFI_ARMV7M_CPUID, &v) != SFI_OK)
        return sfi_seterr(ctx, SFI_E_NO_DEVICE, "%s of 0x%08llX failed and the target does not "
                          "answer any more (%s)", op, (unsigned long long)addr, detail);
    const struct sfi_probe_rdp *r = &p->rdp;
    if (r->flash_hi == 0 || addr >= r->flash_hi || addr + n <= r->flash_lo)
        return sfi_seterr(ctx, SFI_E_TARGET, "%s", detail);
    uint32_t mask = r->bits == 32 ? 0xFFFFFFFFu : (1u << r->bits) - 1u;
    if (read32(p, r->reg, &v) != SFI_OK || ((v >> r->shift) & mask) == r->open)
        return sfi_seterr(ctx, SFI_E_TARGET, "%s", detail);
    return sfi_seterr(ctx, SFI_E_LOCKED, "%s of flash 0x%08llX refused: read-out protection is "
                      "active (RDP 0x%02X)", op, (unsigned long long)addr,
                      (unsigned)((v >> r->shift) & mask));
}
