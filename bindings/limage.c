/* limage.c: the sfi.core.image module: parse SFI images into an "sfi.image" userdata, verify
 * and decrypt them, build them from firmware bytes, and parse option-byte CSV text.
 * Files are read and named by scripts/sfi/image.lua; this module sees bytes and names. */
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "sfi/image.h"
#include "sfib.h"

#define IMG_MT "sfi.image"
#define MAX_FW 64

struct limg {
    struct sfi_image *img;
};

static struct sfi_image *checkimg(lua_State *L)
{
    struct limg *u = luaL_checkudata(L, 1, IMG_MT);
    if (!u->img)
        luaL_error(L, "attempt to use a closed sfi.image");
    return u->img;
}

static void checkkey(lua_State *L, int arg, size_t want, uint8_t *out, const char *what)
{
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    if (n != want)
        luaL_error(L, "bad argument #%d (%s must be %d bytes, got %d)", arg, what, (int)want,
                   (int)n);
    memcpy(out, s, want);
}

/* image.parse(bytes) -> img. Raises FORMAT. */
static int l_parse(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    struct limg *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->img = NULL;
    luaL_setmetatable(L, IMG_MT);
    struct sfi_image *img;
    int rc = sfi_image_parse(sfib_ctx(L), (const uint8_t *)s, len, &img);
    if (rc)
        return sfib_raise(L, rc, "image.parse");
    u->img = img;
    return 1;
}

/* img:info() -> {protocol, version, areas, size, hashed, legacy} */
static int m_info(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, img->hdr.protocol);
    lua_setfield(L, -2, "protocol");
    lua_pushinteger(L, img->version);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, img->hdr.hashed);
    lua_setfield(L, -2, "hashed");
    lua_pushboolean(L, img->legacy);
    lua_setfield(L, -2, "legacy");
    lua_pushinteger(L, (lua_Integer)img->n);
    lua_setfield(L, -2, "areas");
    lua_pushinteger(L, (lua_Integer)img->len);
    lua_setfield(L, -2, "size");
    return 1;
}

