/* stlink.h: the ST-LINK protocol engine. A client session (struct sfi_stlink) speaks the
 * ST-LINK command set over an abstract transport (USB via libusb, or the stlink-server TCP
 * protocol). The simulator's side (sim/include/sfi/stlink_server.h) answers the same
 * commands for a simulated ST-LINK/V3 and shares the definitions below. */
#ifndef SFI_STLINK_H
#define SFI_STLINK_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants -------------------------------------------------------------------------- */

#define SFI_STLINK_VID 0x0483u
#define SFI_STLINK_CDB_LEN 16
#define SFI_STLINK_BUF_SIZE 6144u  /* probe data buffer: max 16/32-bit transfer */
#define SFI_STLINK_TAR_WINDOW 1024u /* TAR auto-increment window assumed for Cortex-M7 */
#define SFI_STLINK_TCP_HOST "127.0.0.1" /* stlink-server listens on the loopback only */
#define SFI_STLINK_TCP_PORT 7184u

/* ST-LINK status bytes (first byte of a status reply, or of the GETLASTRWSTATUS2 reply). */
enum sfi_stlink_status {
    SFI_STLINK_OK = 0x80,
    SFI_STLINK_FAULT = 0x81,
    SFI_STLINK_JTAG_GET_IDCODE_ERROR = 0x09,
    SFI_STLINK_JTAG_WRITE_ERROR = 0x0C,
    SFI_STLINK_JTAG_WRITE_VERIF_ERROR = 0x0D,
    SFI_STLINK_SWD_AP_WAIT = 0x10,
    SFI_STLINK_SWD_AP_FAULT = 0x11,
    SFI_STLINK_SWD_AP_ERROR = 0x12,
    SFI_STLINK_SWD_AP_PARITY_ERROR = 0x13,
    SFI_STLINK_SWD_DP_WAIT = 0x14,
    SFI_STLINK_SWD_DP_FAULT = 0x15,
    SFI_STLINK_SWD_DP_ERROR = 0x16,
    SFI_STLINK_SWD_DP_PARITY_ERROR = 0x17,
    SFI_STLINK_SWD_AP_WDATA_ERROR = 0x18,
    SFI_STLINK_SWD_AP_STICKY_ERROR = 0x19,
    SFI_STLINK_SWD_AP_STICKYORUN_ERROR = 0x1A,
    SFI_STLINK_BAD_AP_ERROR = 0x1D,
};

/* Probe modes reported by GET_CURRENT_MODE. */
enum sfi_stlink_mode {
    SFI_STLINK_MODE_DFU = 0,
    SFI_STLINK_MODE_MASS = 1,
    SFI_STLINK_MODE_DEBUG = 2,
    SFI_STLINK_MODE_SWIM = 3,
    SFI_STLINK_MODE_BOOTLOADER = 4,
};

/* Firmware feature flags (derived from the probe generation and JTAG firmware version). */
enum {
    SFI_STLINK_F_HAS_TRACE = 1u << 0,           /* trace and target voltage */
    SFI_STLINK_F_HAS_GETLASTRWSTATUS2 = 1u << 1,
    SFI_STLINK_F_HAS_SWD_SET_FREQ = 1u << 2,    /* F2 43 divisor (V2) */
    SFI_STLINK_F_HAS_JTAG_SET_FREQ = 1u << 3,
    SFI_STLINK_F_HAS_DAP_REG = 1u << 4,         /* F2 45/46 */
    SFI_STLINK_F_QUIRK_JTAG_DP_READ = 1u << 5,
    SFI_STLINK_F_HAS_MEM_16BIT = 1u << 6,       /* F2 47/48 */
    SFI_STLINK_F_HAS_AP_INIT = 1u << 7,         /* F2 4B/4C */
    SFI_STLINK_F_FIX_CLOSE_AP = 1u << 8,
    SFI_STLINK_F_HAS_DPBANKSEL = 1u << 9,
    SFI_STLINK_F_HAS_RW8_512BYTES = 1u << 10,
    SFI_STLINK_F_HAS_COM_FREQ = 1u << 11,       /* F2 61/62 (V3) */
};

