/* stlink_server.h: the simulator's side of the ST-LINK protocol: a simulated ST-LINK/V3 that
 * answers the same commands a real probe does (the command and status definitions it shares
 * with the client are in sfi/stlink.h), the simulated STM32H7 as its target, the stlink-server
 * TCP protocol in front of it, and an in-process transport into it for tests. Part of the
 * simulator's ring (sim/): the engine reaches the simulator only through the sim probe driver. */
#ifndef SFI_STLINK_SERVER_H
#define SFI_STLINK_SERVER_H

#include "sfi/stlink.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- server side (sim/stlink_server.c): a simulated ST-LINK/V3 ------------------------------- */

/* Target operations. Each returns an ST-LINK status byte: SFI_STLINK_OK (0x80), or e.g.
 * SFI_STLINK_SWD_AP_FAULT for a bus fault, SFI_STLINK_SWD_AP_WAIT, SFI_STLINK_SWD_DP_ERROR
 * for an unreachable debug port. NULL ops answer SFI_STLINK_FAULT (read_mem/write_mem) or a
 * neutral default. width is 8, 16 or 32. */
struct sfi_stlink_target_ops {
    unsigned (*read_mem)(void *ud, uint32_t addr, uint8_t *buf, size_t n, unsigned width);
    unsigned (*write_mem)(void *ud, uint32_t addr, const uint8_t *buf, size_t n,
                          unsigned width);
    unsigned (*read_dbg)(void *ud, uint32_t addr, uint32_t *v);
    unsigned (*write_dbg)(void *ud, uint32_t addr, uint32_t v);
    unsigned (*read_core_reg)(void *ud, unsigned regsel, uint32_t *v);
    unsigned (*write_core_reg)(void *ud, unsigned regsel, uint32_t v);
    unsigned (*reset_sys)(void *ud);
    unsigned (*drive_nrst)(void *ud, unsigned state);
    unsigned (*idcode)(void *ud, uint32_t *dpidr);
    unsigned (*voltage)(void *ud, unsigned *mv);
    unsigned (*read_dap)(void *ud, unsigned port, unsigned addr, uint32_t *v);  /* optional */
    unsigned (*write_dap)(void *ud, unsigned port, unsigned addr, uint32_t v); /* optional */
};

struct sfi_stlink_server_cfg {
    uint16_t pid;       /* 0 = 0x374F (V3SET); 0x3754 also fits OpenOCD 0.12 */
    unsigned jtag;      /* firmware J version, 0 = 7 */
    const char *serial; /* NULL = "SFISIM0000000000000000001" */
};

struct sfi_stlink_server;
int sfi_stlink_server_new(struct sfi_ctx *ctx, const struct sfi_stlink_server_cfg *cfg,
                          const struct sfi_stlink_target_ops *ops, void *ud,
                          struct sfi_stlink_server **out);
void sfi_stlink_server_free(struct sfi_stlink_server *srv);
const char *sfi_stlink_server_serial(const struct sfi_stlink_server *srv);
uint16_t sfi_stlink_server_pid(const struct sfi_stlink_server *srv);
/* Back to power-on state (mode DFU... MASS, speed default, last R/W status OK). */
void sfi_stlink_server_reset(struct sfi_stlink_server *srv);
/* The number of OUT data bytes the command expects (write memory, RW_MISC_OUT), else 0. */
size_t sfi_stlink_server_out_len(const uint8_t cdb[16]);
/* Executes one command: out/out_len are its OUT data. Writes the IN reply (possibly empty)
 * to reply (cap >= SFI_STLINK_BUF_SIZE + 16 is always enough) and its length to *reply_len.
 * Errors: SFI_E_UNSUPPORTED (unknown command; detail names the bytes), SFI_E_PROTOCOL (OUT
 * data length differs from the header), SFI_E_INVALID (reply buffer too small). */
int sfi_stlink_server_handle(struct sfi_stlink_server *srv, const uint8_t cdb[16],
                             const uint8_t *out, size_t out_len, uint8_t *reply, size_t cap,
                             size_t *reply_len);

/* An in-process transport into a server (sim/stlink_loopback.c); srv stays owned by the caller. */
int sfi_stlink_loopback_new(struct sfi_ctx *ctx, struct sfi_stlink_server *srv,
                            struct sfi_stlink_transport **out);

