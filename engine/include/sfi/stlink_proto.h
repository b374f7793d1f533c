/* stlink_proto.h: the ST-LINK protocol as data. One table entry per ST-LINK command (first CDB
 * byte, and the sub-command byte for the DEBUG and DFU groups): the name ST and OpenOCD use,
 * the data phase that follows the 16-byte command block, the IN reply size, and where the
 * arguments and results sit. A second table does the same for the stlink-server TCP requests.
 * The client (engine/stlink), the capture decoder (engine/trace), the simulated probe and
 * stlink-server (sim/) and the tests share it; the tables are data in the codec library
 * (engine/stlink/proto.c), which the simulator links. */
#ifndef SFI_STLINK_PROTO_H
#define SFI_STLINK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Command groups (CDB byte 0). */
#define SFI_STLINK_CMD_GET_VERSION 0xF1u
#define SFI_STLINK_CMD_DEBUG 0xF2u
#define SFI_STLINK_CMD_DFU 0xF3u
#define SFI_STLINK_CMD_SWIM 0xF4u
#define SFI_STLINK_CMD_GET_CURRENT_MODE 0xF5u
#define SFI_STLINK_CMD_GET_TARGET_VOLTAGE 0xF7u
#define SFI_STLINK_CMD_APIV3_GET_VERSION_EX 0xFBu

/* DFU sub-command (CDB byte 1 after F3). */
#define SFI_STLINK_DFU_EXIT 0x07u

/* DEBUG sub-commands (CDB byte 1 after F2). */
#define SFI_STLINK_DBG_GETSTATUS 0x01u
#define SFI_STLINK_DBG_FORCEDEBUG 0x02u
#define SFI_STLINK_DBG_READMEM_32BIT 0x07u
#define SFI_STLINK_DBG_WRITEMEM_32BIT 0x08u
#define SFI_STLINK_DBG_RUNCORE 0x09u
#define SFI_STLINK_DBG_STEPCORE 0x0Au
#define SFI_STLINK_DBG_READMEM_8BIT 0x0Cu
#define SFI_STLINK_DBG_WRITEMEM_8BIT 0x0Du
#define SFI_STLINK_DBG_EXIT 0x21u
#define SFI_STLINK_DBG_APIV2_ENTER 0x30u
#define SFI_STLINK_DBG_APIV2_READ_IDCODES 0x31u
#define SFI_STLINK_DBG_APIV2_RESETSYS 0x32u
#define SFI_STLINK_DBG_APIV2_READREG 0x33u
#define SFI_STLINK_DBG_APIV2_WRITEREG 0x34u
#define SFI_STLINK_DBG_APIV2_WRITEDEBUGREG 0x35u
#define SFI_STLINK_DBG_APIV2_READDEBUGREG 0x36u
#define SFI_STLINK_DBG_APIV2_READALLREGS 0x3Au
#define SFI_STLINK_DBG_GETLASTRWSTATUS 0x3Bu
#define SFI_STLINK_DBG_DRIVE_NRST 0x3Cu
#define SFI_STLINK_DBG_GETLASTRWSTATUS2 0x3Eu
#define SFI_STLINK_DBG_START_TRACE_RX 0x40u
#define SFI_STLINK_DBG_STOP_TRACE_RX 0x41u
#define SFI_STLINK_DBG_GET_TRACE_NB 0x42u
#define SFI_STLINK_DBG_SWD_SET_FREQ 0x43u
#define SFI_STLINK_DBG_JTAG_SET_FREQ 0x44u
#define SFI_STLINK_DBG_READ_DAP_REG 0x45u
#define SFI_STLINK_DBG_WRITE_DAP_REG 0x46u
#define SFI_STLINK_DBG_READMEM_16BIT 0x47u
#define SFI_STLINK_DBG_WRITEMEM_16BIT 0x48u
#define SFI_STLINK_DBG_INIT_AP 0x4Bu
#define SFI_STLINK_DBG_CLOSE_AP_DBG 0x4Cu
#define SFI_STLINK_DBG_WRITEMEM_32BIT_NO_ADDR_INC 0x50u
#define SFI_STLINK_DBG_RW_MISC_OUT 0x51u
#define SFI_STLINK_DBG_RW_MISC_IN 0x52u
#define SFI_STLINK_DBG_READMEM_32BIT_NO_ADDR_INC 0x54u
#define SFI_STLINK_DBG_APIV3_SET_COM_FREQ 0x61u
#define SFI_STLINK_DBG_APIV3_GET_COM_FREQ 0x62u

#define SFI_STLINK_ENTER_SWD_NO_RESET 0xA3u