/* Decoded probe identity. */
struct sfi_stlink_version {
    unsigned stlink; /* generation: 1, 2 or 3 */
    unsigned jtag;   /* JTAG/SWD firmware version (0: debug not supported) */
    unsigned swim;
    unsigned msd;
    unsigned bridge;
    uint16_t vid, pid;
    unsigned api;    /* JTAG API: 1, 2 or 3 */
    unsigned flags;  /* SFI_STLINK_F_* */
};

/* ---- pure helpers (status.c, version.c) ------------------------------------------------- */

/* "SWD_AP_FAULT" for 0x11, NULL for an unknown byte. Static string. */
const char *sfi_stlink_status_name(unsigned status);
/* Maps an ST-LINK status byte to SFI_OK or an error (sfi_seterr names op and the status):
 * FAULT/AP_FAULT/AP_ERROR/sticky -> SFI_E_TARGET, WAIT -> SFI_E_TIMEOUT (after retries),
 * DP_FAULT/DP_ERROR/IDCODE_ERROR -> SFI_E_NO_DEVICE, parity/WDATA -> SFI_E_PROTOCOL,
 * JTAG_WRITE_ERROR -> SFI_E_IO, BAD_AP -> SFI_E_INVALID, unknown -> SFI_E_PROTOCOL. */
int sfi_stlink_status_err(struct sfi_ctx *ctx, unsigned status, const char *op);
/* True for the two WAIT statuses (the caller retries). */
int sfi_stlink_status_is_wait(unsigned status);
/* Maps an stlink-server status word: 1 -> SFI_OK, 0x2004 TCP_BUSY -> SFI_E_BUSY,
 * 0x1001 -> SFI_E_TIMEOUT, 0x1003/0x2002 -> SFI_E_NO_DEVICE, others -> SFI_E_PROTOCOL. */
int sfi_stlink_server_status_err(struct sfi_ctx *ctx, uint32_t status, const char *op);
const char *sfi_stlink_server_status_name(uint32_t status);

/* Decodes a 6-byte GET_VERSION reply; ex12 is the 12-byte GET_VERSION_EX reply or NULL (it
 * is required when the generation is 3). Errors: SFI_E_PROTOCOL (generation 3 without ex,
 * unknown generation), written to *out only on success. ctx may be NULL. */
int sfi_stlink_decode_version(struct sfi_ctx *ctx, const uint8_t rep6[6], const uint8_t *ex12,
                              struct sfi_stlink_version *out);
/* True when GET_VERSION_EX must follow (generation 3 with x == y == 0). */
int sfi_stlink_needs_version_ex(const uint8_t rep6[6]);
/* "V3J7S0", "V2J37S7", "V2J40M27" into buf (always NUL-terminated). */
void sfi_stlink_version_str(const struct sfi_stlink_version *v, char *buf, size_t n);
/* The V2 SWD divisor for the fastest table speed <= khz (slowest entry if none);
 * *actual_khz gets that speed. */
unsigned sfi_stlink_swd_divisor(unsigned khz, unsigned *actual_khz);

/* ---- transports ------------------------------------------------------------------------- */

enum sfi_stlink_dir { SFI_STLINK_OUT = 0, SFI_STLINK_IN = 1 };

struct sfi_stlink_transport;
struct sfi_trace_writer; /* sfi/trace.h */
struct sfi_stlink_transport_ops {
    const char *name; /* "usb", "tcp", "loopback", ... */
    /* One command: the 16-byte CDB, then len data bytes OUT (dir OUT) or IN (dir IN).
     * An IN reply shorter than len is SFI_E_PROTOCOL. Errors set the ctx detail. */
    int (*xfer)(struct sfi_stlink_transport *t, const uint8_t cdb[16], enum sfi_stlink_dir dir,
                uint8_t *data, size_t len, unsigned timeout_ms);
    void (*close)(struct sfi_stlink_transport *t); /* frees t; cannot fail */
    /* Optional: cdb (with its data as xfer) and then cdb2 (IN, len2 bytes into rep2) sent back
     * to back before either reply is read, i.e. one round trip for a memory command and its
     * status query. Both commands always run; the first error is returned. */
    int (*xfer_pair)(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                     enum sfi_stlink_dir dir, uint8_t *data, size_t len,
                     const uint8_t cdb2[16], uint8_t *rep2, size_t len2, unsigned timeout_ms);
};
/* Base of every transport; concrete transports embed it first. */
struct sfi_stlink_transport {
    const struct sfi_stlink_transport_ops *ops;
    struct sfi_ctx *ctx;
    char serial[33];
    uint16_t vid, pid;
    unsigned server_api; /* stlink-server API version (TCP), 0 for USB */
    struct sfi_trace_writer *record; /* NULL, or where the traffic is recorded (not owned) */
};

