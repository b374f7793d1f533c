/* sfi.h: the engine's public core API: the context, error codes and the event log.
 * Every other engine header includes this one. The engine knows nothing of Lua.
 * Functions return SFI_OK (0) or a negative enum sfi_err and write out-parameters
 * only on success; destructors return void, accept NULL and may be called twice. */
#ifndef SFI_SFI_H
#define SFI_SFI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only: the numbers and names are a stable interface (scripts, JSON, exit logic). */
enum sfi_err {
    SFI_OK = 0,
    SFI_E_IO = -1,          /* transfer or file I/O failed */
    SFI_E_TIMEOUT = -2,     /* no answer in time: retry may help */
    SFI_E_NO_DEVICE = -3,   /* probe or target gone: reconnect may help */
    SFI_E_ACCESS = -4,      /* permission denied (udev rules, file mode) */
    SFI_E_BUSY = -5,        /* resource busy: retry may help */
    SFI_E_NOT_FOUND = -6,   /* no such probe, token, key, file, object */
    SFI_E_UNSUPPORTED = -7, /* operation not supported by this driver/device */
    SFI_E_INVALID = -8,     /* invalid argument or state */
    SFI_E_NOMEM = -9,       /* out of memory */
    SFI_E_PROTOCOL = -10,   /* peer broke the protocol (bad reply, bad status) */
    SFI_E_TARGET = -11,     /* target reported an error (flash, RSS) */
    SFI_E_LOCKED = -12,     /* target or token locked (RDP, flash lock, PIN locked) */
    SFI_E_AUTH = -13,       /* authentication failed (PIN, signature, licence) */
    SFI_E_CRYPTO = -14,     /* cryptographic check failed (tag, decrypt) */
    SFI_E_FORMAT = -15,     /* malformed input (image, CSV, certificate, archive) */
    SFI_E_CANCELED = -16,   /* interrupted by the user */
    SFI_E_COUNTER = -17,    /* licence counter exhausted */
    SFI_E_SANDBOX = -18,    /* a sandboxed recipe used a forbidden call */
    SFI_E_USAGE = -19,      /* bad command line or recipe parameters */
    SFI_E_LIMIT = -20,      /* a bundle exceeded a station limit (instructions, CPU, memory, time) */
};
#define SFI_ERR_COUNT 21 /* number of codes including SFI_OK */

/* "TIMEOUT" for SFI_E_TIMEOUT, "OK" for 0, "UNKNOWN" otherwise. Static strings. */
const char *sfi_errname(int rc);
/* A sentence describing the code. Static string. */
const char *sfi_strerror(int rc);
/* Code for a name ("TIMEOUT" -> SFI_E_TIMEOUT); 1 if unknown. */
int sfi_errcode(const char *name);

enum sfi_level { SFI_LOG_ERROR = 0, SFI_LOG_WARN, SFI_LOG_INFO, SFI_LOG_DEBUG, SFI_LOG_TRACE };
enum sfi_log_format { SFI_LOGFMT_HUMAN = 0, SFI_LOGFMT_JSON };

/* One key/value of a structured event. */
enum sfi_field_type { SFI_F_STR, SFI_F_INT, SFI_F_NUM, SFI_F_BOOL };
struct sfi_field {
    const char *key;
    enum sfi_field_type type;
    const char *s;
    long long i;
    double d;
};

struct sfi_ctx;

/* Called for each event that passes the level filter, instead of the built-in writer. */
typedef void (*sfi_log_fn)(void *ud, enum sfi_level level, const char *line);

/* Creates a context: level INFO, human format, stdout. Errors: SFI_E_NOMEM. */
int sfi_ctx_new(struct sfi_ctx **out);
void sfi_ctx_free(struct sfi_ctx *ctx);

void sfi_log_set_level(struct sfi_ctx *ctx, enum sfi_level level);
enum sfi_level sfi_log_get_level(const struct sfi_ctx *ctx);
void sfi_log_set_format(struct sfi_ctx *ctx, enum sfi_log_format fmt);
enum sfi_log_format sfi_log_get_format(const struct sfi_ctx *ctx);
/* Route formatted lines (without newline) to fn; NULL restores the built-in stdout writer. */
void sfi_log_set_sink(struct sfi_ctx *ctx, sfi_log_fn fn, void *ud);

