/* versions.h: the versions of sfirun and of the libraries it runs on (`sfirun --version`). */
#ifndef SFI_VERSIONS_H
#define SFI_VERSIONS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Static strings (never NULL), owned by the libraries. */
struct sfi_versions {
    const char *sfirun;
    const char *openssl;
    char libusb[32]; /* "1.0.26" */
    const char *libp11; /* as pkg-config reported it at build time, or "unknown" */
    const char *libarchive;
    const char *sqlite;
};

/* Fills v. Cannot fail. */
void sfi_versions(struct sfi_versions *v);

#ifdef __cplusplus
}
#endif
#endif
