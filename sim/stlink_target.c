/* stlink_target.c: the simulated STM32H7 (chip.c) behind the ST-LINK server: implements
 * struct sfi_stlink_target_ops on the sim's debug side. The debug port is connected on demand,
 * NRST low-then-high is a connect under reset, and sim errors become ST-LINK status bytes the
 * way a real probe reports them (bus fault, DP error, WAIT). */
#include <stdlib.h>

#include "sfi/bytes.h"
#include "sfi/sim.h"
#include "sfi/stlink_server.h"

#define DCRSR 0xE000EDF4u
#define DCRDR 0xE000EDF8u

struct sfi_stlink_simtarget {
    struct sfi_ctx *ctx;
    struct sfi_sim *sim;
    int nrst_low;
};

static unsigned status_of(struct sfi_stlink_simtarget *t, int rc)
{
    switch (rc) {
    case SFI_OK: return SFI_STLINK_OK;
    case SFI_E_LOCKED:
    case SFI_E_TARGET: return SFI_STLINK_SWD_AP_FAULT;
    case SFI_E_NO_DEVICE: return SFI_STLINK_SWD_DP_ERROR;
    case SFI_E_TIMEOUT:
    case SFI_E_BUSY: return SFI_STLINK_SWD_AP_WAIT;
    case SFI_E_IO: return SFI_STLINK_JTAG_WRITE_ERROR;
    default:
        sfi_log(t->ctx, SFI_LOG_DEBUG, "sim target: %s (%s)", sfi_errname(rc),
                sfi_errdetail(t->ctx));
        return SFI_STLINK_SWD_AP_ERROR;
    }
}

/* Connects the debug port if the debugger is not (yet, or any more) connected. */
static int link(struct sfi_stlink_simtarget *t)
{
    if (sfi_sim_connected(t->sim))
        return SFI_OK;
    return sfi_sim_connect(t->sim, SFI_SIM_CONNECT_HOTPLUG);
}

static unsigned logged(struct sfi_stlink_simtarget *t, int rc)
{
    if (rc != SFI_OK)
        sfi_log(t->ctx, SFI_LOG_DEBUG, "sim target: %s: %s", sfi_errname(rc),
                sfi_errdetail(t->ctx));
    return status_of(t, rc);
}

static unsigned st_read_mem(void *ud, uint32_t addr, uint8_t *buf, size_t n, unsigned width)
{
    struct sfi_stlink_simtarget *t = ud;
    (void)width;
    int rc = link(t);
    if (rc == SFI_OK)
        rc = sfi_sim_read(t->sim, addr, buf, n);
    return logged(t, rc);
}

static unsigned st_write_mem(void *ud, uint32_t addr, const uint8_t *buf, size_t n,
                             unsigned width)
{
    struct sfi_stlink_simtarget *t = ud;
    (void)width;
    int rc = link(t);
    if (rc == SFI_OK)
        rc = sfi_sim_write(t->sim, addr, buf, n);
    return logged(t, rc);
}

static unsigned st_read_dbg(void *ud, uint32_t addr, uint32_t *v)
{
    uint8_t b[4];
    if (addr & 3)
        return SFI_STLINK_SWD_AP_FAULT;
    unsigned st = st_read_mem(ud, addr, b, 4, 32);
    if (st == SFI_STLINK_OK)
        *v = sfi_get_le32(b);
    return st;
}

static unsigned st_write_dbg(void *ud, uint32_t addr, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    if (addr & 3)
        return SFI_STLINK_SWD_AP_FAULT;
    return st_write_mem(ud, addr, b, 4, 32);
}

/* Core registers go through DCRSR/DCRDR as the probe firmware does. */
static unsigned st_read_reg(void *ud, unsigned regsel, uint32_t *v)
{
    unsigned st = st_write_dbg(ud, DCRSR, regsel & 0x7F);
    return st == SFI_STLINK_OK ? st_read_dbg(ud, DCRDR, v) : st;
}

static unsigned st_write_reg(void *ud, unsigned regsel, uint32_t v)
{
    unsigned st = st_write_dbg(ud, DCRDR, v);
    return st == SFI_STLINK_OK ? st_write_dbg(ud, DCRSR, (regsel & 0x7F) | (1u << 16)) : st;
}

static unsigned st_reset_sys(void *ud)
{
    struct sfi_stlink_simtarget *t = ud;
    int rc = link(t);
    if (rc == SFI_OK)
        rc = sfi_sim_reset(t->sim, SFI_SIM_RESET_SW);
    return logged(t, rc);
}

/* Release of NRST: a hardware reset keeping the link, or a connect under reset. */
static int nrst_release(struct sfi_stlink_simtarget *t)
{
    if (sfi_sim_connected(t->sim))
        return sfi_sim_reset(t->sim, SFI_SIM_RESET_HW);
    return sfi_sim_connect(t->sim, SFI_SIM_CONNECT_UNDER_RESET);
}

static unsigned st_drive_nrst(void *ud, unsigned state)
{
    struct sfi_stlink_simtarget *t = ud;
    int rc = SFI_OK;
    if (state == 0) {
        t->nrst_low = 1;
    } else if (state == 1) {
        if (t->nrst_low)
            rc = nrst_release(t);
        t->nrst_low = 0;
    } else {
        t->nrst_low = 0;
        rc = nrst_release(t);
    }
    return logged(t, rc);
}

static unsigned st_idcode(void *ud, uint32_t *dpidr)
{
    struct sfi_stlink_simtarget *t = ud;
    int rc = link(t);
    if (rc == SFI_OK)
        *dpidr = sfi_sim_config(t->sim)->dpidr;
    return logged(t, rc);
}

static unsigned st_voltage(void *ud, unsigned *mv)
{
    (void)ud;
    *mv = 3300;
    return SFI_STLINK_OK;
}

const struct sfi_stlink_target_ops sfi_stlink_simtarget_ops = {
    .read_mem = st_read_mem,
    .write_mem = st_write_mem,
    .read_dbg = st_read_dbg,
    .write_dbg = st_write_dbg,
    .read_core_reg = st_read_reg,
    .write_core_reg = st_write_reg,
    .reset_sys = st_reset_sys,
    .drive_nrst = st_drive_nrst,
    .idcode = st_idcode,
    .voltage = st_voltage,
};

int sfi_stlink_simtarget_new(struct sfi_ctx *ctx, struct sfi_sim *sim,
                             struct sfi_stlink_simtarget **out)
{
    struct sfi_stlink_simtarget *t = calloc(1, sizeof *t);
    if (t == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "sim target");
    t->ctx = ctx;
    t->sim = sfi_sim_ref(sim);
    *out = t;
    return SFI_OK;
}

void sfi_stlink_simtarget_detach(struct sfi_stlink_simtarget *t)
{
    if (t == NULL)
        return;
    t->nrst_low = 0;
    sfi_sim_disconnect(t->sim);
}

void sfi_stlink_simtarget_free(struct sfi_stlink_simtarget *t)
{
    if (t == NULL)
        return;
    sfi_sim_free(t->sim);
    free(t);
}