/* Data phase after the command block. */
enum sfi_stlink_phase {
    SFI_STLINK_PHASE_NONE = 0, /* no data (over stlink-server: an IN of 0 bytes) */
    SFI_STLINK_PHASE_IN,       /* the probe answers with in_len bytes */
    SFI_STLINK_PHASE_OUT,      /* the host sends out_len bytes */
};

/* Where the arguments sit in the CDB (all little-endian). */
enum sfi_stlink_args {
    SFI_STLINK_ARGS_NONE = 0,
    SFI_STLINK_ARGS_MEM,       /* addr u32 @2, len u16 @6, AP u8 @8, CSW>>8 u24 @9 */
    SFI_STLINK_ARGS_ADDR,      /* addr u32 @2 */
    SFI_STLINK_ARGS_ADDR_VAL,  /* addr u32 @2, value u32 @6 */
    SFI_STLINK_ARGS_REGSEL,    /* DCRSR REGSEL u8 @2 */
    SFI_STLINK_ARGS_REGSEL_VAL, /* REGSEL u8 @2, value u32 @3 */
    SFI_STLINK_ARGS_DAP,       /* port u16 @2 (0xFFFF = DP), register u16 @4 */
    SFI_STLINK_ARGS_DAP_VAL,   /* port u16 @2, register u16 @4, value u32 @6 */
    SFI_STLINK_ARGS_BYTE,      /* u8 @2 (enter mode, NRST state, AP number, JTAG flag) */
    SFI_STLINK_ARGS_U16,       /* u16 @2 (SWD/JTAG speed divisor) */
    SFI_STLINK_ARGS_COM_FREQ,  /* is_jtag u8 @2, kHz u32 @4 */
    SFI_STLINK_ARGS_TRACE,     /* buffer size u16 @2, Hz u32 @4 */
    SFI_STLINK_ARGS_ITEMS,     /* item count u32 @2 */
};

/* What the IN reply holds. */
enum sfi_stlink_result {
    SFI_STLINK_RES_NONE = 0,
    SFI_STLINK_RES_DATA,         /* raw memory bytes, no status */
    SFI_STLINK_RES_STATUS,       /* status byte @0 */
    SFI_STLINK_RES_STATUS_VALUE, /* status byte @0, value u32 @4 */
    SFI_STLINK_RES_VERSION,      /* GET_VERSION: BE16 {v,jtag,swim}, VID, PID */
    SFI_STLINK_RES_VERSION_EX,   /* GET_VERSION_EX: v @0, swim @1, jtag @2, msd @3, VID @8, PID @10 */
    SFI_STLINK_RES_MODE,         /* current mode byte @0 */
    SFI_STLINK_RES_VOLTAGE,      /* adc0 u32 @0, adc1 u32 @4 */
    SFI_STLINK_RES_COM_FREQS,    /* status @0, count @8, kHz u32 @12+4i */
    SFI_STLINK_RES_REGS,         /* status @0, 21 registers u32 @4+4i */
};

/* What a command does, for decoders that group them. */
enum sfi_stlink_op {
    SFI_STLINK_OP_OTHER = 0,
    SFI_STLINK_OP_VERSION,    /* F1, FB */
    SFI_STLINK_OP_MODE,       /* F5 */
    SFI_STLINK_OP_LEAVE,      /* F3 07, F2 21 */
    SFI_STLINK_OP_ENTER,      /* F2 30 */
    SFI_STLINK_OP_VOLTAGE,    /* F7 */
    SFI_STLINK_OP_SPEED,      /* F2 43, 44, 61 */
    SFI_STLINK_OP_SPEEDS,     /* F2 62 */
    SFI_STLINK_OP_IDCODE,     /* F2 31 */
    SFI_STLINK_OP_RESET,      /* F2 32 */
    SFI_STLINK_OP_NRST,       /* F2 3C */
    SFI_STLINK_OP_READ_MEM,   /* F2 07, 0C, 47, 54 */
    SFI_STLINK_OP_WRITE_MEM,  /* F2 08, 0D, 48, 50 */
    SFI_STLINK_OP_RW_STATUS,  /* F2 3B, 3E */
    SFI_STLINK_OP_READ_DBG,   /* F2 36 */
    SFI_STLINK_OP_WRITE_DBG,  /* F2 35 */
    SFI_STLINK_OP_READ_REG,   /* F2 33 */
    SFI_STLINK_OP_WRITE_REG,  /* F2 34 */
    SFI_STLINK_OP_READ_REGS,  /* F2 3A */
    SFI_STLINK_OP_READ_DAP,   /* F2 45 */
    SFI_STLINK_OP_WRITE_DAP,  /* F2 46 */
    SFI_STLINK_OP_AP,         /* F2 4B, 4C */
    SFI_STLINK_OP_TRACE,      /* F2 40, 41, 42 */
    SFI_STLINK_OP_CORE,       /* API v1 F2 01, 02, 09, 0A */
    SFI_STLINK_OP_MISC,       /* F2 51, 52 */
};