/* A free-text log line: "HH:MM:SS : text" (human) or {"event":"log",...} (JSON). */
void sfi_log(struct sfi_ctx *ctx, enum sfi_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sfi_vlog(struct sfi_ctx *ctx, enum sfi_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* A structured event. msg may be NULL; human format prints msg (or the event name and
 * fields when msg is NULL), JSON prints every field with the stable keys ts, level, event, msg. */
void sfi_event(struct sfi_ctx *ctx, enum sfi_level level, const char *event,
               const struct sfi_field *fields, size_t nfields, const char *msg);

/* The detail buffer (curl's error buffer): backend text for the last error. */
int sfi_seterr(struct sfi_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* Static analysis only: tells the analyzer that sfi_seterr returns rc, which it cannot see
 * from other files (else every "return sfi_seterr(...)" looks like it may return SFI_OK). */
#define sfi_seterr(ctx, rc, ...) (sfi_seterr((ctx), (rc), __VA_ARGS__), (rc))
#endif
const char *sfi_errdetail(const struct sfi_ctx *ctx);
void sfi_clearerr(struct sfi_ctx *ctx);

/* Cancellation: set from a signal handler, polled by long loops. */
void sfi_cancel(struct sfi_ctx *ctx);
int sfi_canceled(const struct sfi_ctx *ctx);
void sfi_cancel_reset(struct sfi_ctx *ctx);

/* Monotonic milliseconds, and a sleep that returns SFI_E_CANCELED early when canceled. */
uint64_t sfi_now_ms(void);
uint64_t sfi_now_ns(void);
int sfi_sleep_ms(struct sfi_ctx *ctx, unsigned ms);

/* An exclusive lock on a file, across threads and processes (flock on an open file description
 * of its own, so two threads of one process exclude each other too), re-entrant for the
 * thread that holds it (each acquire needs its release). The file is created
 * (0644) if missing; its directory must exist. Waits up to timeout_ms, polling, so that
 * sfi_cancel interrupts the wait. The holder's pid is written into the file for diagnostics.
 * Errors: SFI_E_BUSY (still held after the timeout; the detail names the holder),
 * SFI_E_CANCELED, SFI_E_ACCESS / SFI_E_IO (cannot open), SFI_E_NOMEM. *out owns the lock. */
struct sfi_lock;
int sfi_lock_acquire(struct sfi_ctx *ctx, const char *path, unsigned timeout_ms,
                     struct sfi_lock **out);
/* Releases and frees; NULL-safe. A process that dies releases its locks with it. */
void sfi_lock_release(struct sfi_lock *lk);

/* An external program's outcome: exit code or signal, whether the time limit or a
 * cancellation stopped it, and the last bytes of its stdout and stderr (NUL-terminated). */
struct sfi_proc_result {
    int exit_code;  /* when it exited */
    int signal;     /* the signal that ended it, 0 if it exited */
    int timed_out;  /* stopped at the time limit (SIGTERM, then SIGKILL after 2 s) */
    int canceled;   /* stopped by sfi_cancel */
    char out[2048], err[4096];
    size_t out_len, err_len;
};
/* Runs argv (no shell; a bare argv[0] is searched in PATH; the environment is passed through;
 * stdin is /dev/null) in a process group of its own, for at most timeout_ms. Errors:
 * SFI_E_NOT_FOUND (no such program), SFI_E_IO (spawn failed), SFI_E_CANCELED (the child was
 * stopped; *out says how). A non-zero exit, a signal or a timeout is SFI_OK: read *out. */
int sfi_proc_run(struct sfi_ctx *ctx, const char *const argv[], unsigned timeout_ms,
                 struct sfi_proc_result *out);

/* A child process whose output is read line by line while it runs (gang slots): argv as for
 * sfi_proc_run ("/proc/self/exe" runs this program again), extra environment entries
 * ("NAME=VALUE", NULL-terminated, may be NULL), stdin /dev/null, stdout and stderr into one
 * pipe, a process group of its own (a Ctrl-C on the terminal reaches only the parent, which
 * forwards it). Errors: SFI_E_NOT_FOUND, SFI_E_IO, SFI_E_NOMEM. */
struct sfi_child;
int sfi_child_spawn(struct sfi_ctx *ctx, const char *const argv[], const char *const env[],
                    struct sfi_child **out);
/* Waits up to timeout_ms until one of the children has output or has ended; returns how many
 * are ready (0 on timeout). Not interrupted by cancellation. */
int sfi_child_poll(struct sfi_child *const *kids, size_t n, unsigned timeout_ms);
/* Reads what is there without blocking and calls line() for each complete line (without the
 * newline; a line longer than 64 KiB is cut into pieces). Returns 1 once the output has ended
 * (the remaining partial line delivered), else 0. */
int sfi_child_read(struct sfi_child *c, void (*line)(void *ud, const char *s, size_t n),
                   void *ud);
/* Sends sig to the child's process group (no-op once reaped). */
void sfi_child_signal(struct sfi_child *c, int sig);
/* 1 and the exit code or signal once the child has ended (reaped here), else 0. */
int sfi_child_done(struct sfi_child *c, int *exit_code, int *signal);
int sfi_child_pid(const struct sfi_child *c);
/* Closes the pipe; a child still running is left alone (not killed). NULL-safe. */
void sfi_child_free(struct sfi_child *c);

/* Zero memory in a way the compiler keeps (key material). */
void sfi_wipe(void *p, size_t n);

const char *sfi_version(void);

#ifdef __cplusplus
}
#endif
#endif
