/* drv_sim.c: the "sim" probe driver: a debug probe wired to the simulated STM32H7 (sim/, the
 * simulator's ring; the only place the engine reaches it). Connect modes and resets map onto
 * the chip's; the chip's state file is saved when the probe closes. */
#include <stdio.h>

#include "probe/driver.h"

struct simdrv {
    struct sfi_sim *sim;
};

static struct sfi_sim *sim_of(struct sfi_probe *p)
{
    return ((struct simdrv *)sfi_probe_priv(p))->sim;
}

static int sim_scan(struct sfi_ctx *ctx, sfi_probe_found_fn found, void *ud)
{
    (void)ctx;
    struct sfi_probe_info info = {.driver = "sim", .serial = "sim"};
    snprintf(info.desc, sizeof info.desc, "simulated STM32H7 (DEV_ID 0x450, 0x480, 0x483)");
    found(ud, &info);
    return SFI_OK;
}

static int sim_open(struct sfi_probe *p, const struct sfi_probe_cfg *cfg)
{
    struct simdrv *d = sfi_probe_priv(p);
    if (cfg->sim_attach) {
        d->sim = sfi_sim_ref(cfg->sim_attach);
        return SFI_OK;
    }
    if (!cfg->sim)
        return sfi_seterr(sfi_probe_ctx(p), SFI_E_INVALID, "sim: no chip configuration");
    return sfi_sim_new(sfi_probe_ctx(p), cfg->sim, &d->sim);
}

static void sim_close(struct sfi_probe *p)
{
    struct sfi_sim *sim = sim_of(p);
    int rc = sfi_sim_save(sim);
    if (rc)
        sfi_log(sfi_probe_ctx(p), SFI_LOG_WARN, "sim: state not saved: %s",
                sfi_errdetail(sfi_probe_ctx(p)));
    sfi_sim_disconnect(sim);
    sfi_sim_free(sim);
}

static int sim_connect(struct sfi_probe *p, enum sfi_connect mode, unsigned khz)
{
    (void)khz;
    enum sfi_sim_connect m = mode == SFI_CONNECT_HOTPLUG       ? SFI_SIM_CONNECT_HOTPLUG
                             : mode == SFI_CONNECT_UNDER_RESET ? SFI_SIM_CONNECT_UNDER_RESET
                                                               : SFI_SIM_CONNECT_NORMAL;
    return sfi_sim_connect(sim_of(p), m);
}

static int sim_reset(struct sfi_probe *p, enum sfi_reset kind)
{
    enum sfi_sim_reset k = kind == SFI_RESET_HW     ? SFI_SIM_RESET_HW
                           : kind == SFI_RESET_CORE ? SFI_SIM_RESET_CORE
                                                    : SFI_SIM_RESET_SW;
    return sfi_sim_reset(sim_of(p), k);
}

static int range_ok(struct sfi_probe *p, uint64_t addr, size_t n)
{
    if (addr > 0xFFFFFFFFu || n > 0x100000000u - addr)
        return sfi_seterr(sfi_probe_ctx(p), SFI_E_TARGET, "sim: 0x%llx+%zu is beyond 32 bits",
                          (unsigned long long)addr, n);
    return SFI_OK;
}

static int sim_read_mem(struct sfi_probe *p, uint64_t addr, void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    return rc ? rc : sfi_sim_read(sim_of(p), (uint32_t)addr, buf, n);
}

static int sim_write_mem(struct sfi_probe *p, uint64_t addr, const void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    return rc ? rc : sfi_sim_write(sim_of(p), (uint32_t)addr, buf, n);
}

static void sim_describe(struct sfi_probe *p, struct sfi_probe_info *info)
{
    const struct sfi_sim_cfg *c = sfi_sim_config(sim_of(p));
    snprintf(info->serial, sizeof info->serial, "sim");
    snprintf(info->desc, sizeof info->desc, "simulated %s (DEV_ID 0x%03X)",
             c->part ? c->part : "STM32H7", (unsigned)c->dev_id);
}

const struct sfi_probe_driver sfi_drv_sim = {
    .name = "sim",
    .caps = SFI_PROBE_CAP_SWD,
    .priv_size = sizeof(struct simdrv),
    .scan = sim_scan,
    .open = sim_open,
    .close = sim_close,
    .connect = sim_connect,
    .reset = sim_reset,
    .read_mem = sim_read_mem,
    .write_mem = sim_write_mem,
    .sim = sim_of,
    .describe = sim_describe,
};
