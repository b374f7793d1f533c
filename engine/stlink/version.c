/* version.c: decoding of the ST-LINK GET_VERSION / GET_VERSION_EX replies, the firmware
 * feature table (which commands a given probe firmware understands), the version string
 * as probes are usually named ("V3J7S0") and the V2 SWD clock divisor table. */
#include <stdio.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"

#define PID_V2_1 0x374Bu
#define PID_V2_1_NO_MSD 0x3752u

int sfi_stlink_needs_version_ex(const uint8_t rep6[6])
{
    unsigned w = sfi_get_be16(rep6);
    return (w >> 12) == 3 && ((w >> 6) & 0x3F) == 0 && (w & 0x3F) == 0;
}

static unsigned v2_flags(unsigned j)
{
    unsigned f = 0;
    if (j >= 13)
        f |= SFI_STLINK_F_HAS_TRACE;
    if (j >= 15)
        f |= SFI_STLINK_F_HAS_GETLASTRWSTATUS2;
    if (j >= 22)
        f |= SFI_STLINK_F_HAS_SWD_SET_FREQ;
    if (j >= 24)
        f |= SFI_STLINK_F_HAS_JTAG_SET_FREQ | SFI_STLINK_F_HAS_DAP_REG;
    if (j >= 24 && j <= 31)
        f |= SFI_STLINK_F_QUIRK_JTAG_DP_READ;
    if (j >= 26)
        f |= SFI_STLINK_F_HAS_MEM_16BIT;
    if (j >= 28)
        f |= SFI_STLINK_F_HAS_AP_INIT;
    if (j >= 29)
        f |= SFI_STLINK_F_FIX_CLOSE_AP;
    if (j >= 32)
        f |= SFI_STLINK_F_HAS_DPBANKSEL;
    return f;
}

static unsigned v3_flags(unsigned j)
{
    unsigned f = SFI_STLINK_F_HAS_TRACE | SFI_STLINK_F_HAS_GETLASTRWSTATUS2 |
                 SFI_STLINK_F_HAS_JTAG_SET_FREQ | SFI_STLINK_F_HAS_DAP_REG |
                 SFI_STLINK_F_HAS_MEM_16BIT | SFI_STLINK_F_HAS_AP_INIT |
                 SFI_STLINK_F_FIX_CLOSE_AP | SFI_STLINK_F_HAS_COM_FREQ;
    if (j >= 2)
        f |= SFI_STLINK_F_HAS_DPBANKSEL;
    if (j >= 6)
        f |= SFI_STLINK_F_HAS_RW8_512BYTES;
    return f;
}

int sfi_stlink_decode_version(struct sfi_ctx *ctx, const uint8_t rep6[6], const uint8_t *ex12,
                              struct sfi_stlink_version *out)
{
    struct sfi_stlink_version v;
    memset(&v, 0, sizeof v);
    unsigned w = sfi_get_be16(rep6);
    unsigned x = (w >> 6) & 0x3F, y = w & 0x3F;
    v.stlink = w >> 12;
    v.vid = sfi_get_le16(rep6 + 2);
    v.pid = sfi_get_le16(rep6 + 4);

    switch (v.stlink) {
    case 1:
    case 2:
        if (v.stlink == 2 && (v.pid == PID_V2_1 || v.pid == PID_V2_1_NO_MSD)) {
            if ((x <= 22 && y == 7) || (x >= 25 && y >= 7 && y <= 12)) {
                v.msd = x; /* STM8-only (SWIM) firmware: no JTAG/SWD */
                v.swim = y;
            } else {
                v.jtag = x;
                v.msd = y;
            }
        } else {
            v.jtag = x;
            v.swim = y;
        }
        v.api = (v.stlink == 1 && v.jtag < 11) ? 1 : 2;
        v.flags = v2_flags(v.jtag);
        break;
    case 3:
        if (x == 0 && y == 0) {
            if (ex12 == NULL)
                return sfi_seterr(ctx, SFI_E_PROTOCOL,
                                  "ST-LINK/V3 version needs the GET_VERSION_EX reply");
            v.stlink = ex12[0];
            v.swim = ex12[1];
            v.jtag = ex12[2];
            v.msd = ex12[3];
            v.bridge = ex12[4];
            v.vid = sfi_get_le16(ex12 + 8);
            v.pid = sfi_get_le16(ex12 + 10);
            if (v.stlink != 3)
                return sfi_seterr(ctx, SFI_E_PROTOCOL,
                                  "GET_VERSION_EX reports generation %u, expected 3", v.stlink);
        } else {
            v.jtag = x;
            v.swim = y;
        }
        v.api = 3;
        v.flags = v3_flags(v.jtag);
        break;
    default:
        return sfi_seterr(ctx, SFI_E_PROTOCOL, "unknown ST-LINK generation %u (version word "
                          "0x%04x)", v.stlink, w);
    }
    *out = v;
    return SFI_OK;
}

void sfi_stlink_version_str(const struct sfi_stlink_version *v, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
#define ADD(...)                                                                           \
    do {                                                                                   \
        if (k < n) {                                                                       \
            int m = snprintf(buf + k, n - k, __VA_ARGS__);                                 \
            k += m > 0 ? (size_t)m : 0;                                                    \
        }                                                                                  \
    } while (0)
    ADD("V%u", v->stlink);
    if (v->jtag || !v->msd)
        ADD("J%u", v->jtag);
    if (v->msd)
        ADD("M%u", v->msd);
    if (v->bridge)
        ADD("B%u", v->bridge);
    if (v->swim || !v->msd)
        ADD("S%u", v->swim);
#undef ADD
}

static const struct {
    unsigned khz, div;
} swd_divisors[] = {
    {4000, 0}, {1800, 1}, {1200, 2}, {950, 3}, {480, 7}, {240, 15},
    {125, 31}, {100, 40}, {50, 79},  {25, 158}, {15, 265}, {5, 798},
};

unsigned sfi_stlink_swd_divisor(unsigned khz, unsigned *actual_khz)
{
    size_t n = sizeof swd_divisors / sizeof swd_divisors[0];
    for (size_t i = 0; i < n; i++) {
        if (swd_divisors[i].khz <= khz) {
            if (actual_khz != NULL)
                *actual_khz = swd_divisors[i].khz;
            return swd_divisors[i].div;
        }
    }
    if (actual_khz != NULL)
        *actual_khz = swd_divisors[n - 1].khz;
    return swd_divisors[n - 1].div;
}

/* Product IDs this driver talks to (VID 0x0483). V1 (0x3744) speaks a SCSI-wrapped
 * protocol and V3PWR (0x3757) reports generation 4: neither is supported. */
static const uint16_t known_pids[] = {
    0x3748, /* V2 */
    0x374B, /* V2-1 */
    0x3752, /* V2-1 without mass storage */
    0x374D, /* V3 loader */
    0x374E, /* V3E */
    0x374F, /* V3SET */
    0x3753, /* V3 with two virtual COM ports */
    0x3754, /* V3 without mass storage (V3MINIE) */
};

int sfi_stlink_usb_pid_known(uint16_t pid)
{
    for (size_t i = 0; i < sizeof known_pids / sizeof known_pids[0]; i++)
        if (known_pids[i] == pid)
            return 1;
    return 0;
}
