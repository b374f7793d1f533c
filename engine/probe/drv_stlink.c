/* drv_stlink.c: the "stlink" (USB, under SFI_WITH_USB) and "stlink-tcp" (stlink-server
 * protocol) probe drivers on the ST-LINK session (engine/stlink). Connect modes, resets
 * through AIRCR and NRST, memory through the AHB-AP, and a bus fault on flash under read-out
 * protection (as the device pack describes it: cfg.rdp) reported as SFI_E_LOCKED. */
#include <stdio.h>
#include <string.h>

#include "probe/driver.h"
#include "sfi/armv7m.h"
#include "sfi/stlink.h"
#include "sfi/trace.h"

struct stdrv {
    struct sfi_stlink *s;
    int tcp;
    char where[64]; /* stlink-tcp: the server's host:port */
    char serial[33];
    char version[32];
    struct sfi_trace_writer *rec; /* record=FILE: the session's capture */
};

static struct stdrv *drv_of(struct sfi_probe *p)
{
    return sfi_probe_priv(p);
}

/* ---- discovery ---------------------------------------------------------------------------- */

struct scanctx {
    struct sfi_ctx *ctx;
    const struct sfi_stlink_tcp_cfg *tcp; /* NULL: USB */
    char where[24];                       /* stlink-tcp: the server's IPv4 host:port */
    sfi_probe_found_fn found;
    void *ud;
};

/* Opens the probe briefly for its target voltage; "" when that fails. */
static void voltage_str(const struct scanctx *sc, const char *serial, char *buf, size_t n)
{
    struct sfi_stlink_transport *t = NULL;
    struct sfi_stlink *s = NULL;
    unsigned mv;
    buf[0] = 0;
    int rc;
    if (sc->tcp != NULL) {
        struct sfi_stlink_tcp_cfg tc = *sc->tcp;
        tc.serial = serial;
        rc = sfi_stlink_tcp_open(sc->ctx, &tc, &t);
    } else {
        rc = sfi_stlink_usb_open(sc->ctx, serial, &t);
    }
    struct sfi_ctx *ctx = sc->ctx;
    if (rc == SFI_OK)
        rc = sfi_stlink_open(ctx, t, &s);
    if (rc == SFI_OK && sfi_stlink_voltage(s, &mv) == SFI_OK)
        snprintf(buf, n, ", target %u.%02u V", mv / 1000, (mv % 1000) / 10);
    sfi_stlink_close(s);
}

static void found_stlink(void *ud, const struct sfi_stlink_info *info)
{
    struct scanctx *sc = ud;
    struct sfi_probe_info pi = {.driver = sc->tcp ? "stlink-tcp" : "stlink"};
    char volt[40] = "";
    if (!info->in_use)
        voltage_str(sc, info->serial, volt, sizeof volt);
    snprintf(pi.serial, sizeof pi.serial, "%s", info->serial);
    snprintf(pi.desc, sizeof pi.desc, "ST-LINK %s (%04X:%04X)%s%s%s%s",
             info->version[0] ? info->version : "?", info->vid, info->pid,
             sc->tcp ? " via stlink-server " : "", sc->where, volt,
             info->in_use ? ", in use" : "");
    sc->found(sc->ud, &pi);
}

#if SFI_WITH_USB
static int usb_scan(struct sfi_ctx *ctx, sfi_probe_found_fn found, void *ud)
{
    struct scanctx sc = {.ctx = ctx, .found = found, .ud = ud};
    return sfi_stlink_usb_list(ctx, found_stlink, &sc);
}
#endif

static int tcp_scan(struct sfi_ctx *ctx, sfi_probe_found_fn found, void *ud)
{
    struct sfi_stlink_tcp_cfg tc = {.timeout_ms = 500}; /* the default server */
    struct scanctx sc = {.ctx = ctx, .tcp = &tc, .found = found, .ud = ud};
    const char *host;
    unsigned port;
    int rc = sfi_stlink_tcp_addr(ctx, &tc, &host, &port);
    if (rc != SFI_OK)
        return rc;
    snprintf(sc.where, sizeof sc.where, "%s:%u", host, port);
    return sfi_stlink_tcp_list(ctx, &tc, found_stlink, &sc);
}

/* ---- open / close ------------------------------------------------------------------------ */

static int open_common(struct sfi_probe *p, struct sfi_stlink_transport *t)
{
    struct stdrv *d = drv_of(p);
    struct sfi_ctx *ctx = sfi_probe_ctx(p);
    snprintf(d->serial, sizeof d->serial, "%s", t->serial);
    int rc = sfi_stlink_open(ctx, t, &d->s);
    if (rc != SFI_OK)
        return rc;
    sfi_stlink_version_str(sfi_stlink_get_version(d->s), d->version, sizeof d->version);
    return SFI_OK;
}

/* record=FILE: the capture is created before any probe traffic, so a path that cannot be
 * written fails the open untouched. */
static int record_open(struct sfi_probe *p, const struct sfi_probe_cfg *cfg,
                       enum sfi_trace_wkind kind)
{
    struct stdrv *d = drv_of(p);
    if (cfg->record == NULL)
        return SFI_OK;
    return sfi_trace_writer_open(sfi_probe_ctx(p), cfg->record, kind, &d->rec);
}

