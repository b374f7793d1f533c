/* sfib.h: helpers shared by the bindings (the only code that sees both the engine and
 * Lua): the engine context, the sfi.error object, argument helpers. */
#ifndef SFI_SFIB_H
#define SFI_SFIB_H

#include <lauxlib.h>
#include <lua.h>

#include "sfi/sfi.h"

/* Prototypes of every luaopen_sfi_core_* (the list is generated from bindings/l*.c). */
#define SFI_MODULE(name, fn) int fn(lua_State *L);
#include "sfi_modules.h"
#undef SFI_MODULE

#define SFIB_CTX_KEY "sfi.ctx"
#define SFIB_ERROR_MT "sfi.error"

/* Stores ctx in the registry (the host does this once, before any module is loaded). */
void sfib_setctx(lua_State *L, struct sfi_ctx *ctx);
/* The engine context; raises a string if the host did not set one. */
struct sfi_ctx *sfib_ctx(lua_State *L);

/* Pushes a new sfi.error {code, rc, op, msg, detail, where}. detail NULL = context's buffer. */
void sfib_pusherror(lua_State *L, int rc, const char *op, const char *msg, const char *detail);
/* Raises an sfi.error for rc (a failed command). Never returns. */
int sfib_raise(lua_State *L, int rc, const char *op);
/* Raises an sfi.error with a formatted message instead of the code's sentence. */
int sfib_raisef(lua_State *L, int rc, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Creates the sfi.error metatable if needed and leaves it on the stack. */
void sfib_errormt(lua_State *L);

/* Integer argument in [lo, hi] (accepts integral floats); raises an argument error. */
lua_Integer sfib_checkrange(lua_State *L, int arg, lua_Integer lo, lua_Integer hi);
/* Optional field of the table at idx: string/integer/boolean with a default. */
const char *sfib_optfield_str(lua_State *L, int idx, const char *k, const char *def);
lua_Integer sfib_optfield_int(lua_State *L, int idx, const char *k, lua_Integer def);
/* As sfib_optfield_int, and in [lo, hi] (else a Lua error naming the field). */
lua_Integer sfib_optfield_range(lua_State *L, int idx, const char *k, lua_Integer def,
                                lua_Integer lo, lua_Integer hi);
int sfib_optfield_bool(lua_State *L, int idx, const char *k, int def);

/* The engine probe behind an sfi.probe userdata at idx; raises on a closed probe. */
struct sfi_probe;
struct sfi_probe *sfib_checkprobe(lua_State *L, int idx);

/* Pushes a new sfi.lock userdata (released by close, __close and __gc) and returns its slot
 * for sfi_lock_acquire; the slot stays NULL (released) until the acquire succeeds. */
struct sfi_lock;
struct sfi_lock **sfib_newlock(lua_State *L);

/* Registers a userdata type: metatable `tname` with methods as __index and metamethods. */
void sfib_newtype(lua_State *L, const char *tname, const luaL_Reg *methods,
                  const luaL_Reg *metamethods);

#endif
