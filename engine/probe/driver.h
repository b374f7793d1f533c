/* driver.h (internal): the probe driver vtable. One const instance per drv_*.c, listed in
 * drivers.c. probe.c owns state checks, logging and defaults; a NULL optional op makes it
 * return SFI_E_UNSUPPORTED. Driver state is allocated after struct sfi_probe. */
#ifndef SFI_PROBE_DRIVER_H
#define SFI_PROBE_DRIVER_H

#include "sfi/probe.h"

struct sfi_probe_driver {
    const char *name;       /* matches cfg.driver */
    unsigned caps;          /* SFI_PROBE_CAP_* */
    size_t priv_size;       /* driver state allocated after struct sfi_probe */
    int (*scan)(struct sfi_ctx *, sfi_probe_found_fn found, void *ud);
    int (*open)(struct sfi_probe *, const struct sfi_probe_cfg *);
    void (*close)(struct sfi_probe *);                        /* cannot fail */
    int (*connect)(struct sfi_probe *, enum sfi_connect mode, unsigned khz);
    int (*reset)(struct sfi_probe *, enum sfi_reset);
    int (*read_mem)(struct sfi_probe *, uint64_t addr, void *buf, size_t n);
    int (*write_mem)(struct sfi_probe *, uint64_t addr, const void *buf, size_t n);
    int (*read_ap)(struct sfi_probe *, unsigned ap, unsigned reg, uint32_t *v); /* optional */
    struct sfi_sim *(*sim)(struct sfi_probe *);                                /* optional */
    void (*describe)(struct sfi_probe *, struct sfi_probe_info *);            /* optional */
};

/* Alphabetical, NULL-terminated. */
extern const struct sfi_probe_driver *const sfi_probe_drivers[];

/* Driver state of p (as libusb's). */
void *sfi_probe_priv(struct sfi_probe *p);

/* A bus fault (SFI_E_TARGET) on a memory access, made precise: when the target no longer
 * answers even a read of CPUID, SFI_E_NO_DEVICE; on flash under read-out protection as the
 * probe's cfg.rdp (the device pack) describes it, SFI_E_LOCKED; else rc unchanged. read32
 * reads through the driver. */
int sfi_probe_refine_fault(struct sfi_probe *p, int rc, uint64_t addr, size_t n, const char *op,
                           int (*read32)(struct sfi_probe *, uint32_t, uint32_t *));

extern const struct sfi_probe_driver sfi_drv_gdb;
extern const struct sfi_probe_driver sfi_drv_sim;
extern const struct sfi_probe_driver sfi_drv_stlink;     /* SFI_WITH_USB only */
extern const struct sfi_probe_driver sfi_drv_stlink_tcp;

#endif
