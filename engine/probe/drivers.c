/* drivers.c: the probe driver registry: alphabetical, NULL-terminated. USB drivers (stlink)
 * join under SFI_WITH_USB; gdb and stlink-tcp are always there. */
#include "probe/driver.h"

const struct sfi_probe_driver *const sfi_probe_drivers[] = {
    &sfi_drv_gdb,
    &sfi_drv_sim,
#if SFI_WITH_USB
    &sfi_drv_stlink,
#endif
    &sfi_drv_stlink_tcp,
    NULL,
};
