/* stlink_ramtarget.h: a small RAM-backed target for the ST-LINK tests: SRAM at 0x20000000,
 * a flash-like region at 0x08000000, the Cortex-M private peripheral bus at 0xE0000000
 * (CPUID, MVFR, DHCSR ...); anything else is a bus fault. Records memory calls and injects
 * WAIT or arbitrary status bytes on request. */
#ifndef STLINK_RAMTARGET_H
#define STLINK_RAMTARGET_H

#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/stlink_server.h"

#define RT_SRAM 0x20000000u
#define RT_SRAM_SIZE 0x10000u
#define RT_FLASH 0x08000000u
#define RT_FLASH_SIZE 0x4000u
#define RT_PPB 0xE0000000u
#define RT_PPB_SIZE 0x100000u
#define RT_MAXLOG 256

struct rt_call {
    int write;
    uint32_t addr;
    size_t n;
    unsigned width;
};

struct ramtarget {
    uint8_t *sram, *flash, *ppb;
    uint32_t core[0x60];
    uint32_t dpidr;
    unsigned mv;
    unsigned resets, nrst;
    unsigned wait_next;     /* answer WAIT to this many memory/register calls */
    unsigned status_next;   /* if nonzero, answer this status once */
    struct rt_call log[RT_MAXLOG];
    unsigned nlog;
};

static uint8_t *rt_map(struct ramtarget *t, uint32_t addr, size_t n)
{
    if (addr >= RT_SRAM && (uint64_t)addr + n <= (uint64_t)RT_SRAM + RT_SRAM_SIZE)
        return t->sram + (addr - RT_SRAM);
    if (addr >= RT_FLASH && (uint64_t)addr + n <= (uint64_t)RT_FLASH + RT_FLASH_SIZE)
        return t->flash + (addr - RT_FLASH);
    if (addr >= RT_PPB && (uint64_t)addr + n <= (uint64_t)RT_PPB + RT_PPB_SIZE)
        return t->ppb + (addr - RT_PPB);
    return NULL;
}

static unsigned rt_injected(struct ramtarget *t)
{
    if (t->wait_next > 0) {
        t->wait_next--;
        return SFI_STLINK_SWD_AP_WAIT;
    }
    if (t->status_next != 0) {
        unsigned st = t->status_next;
        t->status_next = 0;
        return st;
    }
    return SFI_STLINK_OK;
}

static void rt_log(struct ramtarget *t, int write, uint32_t addr, size_t n, unsigned width)
{
    if (t->nlog < RT_MAXLOG)
        t->log[t->nlog++] = (struct rt_call){write, addr, n, width};
}

static unsigned rt_read_mem(void *ud, uint32_t addr, uint8_t *buf, size_t n, unsigned width)
{
    struct ramtarget *t = ud;
    rt_log(t, 0, addr, n, width);
    unsigned st = rt_injected(t);
    if (st != SFI_STLINK_OK)
        return st;
    uint8_t *p = rt_map(t, addr, n);
    if (p == NULL)
        return SFI_STLINK_SWD_AP_FAULT;
    memcpy(buf, p, n);
    return SFI_STLINK_OK;
}

static unsigned rt_write_mem(void *ud, uint32_t addr, const uint8_t *buf, size_t n,
                             unsigned width)
{
    struct ramtarget *t = ud;
    rt_log(t, 1, addr, n, width);
    unsigned st = rt_injected(t);
    if (st != SFI_STLINK_OK)
        return st;
    uint8_t *p = rt_map(t, addr, n);
    if (p == NULL)
        return SFI_STLINK_SWD_AP_FAULT;
    memcpy(p, buf, n);
    return SFI_STLINK_OK;
}

static unsigned rt_read_dbg(void *ud, uint32_t addr, uint32_t *v)
{
    struct ramtarget *t = ud;
    unsigned st = rt_injected(t);
    if (st != SFI_STLINK_OK)
        return st;
    uint8_t *p = rt_map(t, addr, 4);
    if (p == NULL || (addr & 3))
        return SFI_STLINK_SWD_AP_FAULT;
    *v = sfi_get_le32(p);
    return SFI_STLINK_OK;
}

static unsigned rt_write_dbg(void *ud, uint32_t addr, uint32_t v)
{
    struct ramtarget *t = ud;
    unsigned st = rt_injected(t);
    if (st != SFI_STLINK_OK)
        return st;
    uint8_t *p = rt_map(t, addr, 4);
    if (p == NULL || (addr & 3))
        return SFI_STLINK_SWD_AP_FAULT;
    sfi_put_le32(p, v);
    return SFI_STLINK_OK;
}

static unsigned rt_read_reg(void *ud, unsigned regsel, uint32_t *v)
{
    struct ramtarget *t = ud;
    if (regsel >= 0x60)
        return SFI_STLINK_FAULT;
    *v = t->core[regsel];
    return SFI_STLINK_OK;
}

static unsigned rt_write_reg(void *ud, unsigned regsel, uint32_t v)
{
    struct ramtarget *t = ud;
    if (regsel >= 0x60)
        return SFI_STLINK_FAULT;
    t->core[regsel] = v;
    return SFI_STLINK_OK;
}

static unsigned rt_reset(void *ud)
{
    ((struct ramtarget *)ud)->resets++;
    return SFI_STLINK_OK;
}

static unsigned rt_nrst(void *ud, unsigned state)
{
    ((struct ramtarget *)ud)->nrst = state;
    return SFI_STLINK_OK;
}

static unsigned rt_idcode(void *ud, uint32_t *id)
{
    *id = ((struct ramtarget *)ud)->dpidr;
    return SFI_STLINK_OK;
}

static unsigned rt_voltage(void *ud, unsigned *mv)
{
    *mv = ((struct ramtarget *)ud)->mv;
    return SFI_STLINK_OK;
}

static const struct sfi_stlink_target_ops rt_ops = {
    .read_mem = rt_read_mem,
    .write_mem = rt_write_mem,
    .read_dbg = rt_read_dbg,
    .write_dbg = rt_write_dbg,
    .read_core_reg = rt_read_reg,
    .write_core_reg = rt_write_reg,
    .reset_sys = rt_reset,
    .drive_nrst = rt_nrst,
    .idcode = rt_idcode,
    .voltage = rt_voltage,
};

static void rt_put32(struct ramtarget *t, uint32_t addr, uint32_t v)
{
    uint8_t *p = rt_map(t, addr, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* An STM32H7-like identity: DPIDR 0x6BA02477, CPUID 0x411FC271 (Cortex-M7 r1p1). */
static struct ramtarget *rt_new(void)
{
    struct ramtarget *t = calloc(1, sizeof *t);
    t->sram = calloc(1, RT_SRAM_SIZE);
    t->flash = malloc(RT_FLASH_SIZE);
    memset(t->flash, 0xFF, RT_FLASH_SIZE);
    t->ppb = calloc(1, RT_PPB_SIZE);
    t->dpidr = 0x6BA02477u;
    t->mv = 3280;
    rt_put32(t, 0xE000ED00u, 0x411FC271u); /* CPUID */
    rt_put32(t, 0xE000EF40u, 0x10110221u); /* MVFR0 */
    rt_put32(t, 0xE000EF44u, 0x12000011u); /* MVFR1 */
    return t;
}

static void rt_free(struct ramtarget *t)
{
    if (t == NULL)
        return;
    free(t->sram);
    free(t->flash);
    free(t->ppb);
    free(t);
}

#endif