/* NULL-safe. */
void sfi_stlink_transport_close(struct sfi_stlink_transport *t);

/* One connected probe, for listings. */
struct sfi_stlink_info {
    char serial[33];
    uint16_t vid, pid;
    char version[32]; /* "V3J7S0", or "" when the probe could not be opened */
    int in_use;       /* TCP: already opened by another client */
};
typedef void (*sfi_stlink_found_fn)(void *ud, const struct sfi_stlink_info *info);

/* stlink-server TCP client (tcp.c). host NULL = 127.0.0.1, port 0 = 7184, serial NULL = first
 * ST-LINK, timeout_ms 0 = 1000 (budget for each reply). */
struct sfi_stlink_tcp_cfg {
    const char *host;
    unsigned port;
    const char *serial;
    unsigned timeout_ms;
    struct sfi_trace_writer *record; /* NULL, or records the session (not owned) */
};
/* Connects, enumerates and opens the device. Errors: SFI_E_NO_DEVICE (no server, closed),
 * SFI_E_NOT_FOUND (no probe / serial), SFI_E_BUSY (in use, TCP_BUSY), SFI_E_TIMEOUT,
 * SFI_E_PROTOCOL, SFI_E_NOMEM. *out owned by the caller (sfi_stlink_transport_close). */
int sfi_stlink_tcp_open(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        struct sfi_stlink_transport **out);
/* Calls found for every ST-LINK the server knows. Errors as sfi_stlink_tcp_open. */
int sfi_stlink_tcp_list(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        sfi_stlink_found_fn found, void *ud);
/* The stlink-server address cfg (NULL: none) names, with the defaults SFI_STLINK_TCP_HOST and
 * SFI_STLINK_TCP_PORT applied: the one place the defaults and the range check are (open,
 * list and the probe driver's descriptions use it). Errors: SFI_E_INVALID (port above 65535,
 * host not an IPv4 address; the detail names both). */
int sfi_stlink_tcp_addr(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        const char **host, unsigned *port);

/* USB via libusb (usb.c; SFI_E_UNSUPPORTED when built without SFI_WITH_USB). serial NULL =
 * first probe. Errors: SFI_E_NOT_FOUND, SFI_E_ACCESS (detail names the udev rules file),
 * SFI_E_BUSY, SFI_E_NO_DEVICE, SFI_E_IO, SFI_E_NOMEM. */
int sfi_stlink_usb_open(struct sfi_ctx *ctx, const char *serial,
                        struct sfi_stlink_transport **out);
int sfi_stlink_usb_list(struct sfi_ctx *ctx, sfi_stlink_found_fn found, void *ud);
/* True when pid is an ST-LINK product ID this driver supports (V2, V2-1, V3 family). */
int sfi_stlink_usb_pid_known(uint16_t pid);

/* ---- client session (stlink.c) ---------------------------------------------------------- */

struct sfi_stlink;

/* Takes ownership of t (closed by sfi_stlink_close, or here on failure). Reads the version
 * (GET_VERSION, GET_VERSION_EX on V3) and derives the feature flags; does not change mode.
 * Errors: transport errors, SFI_E_UNSUPPORTED (V1 or no SWD firmware), SFI_E_NOMEM. */
int sfi_stlink_open(struct sfi_ctx *ctx, struct sfi_stlink_transport *t,
                    struct sfi_stlink **out);
