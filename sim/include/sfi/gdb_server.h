/* gdb_server.h: the simulated STM32H7 served over the GDB remote serial protocol (what
 * `sfirun sim-server --gdb PORT` runs), so any GDB client (gdb-multiarch, IDEs, sfirun's own
 * "gdb:" probe driver) can attach to it. Part of the simulator's ring (sim/). One client at a
 * time on 127.0.0.1. The simulated core does not execute instructions: it is always halted
 * for GDB ("S05"); memory, core registers (through DCRSR/DCRDR), resets and connects behave as
 * through the simulated ST-LINK, with the same knobs. Monitor commands: "help". */
#ifndef SFI_GDB_SERVER_H
#define SFI_GDB_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sfi_sim;

struct sfi_gdb_server_cfg {
    unsigned port;          /* 0 = ephemeral */
    unsigned packet_size;   /* announced PacketSize, 0 = 0x4000 (bounded to 256..64 KiB) */
    unsigned max_clients;   /* run returns after this many clients, 0 = no limit */
    int no_listen;          /* tests and fuzzing: no socket, sfi_gdb_server_handle only */
    /* Optional: called when a client is accepted / after it left (from the run thread). */
    void (*client_start)(void *ud);
    void (*client_done)(void *ud, unsigned long n, unsigned long packets);
    void *client_ud;
};

struct sfi_gdb_server;
/* Binds 127.0.0.1:port; takes a reference on sim. Errors: SFI_E_BUSY (port in use),
 * SFI_E_ACCESS, SFI_E_IO, SFI_E_NOMEM, SFI_E_INVALID (port). */
int sfi_gdb_server_new(struct sfi_ctx *ctx, const struct sfi_gdb_server_cfg *cfg,
                       struct sfi_sim *sim, struct sfi_gdb_server **out);
unsigned sfi_gdb_server_port(const struct sfi_gdb_server *gs);
/* Serves until max_clients, sfi_gdb_server_stop or ctx cancellation (SFI_E_CANCELED). */
int sfi_gdb_server_run(struct sfi_gdb_server *gs);
/* Thread- and signal-safe; run returns within ~100 ms. */
void sfi_gdb_server_stop(struct sfi_gdb_server *gs);
/* Packets served so far. */
unsigned long sfi_gdb_server_packets(const struct sfi_gdb_server *gs);
void sfi_gdb_server_free(struct sfi_gdb_server *gs);

/* Answers one decoded request payload as the session would (tests, fuzzing). reply gets the
 * payload to send (unframed), *rlen its length; *close is set when the client asked to end the
 * session (D, k). Output of monitor commands arrives as "O" packets through out_fn (may be
 * NULL). Never fails: bad requests get "E01" or the empty reply. */
typedef void (*sfi_gdb_out_fn)(void *ud, const uint8_t *pkt, size_t n);
void sfi_gdb_server_handle(struct sfi_gdb_server *gs, const uint8_t *req, size_t n,
                           uint8_t *reply, size_t cap, size_t *rlen, int *close,
                           sfi_gdb_out_fn out_fn, void *out_ud);
/* Forgets the session (no-ack mode, attached state) and releases the debug port. */
void sfi_gdb_server_end_session(struct sfi_gdb_server *gs);

#ifdef __cplusplus
}
#endif
#endif
