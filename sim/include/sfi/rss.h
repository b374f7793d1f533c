/* rss.h: the simulated Root Security Services (RSS) of an STM32H7 performing Secure Firmware
 * Install. It plugs into the simulated chip's RSS trigger (sim.h): on a system reset after the
 * debugger wrote the trigger, it opens the licence with the chip key, checks the image header
 * and every area tag, programs F areas to flash and the C area to option bytes, keeps its
 * progress between parts in a continuation token in flash, and reports a result code.
 * ST does not document this protocol: every address and code comes from the device pack and
 * is a model (docs/sfi-model.md). */
#ifndef SFI_RSS_H
#define SFI_RSS_H

#include <stdint.h>

#include "sfi/sfi.h"
#include "sfi/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sfi_rss_hash { SFI_RSS_HASH_UNSUPPORTED = 0, SFI_RSS_HASH_OPTIONAL, SFI_RSS_HASH_REQUIRED };

/* Result codes written to the result word. Values come from the device pack. */
enum sfi_rss_code {
    SFI_RSS_OK = 0,       /* last part installed, option bytes applied */
    SFI_RSS_PART_OK,      /* a part installed, waiting for the next (pause area reached) */
    SFI_RSS_E_LICENSE,    /* licence does not open with this chip's key */
    SFI_RSS_E_HEADER,     /* header malformed or its tag is wrong */
    SFI_RSS_E_HASH,       /* hash present but unsupported, or required but absent */
    SFI_RSS_E_PROTOCOL,   /* image protocol not accepted */
    SFI_RSS_E_AREA,       /* an area is malformed, out of order or its tag is wrong */
    SFI_RSS_E_PROGRAM,    /* flash programming failed (not erased, outside flash) */
    SFI_RSS_E_TOKEN,      /* a resume does not match the continuation token */
    SFI_RSS_E_STATE,      /* chip not ready: no identity, RDP not level 0 at the first part */
    SFI_RSS_NCODES
};

#define SFI_RSS_OB_ROWS 9
#define SFI_RSS_TOKEN_SIZE 32

struct sfi_rss_cfg {
    uint32_t license_addr;   /* 136-byte licence in RAM */
    uint32_t header_addr;    /* image header, then the part's areas */
    uint32_t ram_limit;      /* areas are read from header_addr up to this address */
    uint32_t token_addr;     /* continuation token records in flash (32 bytes each) */
    uint32_t token_slots;    /* how many records fit at token_addr */
    unsigned protocols;      /* bit p set: protocol p accepted */
    enum sfi_rss_hash hash;
    int corrupt;             /* errata model: programs one wrong bit per F area */
    int ob_map[SFI_RSS_OB_ROWS]; /* option-window CUR offset of each C-area word; -1 = ignored */
    uint32_t codes[SFI_RSS_NCODES];
};

struct sfi_rss;

/* Attaches an RSS to the chip (replacing any callback). The chip must have an identity
 * (sfi_sim_set_identity) before the RSS runs. Takes a reference on sim.
 * Errors: SFI_E_INVALID (bad cfg), SFI_E_NOMEM. */
int sfi_rss_new(struct sfi_ctx *ctx, struct sfi_sim *sim, const struct sfi_rss_cfg *cfg,
                struct sfi_rss **out);
/* Detaches from the chip and frees. NULL-safe. */
void sfi_rss_free(struct sfi_rss *rss);
/* What the last run did or why it stopped (for logs and tests). */
const char *sfi_rss_last(const struct sfi_rss *rss);
enum sfi_rss_code sfi_rss_last_code(const struct sfi_rss *rss);

#ifdef __cplusplus
}
#endif
#endif