/* A failed open keeps what was recorded (it shows how far the session went). */
static int open_failed(struct sfi_probe *p, int rc)
{
    struct stdrv *d = drv_of(p);
    sfi_trace_writer_close(d->rec);
    d->rec = NULL;
    return rc;
}

#if SFI_WITH_USB
static int usb_open(struct sfi_probe *p, const struct sfi_probe_cfg *cfg)
{
    struct sfi_ctx *ctx = sfi_probe_ctx(p);
    struct stdrv *d = drv_of(p);
    struct sfi_stlink_transport *t;
    int rc = record_open(p, cfg, SFI_TRACE_W_USB);
    if (rc != SFI_OK)
        return rc;
    rc = sfi_stlink_usb_open(ctx, cfg->serial, &t);
    if (rc == SFI_E_ACCESS && !strstr(sfi_errdetail(ctx), "rules"))
        rc = sfi_seterr(ctx, rc, "%s; install udev/70-sfirun-stlink.rules into "
                        "/etc/udev/rules.d/ and replug the probe", sfi_errdetail(ctx));
    if (rc != SFI_OK)
        return open_failed(p, rc);
    if (d->rec != NULL) {
        t->record = d->rec;
        sfi_trace_writer_usb_device(d->rec, t->vid, t->pid);
    }
    rc = open_common(p, t);
    return rc ? open_failed(p, rc) : SFI_OK;
}
#endif

static int tcp_open(struct sfi_probe *p, const struct sfi_probe_cfg *cfg)
{
    struct stdrv *d = drv_of(p);
    struct sfi_stlink_transport *t;
    int rc = record_open(p, cfg, SFI_TRACE_W_TCP);
    if (rc != SFI_OK)
        return rc;
    struct sfi_stlink_tcp_cfg tc = {.port = cfg->tcp_port, .serial = cfg->serial,
                                    .timeout_ms = 2000, .record = d->rec};
    d->tcp = 1;
    const char *host;
    unsigned port;
    rc = sfi_stlink_tcp_addr(sfi_probe_ctx(p), &tc, &host, &port);
    if (rc == SFI_OK) {
        snprintf(d->where, sizeof d->where, "%s:%u", host, port);
        rc = sfi_stlink_tcp_open(sfi_probe_ctx(p), &tc, &t);
    }
    if (rc == SFI_OK)
        rc = open_common(p, t);
    return rc ? open_failed(p, rc) : SFI_OK;
}

static void st_close(struct sfi_probe *p)
{
    struct stdrv *d = drv_of(p);
    if (d->s) {
        sfi_stlink_leave_mode(d->s); /* best effort: the probe is closed anyway */
        sfi_stlink_close(d->s);
        d->s = NULL;
    }
    sfi_trace_writer_close(d->rec);
    d->rec = NULL;
}

/* ---- target control ------------------------------------------------------------------------ */

static int wait_halt(struct sfi_probe *p, unsigned ms)
{
    struct stdrv *d = drv_of(p);
    uint64_t end = sfi_now_ms() + ms;
    uint32_t v = 0;
    for (;;) {
        int rc = sfi_stlink_read_dbg(d->s, SFI_ARMV7M_DHCSR, &v);
        if (rc == SFI_OK && (v & SFI_ARMV7M_DHCSR_S_HALT))
            return SFI_OK;
        if (sfi_now_ms() >= end)
            return rc ? rc
                      : sfi_seterr(sfi_probe_ctx(p), SFI_E_TIMEOUT,
                                   "stlink: core not halted after reset (DHCSR 0x%08X)",
                                   (unsigned)v);
        sfi_sleep_ms(sfi_probe_ctx(p), 2);
    }
}

