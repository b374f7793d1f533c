/* log.c: the event log. Human lines look like ST's tool ("HH:MM:SS : text", with
 * "Warning: " / "Error: " prefixes) so users can compare line by line; JSON lines carry
 * the stable keys ts, level, event, msg followed by the event's own fields. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ctx_int.h"

static const char *const levelname[] = {"error", "warn", "info", "debug", "trace"};

void sfi_log_set_level(struct sfi_ctx *ctx, enum sfi_level level)
{
    ctx->level = level;
}

enum sfi_level sfi_log_get_level(const struct sfi_ctx *ctx)
{
    return ctx->level;
}

void sfi_log_set_format(struct sfi_ctx *ctx, enum sfi_log_format fmt)
{
    ctx->format = fmt;
}

enum sfi_log_format sfi_log_get_format(const struct sfi_ctx *ctx)
{
    return ctx->format;
}

void sfi_log_set_sink(struct sfi_ctx *ctx, sfi_log_fn fn, void *ud)
{
    ctx->sink = fn;
    ctx->sink_ud = ud;
}

/* A bounded string builder: output is truncated, never overflowed. */
struct sb {
    char buf[4096];
    size_t n;
};

static void sb_putc(struct sb *b, char c)
{
    if (b->n + 1 < sizeof b->buf)
        b->buf[b->n++] = c;
}

static void sb_puts(struct sb *b, const char *s)
{
    while (*s)
        sb_putc(b, *s++);
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->buf + b->n, sizeof b->buf - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n += (size_t)k < sizeof b->buf - b->n ? (size_t)k : sizeof b->buf - b->n - 1;
}

static void sb_json_str(struct sb *b, const char *s)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                sb_printf(b, "\\u%04x", *p);
            else
                sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, '"');
}

static void emit(struct sfi_ctx *ctx, enum sfi_level level, struct sb *b)
{
    b->buf[b->n] = '\0';
    if (ctx->sink) {
        ctx->sink(ctx->sink_ud, level, b->buf);
        return;
    }
    fputs(b->buf, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void stamp(struct sb *b, int iso)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    if (iso) {
        gmtime_r(&tv.tv_sec, &tm);
        sb_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    } else {
        localtime_r(&tv.tv_sec, &tm);
        sb_printf(b, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
}

static void human_prefix(struct sb *b, enum sfi_level level)
{
    stamp(b, 0);
    sb_puts(b, " : ");
    if (level == SFI_LOG_ERROR)
        sb_puts(b, "Error: ");
    else if (level == SFI_LOG_WARN)
        sb_puts(b, "Warning: ");
}

static void field_value(struct sb *b, const struct sfi_field *f, int json)
{
    switch (f->type) {
    case SFI_F_STR:
        if (json)
            sb_json_str(b, f->s ? f->s : "");
        else
            sb_puts(b, f->s ? f->s : "");
        break;
    case SFI_F_INT: sb_printf(b, "%lld", f->i); break;
    case SFI_F_NUM: sb_printf(b, "%.17g", f->d); break;
    case SFI_F_BOOL: sb_puts(b, f->i ? "true" : "false"); break;
    }
}

void sfi_event(struct sfi_ctx *ctx, enum sfi_level level, const char *event,
               const struct sfi_field *fields, size_t nfields, const char *msg)
{
    if (ctx == NULL || level > ctx->level)
        return;
    struct sb b = {.n = 0};
    if (ctx->format == SFI_LOGFMT_JSON) {
        sb_puts(&b, "{\"ts\":\"");
        stamp(&b, 1);
        sb_puts(&b, "\",\"level\":\"");
        sb_puts(&b, levelname[level]);
        sb_puts(&b, "\",\"event\":");
        sb_json_str(&b, event ? event : "log");
        if (msg) {
            sb_puts(&b, ",\"msg\":");
            sb_json_str(&b, msg);
        }
        for (size_t i = 0; i < nfields; i++) {
            sb_putc(&b, ',');
            sb_json_str(&b, fields[i].key);
            sb_putc(&b, ':');
            field_value(&b, &fields[i], 1);
        }
        sb_putc(&b, '}');
    } else {
        human_prefix(&b, level);
        if (msg) {
            sb_puts(&b, msg);
        } else {
            sb_puts(&b, event ? event : "");
            for (size_t i = 0; i < nfields; i++) {
                sb_printf(&b, " %s=", fields[i].key);
                field_value(&b, &fields[i], 0);
            }
        }
    }
    emit(ctx, level, &b);
}

void sfi_vlog(struct sfi_ctx *ctx, enum sfi_level level, const char *fmt, va_list ap)
{
    if (ctx == NULL || level > ctx->level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sfi_event(ctx, level, "log", NULL, 0, msg);
}

void sfi_log(struct sfi_ctx *ctx, enum sfi_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sfi_vlog(ctx, level, fmt, ap);
    va_end(ap);
}
