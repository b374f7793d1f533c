/* probe.h: the debug-probe layer: open a probe by driver name, connect to the target (normal,
 * hot-plug, under reset), reset it, read and write its memory, halt and resume the core.
 * Drivers live behind a vtable (engine/probe/driver.h); "sim" is the simulated STM32H7. */
#ifndef SFI_PROBE_H
#define SFI_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"
#include "sfi/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sfi_probe;

enum sfi_transport { SFI_TRANSPORT_SWD = 0, SFI_TRANSPORT_JTAG };
enum sfi_connect { SFI_CONNECT_NORMAL = 0, SFI_CONNECT_HOTPLUG, SFI_CONNECT_UNDER_RESET };
enum sfi_reset { SFI_RESET_SW = 0, SFI_RESET_HW, SFI_RESET_CORE };

#define SFI_PROBE_CAP_SWD 0x1u
#define SFI_PROBE_CAP_JTAG 0x2u
#define SFI_PROBE_CAP_SWO 0x4u

/* The "gdb" driver: a debug server that speaks GDB's remote serial protocol (JLinkGDBServer,
 * OpenOCD, pyOCD, probe-rs, sfirun sim-server --gdb) over TCP, or a Black Magic Probe on a
 * serial port. What differs between servers (the dialect: monitor commands) comes from the
 * caller (scripts/sfi/gdb.lua); the strings are copied at open. */
#define SFI_GDB_MAX_ATTACH 8
#define SFI_GDB_MAX_LOST 8
struct sfi_gdb_cfg {
    const char *host;            /* TCP host name or address, or NULL with tty */
    unsigned port;
    const char *tty;             /* serial device (Black Magic Probe) */
    unsigned baud;               /* serial speed, 0 = 115200 */
    unsigned timeout_ms;         /* every wait for a reply, 0 = 5000 */
    unsigned monitor_timeout_ms; /* a monitor (qRcmd) command's reply, 0 = 30000 */
    const char *dialect;         /* its name, for messages */
    /* After the handshake, in order: "monitor CMD" (qRcmd) or a raw packet ("vAttach;1"). */
    const char *attach[SFI_GDB_MAX_ATTACH];
    const char *connect[3];      /* monitor command per enum sfi_connect; NULL = built in */
    const char *reset[3];        /* monitor command per enum sfi_reset; NULL = AIRCR write */
    const char *speed;           /* monitor command with one %u (kHz); NULL = none */
    /* Substrings of monitor output that mean the target is gone (lost) or that the command
     * failed (failed), for servers that answer a failed command with text, not Enn. */
    const char *lost[SFI_GDB_MAX_LOST];
    const char *failed[SFI_GDB_MAX_LOST];
    int no_x;                    /* never use X (servers whose X acknowledges before writing) */
    int reattach;                /* run attach again on every connect (after the mode command) */
};

/* Read-out protection as the device pack describes it (probe.lua passes the pack's RDP option
 * byte and flash banks): a bus fault on flash [flash_lo, flash_hi) while the level field
 * (bits shift .. shift + bits - 1 of the register at reg) is not open is reported as
 * SFI_E_LOCKED. All zero (flash_hi == 0): bus faults stay SFI_E_TARGET. */
struct sfi_probe_rdp {
    uint32_t reg;
    unsigned shift, bits;            /* bits 1..32, shift + bits <= 32 */
    uint32_t open;                   /* the field value of "no protection" */
    uint32_t flash_lo, flash_hi;
};