struct sfi_stlink_cmd {
    uint8_t cmd;            /* CDB byte 0 */
    uint8_t sub;            /* CDB byte 1 (F2, F3 groups) */
    uint8_t has_sub;
    const char *name;       /* as ST and OpenOCD name it: "READMEM_32BIT" */
    uint8_t phase;          /* enum sfi_stlink_phase */
    uint16_t in_len;        /* fixed IN reply size (PHASE_IN), 0 when it follows the CDB */
    uint8_t args;           /* enum sfi_stlink_args */
    uint8_t result;         /* enum sfi_stlink_result */
    uint8_t op;             /* enum sfi_stlink_op */
    uint8_t width;          /* memory access width in bits (8, 16, 32), else 0 */
    uint8_t addr_inc;       /* memory: 1 auto-increment, 0 one address */
};

/* The entry for a command block, NULL when unknown. */
const struct sfi_stlink_cmd *sfi_stlink_cmd_find(const uint8_t cdb[16]);
/* The whole table (for tests and listings); *n gets its length. */
const struct sfi_stlink_cmd *sfi_stlink_cmd_table(size_t *n);
/* IN bytes the command expects (the CDB's length field for memory reads; a 1-byte 8-bit read
 * asks for 2), 0 when it has no IN phase. */
size_t sfi_stlink_cmd_in_len(const struct sfi_stlink_cmd *c, const uint8_t cdb[16]);
/* OUT bytes the command sends after the CDB, 0 when none. */
size_t sfi_stlink_cmd_out_len(const struct sfi_stlink_cmd *c, const uint8_t cdb[16]);
/* "READMEM_32BIT" or "F2 99" for an unknown command, into buf (always NUL-terminated). */
const char *sfi_stlink_cmd_label(const uint8_t cdb[16], char *buf, size_t n);

/* ---- stlink-server requests -------------------------------------------------------------- */

#define SFI_STLINK_SRV_REFRESH_DEVICE_LIST 0x00u
#define SFI_STLINK_SRV_GET_NB_DEV 0x01u
#define SFI_STLINK_SRV_GET_DEV_INFO 0x02u
#define SFI_STLINK_SRV_OPEN_DEV 0x03u
#define SFI_STLINK_SRV_CLOSE_DEV 0x04u
#define SFI_STLINK_SRV_SEND_USB_CMD 0x05u
#define SFI_STLINK_SRV_GET_SERVER_VERSION 0x06u
#define SFI_STLINK_SRV_HDR_LEN 32u      /* SEND_USB_CMD header: CDB @8, dir @24, size @28 */
#define SFI_STLINK_SRV_DEV_INFO_LEN 41u /* the device-info record GET_DEV_INFO asks for */
/* Status words of stlink-server replies (the ones both sides name; engine/stlink/status.c
 * maps them all). */
#define SFI_STLINK_SRV_OK 0x0001u
#define SFI_STLINK_SRV_BAD_PARAM 0x1002u
#define SFI_STLINK_SRV_OPEN_ERROR 0x1003u
#define SFI_STLINK_SRV_CMD_NOT_AVAILABLE 0x1053u

struct sfi_stlink_srv_req {
    uint8_t code;
    const char *name;       /* "OPEN_DEV" */
    uint8_t req_len;        /* request size (SEND_USB_CMD: the header; OUT data follow) */
    uint8_t rep_len;        /* fixed reply size (SEND_USB_CMD: the status word; IN data follow;
                               GET_DEV_INFO: the status word, then the size asked for) */
    uint8_t has_status;     /* the reply starts with a status word */
};

/* The entry for a request code, NULL when unknown. */
const struct sfi_stlink_srv_req *sfi_stlink_srv_find(unsigned code);
const struct sfi_stlink_srv_req *sfi_stlink_srv_table(size_t *n);
/* Length of the request starting at p (have bytes available): its total size with OUT data;
 * 0 when more bytes are needed to tell; (size_t)-1 when p is no valid request. */
size_t sfi_stlink_srv_req_size(const uint8_t *p, size_t have);
/* Reply size for a complete request (with IN data). */
size_t sfi_stlink_srv_rep_size(const uint8_t *req);

#ifdef __cplusplus
}
#endif
#endif