/* ---- the simulated STM32H7 as a server target (sim/stlink_target.c) -------------------------- */

struct sfi_sim;
/* Adapter from struct sfi_stlink_target_ops to the sim's debug side: every access connects
 * the debug port on demand (hot-plug); NRST low then high is a connect under reset (or a
 * hardware reset when already connected); RESETSYS is a system reset. Sim errors map to
 * statuses: LOCKED/TARGET -> 0x11 AP fault, NO_DEVICE -> 0x16 DP error, IO -> 0x12 AP error.
 * The target keeps a reference on sim. */
struct sfi_stlink_simtarget;
extern const struct sfi_stlink_target_ops sfi_stlink_simtarget_ops;
int sfi_stlink_simtarget_new(struct sfi_ctx *ctx, struct sfi_sim *sim,
                             struct sfi_stlink_simtarget **out);
/* The debugger left: the sim's debug port is released (NRST released too). */
void sfi_stlink_simtarget_detach(struct sfi_stlink_simtarget *t);
void sfi_stlink_simtarget_free(struct sfi_stlink_simtarget *t);

/* ---- stlink-server TCP protocol, server side (sim/stlink_tcpserver.c) ------------------------ */

/* Fault knobs: applied to the nth SEND_USB_CMD (1-based, 0 = never). */
enum sfi_stlink_tcp_fault {
    SFI_STLINK_TCP_FAULT_NONE = 0,
    SFI_STLINK_TCP_FAULT_CLOSE_MID_REPLY, /* send half the reply, then close the client */
    SFI_STLINK_TCP_FAULT_SHORT_REPLY,     /* send a truncated reply, keep the connection */
    SFI_STLINK_TCP_FAULT_SILENT,          /* never answer that command */
    SFI_STLINK_TCP_FAULT_STATUS,          /* answer with status word fault_status */
};
struct sfi_stlink_tcpserver_cfg {
    unsigned port; /* 0 = ephemeral (see sfi_stlink_tcpserver_port) */
    unsigned api;  /* server API version reported, 0 = 2 */
    enum sfi_stlink_tcp_fault fault;
    unsigned fault_at;
    uint32_t fault_status;
    unsigned idle_ms; /* drop a client silent this long, 0 = never */
    unsigned max_clients; /* run returns SFI_OK after serving this many clients, 0 = no limit */
    /* Called when a client was accepted, before its first request (client_start), and after
     * it left (client_done: n = clients served so far, cmds = its SEND_USB_CMDs); optional.
     * Both run on the thread of sfi_stlink_tcpserver_run. */
    void (*client_start)(void *ud);
    void (*client_done)(void *ud, unsigned long n, unsigned long cmds);
    void *client_ud;
};
struct sfi_stlink_tcpserver;
/* Binds 127.0.0.1:port and listens. srv stays owned by the caller.
 * Errors: SFI_E_BUSY (port in use), SFI_E_ACCESS, SFI_E_IO, SFI_E_NOMEM. */
int sfi_stlink_tcpserver_new(struct sfi_ctx *ctx, const struct sfi_stlink_tcpserver_cfg *cfg,
                             struct sfi_stlink_server *srv, struct sfi_stlink_tcpserver **out);
unsigned sfi_stlink_tcpserver_port(const struct sfi_stlink_tcpserver *ts);
/* Serves clients one after another until sfi_stlink_tcpserver_stop or ctx cancellation;
 * returns SFI_OK when stopped, SFI_E_CANCELED when canceled, SFI_E_IO if accept fails. */
int sfi_stlink_tcpserver_run(struct sfi_stlink_tcpserver *ts);
/* Thread- and signal-safe; run returns within ~100 ms. */
void sfi_stlink_tcpserver_stop(struct sfi_stlink_tcpserver *ts);
/* Number of SEND_USB_CMD served so far. */
unsigned long sfi_stlink_tcpserver_commands(const struct sfi_stlink_tcpserver *ts);
void sfi_stlink_tcpserver_free(struct sfi_stlink_tcpserver *ts);

#ifdef __cplusplus
}
#endif
#endif