void sfi_stlink_close(struct sfi_stlink *s);
const struct sfi_stlink_version *sfi_stlink_get_version(const struct sfi_stlink *s);
struct sfi_stlink_transport *sfi_stlink_transport_of(struct sfi_stlink *s);
/* Per-command timeout (default 1000 ms). */
void sfi_stlink_set_timeout(struct sfi_stlink *s, unsigned ms);
/* TAR auto-increment window for 16/32-bit transfers (default 1024; 4096 for M3/M4). */
void sfi_stlink_set_tar_window(struct sfi_stlink *s, unsigned bytes);

int sfi_stlink_current_mode(struct sfi_stlink *s, enum sfi_stlink_mode *mode);
/* Leaves DFU (F3 07) or debug mode (F2 21) as the current mode requires. */
int sfi_stlink_leave_mode(struct sfi_stlink *s);
/* F2 30 A3: enter SWD without reset. */
int sfi_stlink_enter_swd(struct sfi_stlink *s);
/* Selects the fastest supported speed <= khz (V2: divisor table, V3: GET/SET_COM_FREQ).
 * *actual_khz (may be NULL) gets it. Errors: SFI_E_UNSUPPORTED (old V2 firmware). */
int sfi_stlink_set_speed(struct sfi_stlink *s, unsigned khz, unsigned *actual_khz);
/* Target voltage in millivolts. Errors: SFI_E_UNSUPPORTED (no HAS_TRACE), SFI_E_PROTOCOL. */
int sfi_stlink_voltage(struct sfi_stlink *s, unsigned *mv);
/* DP IDCODE/DPIDR (F2 31). */
int sfi_stlink_idcode(struct sfi_stlink *s, uint32_t *idcode);

/* Memory with width 8, 16 or 32: the body uses width-sized accesses, chunked so that no
 * transfer crosses the TAR window nor exceeds the probe buffer; an unaligned head or tail is
 * done with 8-bit accesses. Each chunk is checked with GETLASTRWSTATUS2 (or GETLASTRWSTATUS)
 * and retried on WAIT. Errors: SFI_E_TARGET (bus fault), SFI_E_TIMEOUT, SFI_E_INVALID (bad
 * width), SFI_E_UNSUPPORTED (16-bit on old firmware), status/transport errors. */
int sfi_stlink_read_mem(struct sfi_stlink *s, uint32_t addr, void *buf, size_t n,
                        unsigned width);
int sfi_stlink_write_mem(struct sfi_stlink *s, uint32_t addr, const void *buf, size_t n,
                         unsigned width);
/* Debug registers (F2 36 / F2 35). */
int sfi_stlink_read_dbg(struct sfi_stlink *s, uint32_t addr, uint32_t *v);
int sfi_stlink_write_dbg(struct sfi_stlink *s, uint32_t addr, uint32_t v);
/* Core registers by DCRSR REGSEL (F2 33 / F2 34). */
int sfi_stlink_read_reg(struct sfi_stlink *s, unsigned regsel, uint32_t *v);
int sfi_stlink_write_reg(struct sfi_stlink *s, unsigned regsel, uint32_t v);
/* F2 32 RESETSYS. */
int sfi_stlink_reset_sys(struct sfi_stlink *s);
/* F2 3C: 0 drive low, 1 release high, 2 pulse. */
int sfi_stlink_drive_nrst(struct sfi_stlink *s, unsigned state);
/* F2 4B INIT_AP (only sent when the firmware needs it). */
int sfi_stlink_init_ap(struct sfi_stlink *s, unsigned ap);
/* DP (port 0xFFFF) or AP register access (F2 45 / F2 46). Errors: SFI_E_UNSUPPORTED. */
int sfi_stlink_read_dap(struct sfi_stlink *s, unsigned port, unsigned addr, uint32_t *v);
int sfi_stlink_write_dap(struct sfi_stlink *s, unsigned port, unsigned addr, uint32_t v);
#define SFI_STLINK_DP_PORT 0xFFFFu

#ifdef __cplusplus
}
#endif
#endif