/* img:areas() -> { {type, index, size, addr, offset, length, hash?}... } */
static int m_areas(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    lua_createtable(L, (int)img->n, 0);
    for (size_t i = 0; i < img->n; i++) {
        const struct sfi_image_area *a = &img->area[i];
        lua_createtable(L, 0, 9);
        lua_pushlstring(L, &a->type, 1);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, a->ver);
        lua_setfield(L, -2, "version");
        const char *what = sfi_image_type_name(a->type);
        if (what) {
            lua_pushstring(L, what);
            lua_setfield(L, -2, "what");
        }
        lua_pushinteger(L, a->index);
        lua_setfield(L, -2, "index");
        lua_pushinteger(L, a->size);
        lua_setfield(L, -2, "size");
        lua_pushinteger(L, a->addr);
        lua_setfield(L, -2, "addr");
        lua_pushinteger(L, (lua_Integer)a->offset);
        lua_setfield(L, -2, "offset");
        lua_pushinteger(L, (lua_Integer)a->length);
        lua_setfield(L, -2, "length");
        if (a->has_hash) {
            char hex[2 * SFI_IMAGE_HASH_SIZE + 1];
            lua_pushstring(L, sfi_hex_str(a->hash, SFI_IMAGE_HASH_SIZE, hex));
            lua_setfield(L, -2, "hash");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* img:raw(offset, length) -> bytes of the file */
static int m_raw(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    lua_Integer off = sfib_checkrange(L, 2, 0, (lua_Integer)img->len);
    lua_Integer n = sfib_checkrange(L, 3, 0, (lua_Integer)img->len - off);
    lua_pushlstring(L, (const char *)img->buf + off, (size_t)n);
    return 1;
}

/* img:verify(key, nonce) -> true | false, reason */
static int m_verify(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    uint8_t key[16], nonce[12];
    checkkey(L, 2, 16, key, "key");
    checkkey(L, 3, 12, nonce, "nonce");
    struct sfi_ctx *ctx = sfib_ctx(L);
    int rc = sfi_image_check_header_tag(ctx, img->buf, key, nonce);
    size_t max = 1;
    for (size_t i = 0; i < img->n; i++)
        if (img->area[i].size > max)
            max = img->area[i].size;
    uint8_t *plain = rc ? NULL : malloc(max);
    if (!rc && !plain)
        rc = sfi_seterr(ctx, SFI_E_NOMEM, "%zu bytes", max);
    for (size_t i = 0; !rc && i < img->n; i++) {
        const struct sfi_image_area *a = &img->area[i];
        rc = sfi_image_decrypt_area(ctx, a, img->buf + a->offset, key, nonce, plain);
    }
    if (plain) {
        sfi_wipe(plain, max);
        free(plain);
    }
    sfi_wipe(key, sizeof key);
    sfi_wipe(nonce, sizeof nonce);
    if (rc == SFI_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc != SFI_E_CRYPTO)
        return sfib_raise(L, rc, "image.verify");
    lua_pushboolean(L, 0);
    lua_pushstring(L, sfi_errdetail(ctx));
    return 2;
}

/* img:decrypt(key, nonce) -> { {type, index, addr, data}... }. Raises CRYPTO naming the area. */
static int m_decrypt(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    uint8_t key[16], nonce[12];
    checkkey(L, 2, 16, key, "key");
    checkkey(L, 3, 12, nonce, "nonce");
    struct sfi_ctx *ctx = sfib_ctx(L);
    int rc = sfi_image_check_header_tag(ctx, img->buf, key, nonce);
    if (rc)
        goto fail;
    lua_createtable(L, (int)img->n, 0);
    for (size_t i = 0; i < img->n; i++) {
        const struct sfi_image_area *a = &img->area[i];
        lua_createtable(L, 0, 4);
        luaL_Buffer b;
        char *p = luaL_buffinitsize(L, &b, a->size ? a->size : 1);
        rc = sfi_image_decrypt_area(ctx, a, img->buf + a->offset, key, nonce, (uint8_t *)p);
        if (rc)
            goto fail;
        luaL_pushresultsize(&b, a->size);
        lua_setfield(L, -2, "data");
        lua_pushlstring(L, &a->type, 1);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, a->index);
        lua_setfield(L, -2, "index");
        lua_pushinteger(L, a->addr);
        lua_setfield(L, -2, "addr");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    sfi_wipe(key, sizeof key);
    sfi_wipe(nonce, sizeof nonce);
    return 1;
fail:
    sfi_wipe(key, sizeof key);
    sfi_wipe(nonce, sizeof nonce);
    return sfib_raise(L, rc, "image.decrypt");
}

/* img:header_bytes() -> the 28-byte header */
static int m_header_bytes(lua_State *L)
{
    struct sfi_image *img = checkimg(L);
    lua_pushlstring(L, (const char *)img->buf, SFI_IMAGE_HDR_SIZE);
    return 1;
}

/* img:close() */
static int m_close(lua_State *L)
{
    struct limg *u = luaL_checkudata(L, 1, IMG_MT);
    sfi_image_free(u->img);
    u->img = NULL;
    return 0;
}

static int m_tostring(lua_State *L)
{
    struct limg *u = luaL_checkudata(L, 1, IMG_MT);
    if (!u->img)
        lua_pushliteral(L, "sfi.image (closed)");
    else
        lua_pushfstring(L, "sfi.image (protocol %d, %d areas, %d bytes)",
                        (int)u->img->hdr.protocol, (int)u->img->n, (int)u->img->len);
    return 1;
}

/* image.obcsv(name, text, rows) -> bytes (4 per row); rows = the device pack's row names.
 * Raises FORMAT naming line, column or row. */
static int l_obcsv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    const char *rows[SFI_IMAGE_OB_MAX];
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t nrows = (size_t)luaL_len(L, 3);
    luaL_argcheck(L, nrows >= 1 && nrows <= SFI_IMAGE_OB_MAX, 3, "1..32 row names");
    luaL_checkstack(L, (int)nrows, "rows");
    for (size_t i = 0; i < nrows; i++) {
        lua_rawgeti(L, 3, (lua_Integer)i + 1);
        rows[i] = luaL_checkstring(L, -1); /* stays on the stack */
    }
    uint8_t out[SFI_IMAGE_OB_MAX * 4];
    int rc = sfi_obcsv_parse(sfib_ctx(L), name, (const uint8_t *)s, len, rows, nrows, out);
    if (rc)
        return sfib_raise(L, rc, "image.obcsv");
    lua_pushlstring(L, (const char *)out, 4 * nrows);
    return 1;
}

/* image.build{protocol (required: 1 or 2), version, hash, ram_size, token, key, nonce, ob,
 *             flash = {{start,size}}, extra = {{type, addr, data}...},
 *             firmware = {{name, data, addr?}...}, out}
 * -> size, areas (sfi_image_build_file). Raises FORMAT, USAGE, IO, CRYPTO. */
static int l_build(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct sfi_image_build_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    lua_getfield(L, 1, "protocol");
    if (lua_isnil(L, -1))
        return sfib_raisef(L, SFI_E_USAGE, "image.build", "'protocol' is required (1 or 2)");
    lua_pop(L, 1);
    cfg.protocol = (uint8_t)sfib_optfield_range(L, 1, "protocol", 0, 0, 255);
    cfg.version = (uint8_t)sfib_optfield_range(L, 1, "version", 0, 0, 255);
    cfg.hash = sfib_optfield_bool(L, 1, "hash", 0);
    cfg.ram_size = (uint32_t)sfib_optfield_range(L, 1, "ram_size", 0, 0, 0xFFFFFFFF);
    lua_getfield(L, 1, "token");
    cfg.has_token = !lua_isnil(L, -1);
    lua_pop(L, 1);
    cfg.token = (uint32_t)sfib_optfield_range(L, 1, "token", 0, 0, 0xFFFFFFFF);
    const char *out = sfib_optfield_str(L, 1, "out", NULL);
    if (!out)
        return sfib_raisef(L, SFI_E_USAGE, "image.build", "'out' is required");
    lua_getfield(L, 1, "ob"); /* stays on the stack while used */
    if (!lua_isnil(L, -1))
        cfg.ob = (const uint8_t *)luaL_checklstring(L, -1, &cfg.ob_len);
    struct sfi_flash_range flash[16];
    lua_getfield(L, 1, "flash");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        size_t n = (size_t)luaL_len(L, -1);
        if (n > 16)
            return luaL_error(L, "at most 16 flash ranges");
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            luaL_checktype(L, -1, LUA_TTABLE);
            flash[i].start = (uint32_t)sfib_optfield_int(L, -1, "start", 0);
            flash[i].size = (uint32_t)sfib_optfield_int(L, -1, "size", 0);
            lua_pop(L, 1);
        }
        cfg.flash = flash;
        cfg.nflash = n;
    }
    lua_pop(L, 1);
    struct sfi_image_input in[MAX_FW];
    lua_getfield(L, 1, "firmware");
    luaL_checktype(L, -1, LUA_TTABLE);
    int fwt = lua_gettop(L);
    size_t nfw = (size_t)luaL_len(L, fwt);
    if (nfw > MAX_FW)
        return luaL_error(L, "at most %d firmware files", MAX_FW);
    luaL_checkstack(L, (int)(2 * nfw + 4), "firmware");
    for (size_t i = 0; i < nfw; i++) {
        lua_rawgeti(L, fwt, (lua_Integer)i + 1);
        int e = lua_gettop(L);
        luaL_checktype(L, e, LUA_TTABLE);
        lua_getfield(L, e, "data");
        in[i].data = (const uint8_t *)luaL_checklstring(L, -1, &in[i].len);
        lua_pop(L, 1); /* the table e, kept on the stack, holds the string */
        in[i].name = sfib_optfield_str(L, e, "name", "firmware");
        lua_getfield(L, e, "addr");
        in[i].has_addr = !lua_isnil(L, -1);
        in[i].addr = in[i].has_addr ? (uint32_t)luaL_checkinteger(L, -1) : 0;
        lua_pop(L, 1);
    }
    struct sfi_image_extra extra[MAX_FW];
    lua_getfield(L, 1, "extra"); /* stays on the stack: its tables hold the strings */
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int xt = lua_gettop(L);
        size_t nx = (size_t)luaL_len(L, xt);
        if (nx > MAX_FW)
            return luaL_error(L, "at most %d extra areas", MAX_FW);
        luaL_checkstack(L, (int)(nx + 4), "extra");
        for (size_t i = 0; i < nx; i++) {
            lua_rawgeti(L, xt, (lua_Integer)i + 1);
            int e = lua_gettop(L);
            luaL_checktype(L, e, LUA_TTABLE);
            const char *t = sfib_optfield_str(L, e, "type", "");
            if (strlen(t) != 1 || !strchr(SFI_IMAGE_TYPES, t[0]) || strchr("FCPR", t[0]))
                return luaL_error(L, "extra area %d: type must be one of M K E H O S", (int)i + 1);
            extra[i].type = t[0];
            extra[i].addr = (uint32_t)sfib_optfield_int(L, e, "addr", 0);
            lua_getfield(L, e, "data");
            extra[i].data = (const uint8_t *)luaL_checklstring(L, -1, &extra[i].size);
            lua_pop(L, 1);
        }
        cfg.extra = extra;
        cfg.nextra = nx;
    }
    /* The key and nonce are the Lua strings themselves (kept on the stack): the binding makes
     * no copy that could be left behind. */
    lua_getfield(L, 1, "key");
    lua_getfield(L, 1, "nonce");
    size_t kl = 0, nl = 0;
    cfg.key = (const uint8_t *)lua_tolstring(L, -2, &kl);
    cfg.nonce = (const uint8_t *)lua_tolstring(L, -1, &nl);
    if (!cfg.key || kl != 16 || !cfg.nonce || nl != 12)
        return luaL_error(L, "build: key must be 16 bytes and nonce 12 bytes");
    size_t len = 0;
    unsigned areas = 0;
    int rc = sfi_image_build_file(sfib_ctx(L), &cfg, in, nfw, out, &len, &areas);
    if (rc)
        return sfib_raise(L, rc, "image.build");
    lua_pushinteger(L, (lua_Integer)len);
    lua_pushinteger(L, areas);
    return 2;
}

/* image.write(path, bytes, [exclusive]) -> true. Atomic; raises IO. */
static int l_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int rc = sfi_file_write_atomic(sfib_ctx(L), path, (const uint8_t *)s, len,
                                   lua_toboolean(L, 3));
    if (rc)
        return sfib_raise(L, rc, "image.write");
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_sfi_core_image(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"info", m_info},       {"areas", m_areas},     {"raw", m_raw},
        {"verify", m_verify},   {"decrypt", m_decrypt}, {"header_bytes", m_header_bytes},
        {"close", m_close},     {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", m_close}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL},
    };
    sfib_newtype(L, IMG_MT, methods, meta);
    static const luaL_Reg funcs[] = {
        {"parse", l_parse}, {"build", l_build}, {"obcsv", l_obcsv}, {"write", l_write},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_pushinteger(L, SFI_IMAGE_HDR_SIZE);
    lua_setfield(L, -2, "HEADER_SIZE");
    return 1;
}