static int st_connect(struct sfi_probe *p, enum sfi_connect mode, unsigned khz)
{
    struct stdrv *d = drv_of(p);
    struct sfi_ctx *ctx = sfi_probe_ctx(p);
    int rc = sfi_stlink_leave_mode(d->s);
    if (rc == SFI_OK && mode == SFI_CONNECT_UNDER_RESET)
        rc = sfi_stlink_drive_nrst(d->s, 0);
    if (rc != SFI_OK)
        return rc;
    unsigned actual = 0;
    rc = sfi_stlink_set_speed(d->s, khz, &actual);
    if (rc != SFI_OK && rc != SFI_E_UNSUPPORTED)
        return rc;
    rc = sfi_stlink_enter_swd(d->s);
    if (rc == SFI_OK)
        rc = sfi_stlink_init_ap(d->s, 0);
    uint32_t id = 0;
    if (rc == SFI_OK)
        rc = sfi_stlink_idcode(d->s, &id);
    if (rc == SFI_OK && (id == 0 || id == 0xFFFFFFFFu))
        rc = sfi_seterr(ctx, SFI_E_NO_DEVICE, "stlink: no target answers (DPIDR 0x%08X); "
                        "check wiring and target power", (unsigned)id);
    if (rc != SFI_OK)
        return rc;
    sfi_log(ctx, SFI_LOG_DEBUG, "stlink: %s, DPIDR 0x%08X, %u kHz", d->version, (unsigned)id,
            actual);
    switch (mode) {
    case SFI_CONNECT_NORMAL:
        return sfi_stlink_write_dbg(d->s, SFI_ARMV7M_DHCSR, SFI_ARMV7M_DHCSR_HALT);
    case SFI_CONNECT_UNDER_RESET: {
        /* halt on the reset vector, then release NRST */
        rc = sfi_stlink_write_dbg(d->s, SFI_ARMV7M_DHCSR, SFI_ARMV7M_DHCSR_HALT);
        if (rc == SFI_OK)
            rc = sfi_stlink_write_dbg(d->s, SFI_ARMV7M_DEMCR,
                                      SFI_ARMV7M_DEMCR_TRCENA | SFI_ARMV7M_DEMCR_VC_CORERESET);
        if (rc == SFI_OK)
            rc = sfi_stlink_drive_nrst(d->s, 1);
        if (rc == SFI_OK)
            rc = wait_halt(p, 500);
        if (rc == SFI_OK)
            rc = sfi_stlink_write_dbg(d->s, SFI_ARMV7M_DEMCR, SFI_ARMV7M_DEMCR_TRCENA);
        return rc;
    }
    default:
        return SFI_OK; /* hot-plug: the core keeps running untouched */
    }
}

static int st_reset(struct sfi_probe *p, enum sfi_reset kind)
{
    struct stdrv *d = drv_of(p);
    switch (kind) {
    case SFI_RESET_HW: {
        int rc = sfi_stlink_drive_nrst(d->s, 0);
        if (rc == SFI_OK) {
            sfi_sleep_ms(sfi_probe_ctx(p), 2);
            rc = sfi_stlink_drive_nrst(d->s, 1);
        }
        return rc;
    }
    case SFI_RESET_CORE:
        return sfi_stlink_write_dbg(d->s, SFI_ARMV7M_AIRCR, SFI_ARMV7M_AIRCR_CORERESET);
    default:
        return sfi_stlink_write_dbg(d->s, SFI_ARMV7M_AIRCR, SFI_ARMV7M_AIRCR_SYSRESET);
    }
}

static int st_read32(struct sfi_probe *p, uint32_t addr, uint32_t *v)
{
    return sfi_stlink_read_dbg(drv_of(p)->s, addr, v);
}

static int refine(struct sfi_probe *p, int rc, uint64_t addr, size_t n, const char *op)
{
    return sfi_probe_refine_fault(p, rc, addr, n, op, st_read32);
}

static int range_ok(struct sfi_probe *p, uint64_t addr, size_t n)
{
    if (addr > 0xFFFFFFFFu || n > 0x100000000u - addr)
        return sfi_seterr(sfi_probe_ctx(p), SFI_E_TARGET, "stlink: 0x%llx+%zu is beyond 32 bits",
                          (unsigned long long)addr, n);
    return SFI_OK;
}

static int st_read_mem(struct sfi_probe *p, uint64_t addr, void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_mem(drv_of(p)->s, (uint32_t)addr, buf, n, 32);
    return refine(p, rc, addr, n, "read");
}

static int st_write_mem(struct sfi_probe *p, uint64_t addr, const void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    if (rc == SFI_OK)
        rc = sfi_stlink_write_mem(drv_of(p)->s, (uint32_t)addr, buf, n, 32);
    return refine(p, rc, addr, n, "write");
}

static int st_read_ap(struct sfi_probe *p, unsigned ap, unsigned reg, uint32_t *v)
{
    return sfi_stlink_read_dap(drv_of(p)->s, ap, reg, v);
}

static void st_describe(struct sfi_probe *p, struct sfi_probe_info *info)
{
    struct stdrv *d = drv_of(p);
    snprintf(info->serial, sizeof info->serial, "%s", d->serial);
    if (d->tcp)
        snprintf(info->desc, sizeof info->desc, "ST-LINK %s via stlink-server %s", d->version,
                 d->where);
    else
        snprintf(info->desc, sizeof info->desc, "ST-LINK %s (USB)", d->version);
}

#if SFI_WITH_USB
const struct sfi_probe_driver sfi_drv_stlink = {
    .name = "stlink",
    .caps = SFI_PROBE_CAP_SWD,
    .priv_size = sizeof(struct stdrv),
    .scan = usb_scan,
    .open = usb_open,
    .close = st_close,
    .connect = st_connect,
    .reset = st_reset,
    .read_mem = st_read_mem,
    .write_mem = st_write_mem,
    .read_ap = st_read_ap,
    .describe = st_describe,
};
#endif

const struct sfi_probe_driver sfi_drv_stlink_tcp = {
    .name = "stlink-tcp",
    .caps = SFI_PROBE_CAP_SWD,
    .priv_size = sizeof(struct stdrv),
    .scan = tcp_scan,
    .open = tcp_open,
    .close = st_close,
    .connect = st_connect,
    .reset = st_reset,
    .read_mem = st_read_mem,
    .write_mem = st_write_mem,
    .read_ap = st_read_ap,
    .describe = st_describe,
};