struct sfi_probe_cfg {
    const char *driver;              /* "sim", "stlink" (USB), "stlink-tcp", "gdb"; NULL = "sim" */
    const char *serial;              /* NULL = any */
    unsigned tcp_port;               /* stlink-tcp: stlink-server port on 127.0.0.1, 0 = 7184 */
    enum sfi_transport transport;
    unsigned speed_khz;              /* 0 = driver default */
    enum sfi_connect connect;        /* how sfi_probe_open connects */
    const struct sfi_sim_cfg *sim;   /* sim driver: the chip to create */
    struct sfi_sim *sim_attach;      /* sim driver: or an existing chip (a reference is taken) */
    const struct sfi_gdb_cfg *gdb;   /* gdb driver */
    int no_connect;                  /* open only (a server in front of a chip that may not
                                      * answer, e.g. at RDP level 2); connect later */
    const char *record;              /* stlink, stlink-tcp: record the session to this capture */
    struct sfi_probe_rdp rdp;        /* bus faults on protected flash: SFI_E_LOCKED */
};

struct sfi_probe_info {
    const char *driver;              /* static string */
    char serial[64];
    char desc[128];
};

typedef void (*sfi_probe_found_fn)(void *ud, const struct sfi_probe_info *info);

/* Calls found for every probe every driver can see. Errors: none fatal (drivers that fail to
 * scan are logged and skipped); returns SFI_OK. */
int sfi_probe_scan(struct sfi_ctx *ctx, sfi_probe_found_fn found, void *ud);

/* Opens the probe and connects to the target as cfg->connect says. *out owned by the caller
 * (sfi_probe_close). Errors: SFI_E_NOT_FOUND (no such driver), SFI_E_INVALID (bad cfg),
 * SFI_E_NO_DEVICE (target silent), SFI_E_IO, SFI_E_NOMEM, driver errors. */
int sfi_probe_open(struct sfi_ctx *ctx, const struct sfi_probe_cfg *cfg, struct sfi_probe **out);
/* Disconnects and closes; NULL-safe; never fails (problems are logged). */
void sfi_probe_close(struct sfi_probe *p);

/* Reconnects (after a reset, power loss, RSS). Errors: SFI_E_NO_DEVICE, SFI_E_IO. */
int sfi_probe_connect(struct sfi_probe *p, enum sfi_connect mode);
/* Errors: SFI_E_NO_DEVICE (link lost), SFI_E_IO, SFI_E_UNSUPPORTED. */
int sfi_probe_reset(struct sfi_probe *p, enum sfi_reset kind);
/* Memory access through the MEM-AP. Errors: SFI_E_NO_DEVICE (not connected / target gone),
 * SFI_E_LOCKED (a bus error on flash under read-out protection, when cfg.rdp describes it),
 * SFI_E_TARGET (other bus faults), SFI_E_TIMEOUT, SFI_E_IO. */
int sfi_probe_read_mem(struct sfi_probe *p, uint64_t addr, void *buf, size_t n);
int sfi_probe_write_mem(struct sfi_probe *p, uint64_t addr, const void *buf, size_t n);
int sfi_probe_read32(struct sfi_probe *p, uint64_t addr, uint32_t *v);
int sfi_probe_write32(struct sfi_probe *p, uint64_t addr, uint32_t v);
/* Core control through DHCSR. Errors as read/write. */
int sfi_probe_halt(struct sfi_probe *p);
int sfi_probe_resume(struct sfi_probe *p);
/* AP register read (drivers that have it). Errors: SFI_E_UNSUPPORTED. */
int sfi_probe_read_ap(struct sfi_probe *p, unsigned ap, unsigned reg, uint32_t *v);

/* The probe's identity (driver, serial, description). */
int sfi_probe_info(const struct sfi_probe *p, struct sfi_probe_info *info);
const char *sfi_probe_driver_name(const struct sfi_probe *p);
int sfi_probe_is_connected(const struct sfi_probe *p);
struct sfi_ctx *sfi_probe_ctx(const struct sfi_probe *p);
/* The simulated chip behind a "sim" probe (borrowed), NULL for real probes. */
struct sfi_sim *sfi_probe_sim(struct sfi_probe *p);

const char *sfi_connect_name(enum sfi_connect mode);
const char *sfi_reset_name(enum sfi_reset kind);

#ifdef __cplusplus
}
#endif
#endif
