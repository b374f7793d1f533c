/* decode.c: the fields of one ST-LINK command record, read from its command block and data
 * with the protocol table: address, length, AP/port, the value written or read (memory of at
 * most 4 bytes, registers), and the status byte of the reply. Pure function of the record. */
#include <string.h>

#include "sfi/bytes.h"
#include "trace/trace_int.h"

static uint32_t rdn(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = n; i > 0; i--)
        v = v << 8 | p[i - 1];
    return v;
}

void tr_decode_cmd(struct sfi_trace_rec *r)
{
    const uint8_t *c = r->cdb;
    const struct sfi_stlink_cmd *cmd = sfi_stlink_cmd_find(c);
    r->cmd = cmd;
    r->status = -1;
    if (cmd == NULL)
        return;
    switch (cmd->args) {
    case SFI_STLINK_ARGS_MEM:
        r->addr = sfi_get_le32(c + 2);
        r->len = sfi_get_le16(c + 6);
        r->ap = c[8];
        r->has_addr = 1;
        break;
    case SFI_STLINK_ARGS_ADDR:
        r->addr = sfi_get_le32(c + 2);
        r->has_addr = 1;
        break;
    case SFI_STLINK_ARGS_ADDR_VAL:
        r->addr = sfi_get_le32(c + 2);
        r->value = sfi_get_le32(c + 6);
        r->has_addr = r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_REGSEL:
        r->addr = c[2];
        r->has_addr = 1;
        break;
    case SFI_STLINK_ARGS_REGSEL_VAL:
        r->addr = c[2];
        r->value = sfi_get_le32(c + 3);
        r->has_addr = r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_DAP:
        r->ap = sfi_get_le16(c + 2);
        r->addr = sfi_get_le16(c + 4);
        r->has_addr = 1;
        break;
    case SFI_STLINK_ARGS_DAP_VAL:
        r->ap = sfi_get_le16(c + 2);
        r->addr = sfi_get_le16(c + 4);
        r->value = sfi_get_le32(c + 6);
        r->has_addr = r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_BYTE:
        r->value = c[2];
        r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_U16:
        r->value = sfi_get_le16(c + 2);
        r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_COM_FREQ:
        r->value = sfi_get_le32(c + 4);
        r->ap = c[2];
        r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_TRACE:
        r->len = sfi_get_le16(c + 2);
        r->value = sfi_get_le32(c + 4);
        r->has_value = 1;
        break;
    case SFI_STLINK_ARGS_ITEMS:
        r->len = sfi_get_le32(c + 2);
        break;
    default:
        break;
    }
    /* memory writes of a word or less: the value written */
    if (cmd->op == SFI_STLINK_OP_WRITE_MEM && r->len <= 4 && r->out_len >= r->len && r->len) {
        r->value = rdn(r->out, r->len);
        r->has_value = 1;
    }
    if (!r->replied || r->in == NULL)
        return;
    const uint8_t *in = r->in;
    size_t n = r->in_len;
    switch (cmd->result) {
    case SFI_STLINK_RES_DATA:
        if (r->len <= 4 && n >= r->len && r->len > 0) {
            r->value = rdn(in, r->len);
            r->has_value = 1;
        }
        break;
    case SFI_STLINK_RES_STATUS:
    case SFI_STLINK_RES_COM_FREQS:
    case SFI_STLINK_RES_REGS:
        if (n >= 1)
            r->status = in[0];
        break;
    case SFI_STLINK_RES_STATUS_VALUE:
        if (n >= 1)
            r->status = in[0];
        if (n >= 8 && cmd->op != SFI_STLINK_OP_SPEED) {
            r->value = sfi_get_le32(in + 4);
            r->has_value = 1;
        } else if (n >= 8) {
            r->value = sfi_get_le32(in + 4); /* SET_COM_FREQ: the speed the probe took */
        }
        break;
    case SFI_STLINK_RES_MODE:
        if (n >= 1) {
            r->value = in[0];
            r->has_value = 1;
        }
        break;
    case SFI_STLINK_RES_VERSION:
        if (n >= 6) {
            r->value = (uint32_t)in[0] << 8 | in[1];
            r->has_value = 1;
        }
        break;
    case SFI_STLINK_RES_VERSION_EX:
        if (n >= 3) {
            r->value = (uint32_t)in[0] << 16 | (uint32_t)in[2] << 8 | in[1];
            r->has_value = 1;
        }
        break;
    case SFI_STLINK_RES_VOLTAGE:
        if (n >= 8 && sfi_get_le32(in) != 0) {
            r->value = (uint32_t)((2ull * sfi_get_le32(in + 4) * 1200u) / sfi_get_le32(in));
            r->has_value = 1;
        }
        break;
    default:
        break;
    }
}

