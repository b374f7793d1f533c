/* drivers.c: the probe driver registry: alphabetical, NULL-terminated. USB drivers (cmsis-dap,
 * stlink) join under SFI_WITH_USB. */
#include "probe/driver.h"

const struct sfi_probe_driver *const sfi_probe_drivers[] = {
    &sfi_drv_sim,
    NULL,
};
