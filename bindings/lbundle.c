/* lbundle.c: the sfi.core.bundle module: signed recipe bundles (create, open and verify in
 * memory, read members) and the raw archive writer the tests use for hostile archives.
 * Engine buffers are held by a "sfi.bundle.buf" box whose __gc frees them if Lua raises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/bundle.h"
#include "sfi/bytes.h"
#include "sfib.h"

#define BUNDLE_MT "sfi.bundle"
#define BUF_MT "sfi.bundle.buf"
#define FILE_MAX (256u << 20) /* largest bundle or key file read from disk */

struct lbundle {
    struct sfi_bundle *b; /* NULL <=> closed */
};

struct lbuf {
    unsigned char *p;
};

static int buf_gc(lua_State *L)
{
    struct lbuf *u = luaL_checkudata(L, 1, BUF_MT);
    free(u->p);
    u->p = NULL;
    return 0;
}

static struct lbuf *newbuf(lua_State *L)
{
    struct lbuf *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->p = NULL;
    luaL_setmetatable(L, BUF_MT);
    return u;
}

/* Pushes the box's bytes as a string and frees them. */
static void pushbuf(lua_State *L, struct lbuf *u, size_t n)
{
    lua_pushlstring(L, (const char *)u->p, n);
    free(u->p);
    u->p = NULL;
}

/* Reads a whole file into a Lua string (pushed). Raises NOT_FOUND / IO / FORMAT. */
static const char *slurp(lua_State *L, const char *path, const char *op, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        sfib_raisef(L, SFI_E_NOT_FOUND, op, "cannot open '%s'", path);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0, n;
    int toobig = 0;
    do {
        char *p = luaL_prepbuffer(&b);
        n = fread(p, 1, LUAL_BUFFERSIZE, f);
        luaL_addsize(&b, n);
        total += n;
        toobig = total > FILE_MAX;
    } while (n == LUAL_BUFFERSIZE && !toobig);
    int err = ferror(f);
    fclose(f);
    if (err)
        sfib_raisef(L, SFI_E_IO, op, "cannot read '%s'", path);
    if (toobig)
        sfib_raisef(L, SFI_E_FORMAT, op, "'%s' is larger than %u bytes", path, FILE_MAX);
    luaL_pushresult(&b);
    return lua_tolstring(L, -1, len);
}

static const char *const formats[] = {"tar.gz", "zip", "tar", NULL};

/* bundle.write_archive({{path=, data=|zeros=, kind=, link=}...}, [format]) -> string */
static int l_write_archive(lua_State *L)
{
    static const char *const kinds[] = {"file", "dir", "symlink", "hardlink", "chardev", "fifo",
                                        NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    int fmt = luaL_checkoption(L, 2, "tar.gz", formats);
    size_t n = luaL_len(L, 1);
    struct sfi_archive_entry *e = lua_newuserdatauv(L, (n ? n : 1) * sizeof *e, 0);
    for (size_t i = 0; i < n; i++) {
        lua_geti(L, 1, (lua_Integer)i + 1);
        luaL_argexpected(L, lua_istable(L, -1), 1, "table of entry tables");
        int t = lua_gettop(L);
        memset(&e[i], 0, sizeof e[i]);
        lua_getfield(L, t, "path");
        e[i].path = luaL_checkstring(L, -1);
        lua_getfield(L, t, "kind");
        e[i].kind = (enum sfi_archive_kind)luaL_checkoption(L, -1, "file", kinds);
        lua_getfield(L, t, "link");
        e[i].link = lua_tostring(L, -1);
        lua_getfield(L, t, "data");
        e[i].data = lua_tolstring(L, -1, &e[i].size);
        if (!e[i].data)
            e[i].size = (size_t)sfib_optfield_int(L, t, "zeros", 0);
        /* the strings stay referenced through argument 1 */
        lua_settop(L, t - 1);
    }
    struct lbuf *u = newbuf(L);
    size_t len;
    int rc = sfi_archive_write(sfib_ctx(L), e, n, (enum sfi_archive_format)fmt, &u->p, &len);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "bundle.write_archive");
    pushbuf(L, u, len);
    return 1;
}

/* bundle.create{name=, version=, min_sfirun=, max_sfirun=, entry=, permits={...},
 *               files={[path]=data}, key=PEM | key_uri="pkcs11:...", format=}
 *   -> string, signer (hex SHA-256 of the signer's SubjectPublicKeyInfo) */
static int l_create(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct sfi_bundle_spec s = {0};
    s.name = sfib_optfield_str(L, 1, "name", NULL);
    s.version = sfib_optfield_str(L, 1, "version", NULL);
    s.min_sfirun = sfib_optfield_str(L, 1, "min_sfirun", NULL);
    s.max_sfirun = sfib_optfield_str(L, 1, "max_sfirun", NULL);
    s.entry = sfib_optfield_str(L, 1, "entry", NULL);
    if (!s.name || !s.version || !s.min_sfirun || !s.max_sfirun || !s.entry)
        return luaL_argerror(L, 1, "name, version, min_sfirun, max_sfirun and entry are needed");
    s.key_uri = sfib_optfield_str(L, 1, "key_uri", NULL);
    lua_getfield(L, 1, "key");
    if (!s.key_uri)
        s.key_pem = luaL_checklstring(L, -1, &s.key_len);
    else if (!lua_isnil(L, -1))
        return luaL_argerror(L, 1, "key and key_uri exclude each other");
    char signer[65];
    s.signer_out = signer;
    lua_getfield(L, 1, "format");
    s.format = (enum sfi_archive_format)luaL_checkoption(L, -1, "tar.gz", formats);
    lua_getfield(L, 1, "permits");
    int pt = lua_gettop(L);
    if (!lua_isnil(L, pt)) {
        luaL_checktype(L, pt, LUA_TTABLE);
        s.npermits = luaL_len(L, pt);
        const char **pm = lua_newuserdatauv(L, (s.npermits + 1) * sizeof *pm, 0);
        for (size_t i = 0; i < s.npermits; i++) {
            lua_geti(L, pt, (lua_Integer)i + 1);
            pm[i] = luaL_checkstring(L, -1);
            lua_pop(L, 1); /* still referenced by the permits table */
        }
        s.permits = pm;
    }
    lua_getfield(L, 1, "files");
    int ft = lua_gettop(L);
    luaL_checktype(L, ft, LUA_TTABLE);
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, ft); lua_pop(L, 1))
        n++;
    struct sfi_bundle_input *in = lua_newuserdatauv(L, (n + 1) * sizeof *in, 0);
    size_t i = 0;
    for (lua_pushnil(L); lua_next(L, ft); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, "files must map path strings to content strings");
        in[i].path = lua_tostring(L, -2);
        in[i].data = lua_tolstring(L, -1, &in[i].size);
        i++;
    }
    s.files = in;
    s.nfiles = n;
    struct lbuf *u = newbuf(L);
    size_t len;
    int rc = sfi_bundle_create(sfib_ctx(L), &s, &u->p, &len);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "bundle.create");
    pushbuf(L, u, len);
    lua_pushstring(L, signer);
    return 2;
}

static int has_nul(const char *s, size_t n)
{
    return memchr(s, 0, n) != NULL;
}

/* bundle.open(bytes|path, trust_pem|path, [{max_member=, max_total=, max_members=}])
 *   -> sfi.bundle */
static int l_open(lua_State *L)
{
    size_t len, tlen;
    const char *data = luaL_checklstring(L, 1, &len);
    const char *trust = luaL_checklstring(L, 2, &tlen);
    struct sfi_bundle_limits lim = {0};
    if (lua_istable(L, 3)) {
        lim.max_member = (size_t)sfib_optfield_int(L, 3, "max_member", 0);
        lim.max_total = (size_t)sfib_optfield_int(L, 3, "max_total", 0);
        lim.max_members = (size_t)sfib_optfield_int(L, 3, "max_members", 0);
    }
    lua_settop(L, 2);
    /* an archive always holds NUL bytes; a path never does */
    if (!has_nul(data, len)) {
        data = slurp(L, data, "bundle.open", &len);
        lua_replace(L, 1);
    }
    if (!strstr(trust, "-----BEGIN")) {
        trust = slurp(L, trust, "bundle.open", &tlen);
        lua_replace(L, 2);
    }
    struct lbundle *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->b = NULL;
    luaL_setmetatable(L, BUNDLE_MT);
    int rc = sfi_bundle_open(sfib_ctx(L), data, len, trust, tlen, &lim, &u->b);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "bundle.open");
    return 1;
}

/* bundle.fingerprint(pem) -> hex: SHA-256 of the key's DER SubjectPublicKeyInfo */
static int l_fingerprint(lua_State *L)
{
    size_t len;
    const char *pem = luaL_checklstring(L, 1, &len);
    char hex[65];
    int rc = sfi_bundle_fingerprint(sfib_ctx(L), pem, len, hex);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "bundle.fingerprint");
    lua_pushstring(L, hex);
    return 1;
}

static struct sfi_bundle *checkbundle(lua_State *L)
{
    struct lbundle *u = luaL_checkudata(L, 1, BUNDLE_MT);
    if (!u->b)
        luaL_error(L, "attempt to use a closed bundle");
    return u->b;
}

/* b:manifest() -> {name, version, min_sfirun, max_sfirun, entry, signer, format,
 *                  permits = {{access, param}...}, files = {{path, size, sha256}...}} */
static int m_manifest(lua_State *L)
{
    struct sfi_bundle *b = checkbundle(L);
    const struct sfi_bundle_manifest *m = sfi_bundle_get_manifest(b);
    lua_createtable(L, 0, 9);
    const char *kv[][2] = {{"name", m->name}, {"version", m->version},
                           {"min_sfirun", m->min_sfirun}, {"max_sfirun", m->max_sfirun},
                           {"entry", m->entry}, {"signer", sfi_bundle_signer(b)},
                           {"format", sfi_bundle_format(b)}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        lua_pushstring(L, kv[i][1]);
        lua_setfield(L, -2, kv[i][0]);
    }
    lua_createtable(L, (int)m->npermits, 0);
    for (size_t i = 0; i < m->npermits; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, m->permits[i].access);
        lua_setfield(L, -2, "access");
        lua_pushstring(L, m->permits[i].param);
        lua_setfield(L, -2, "param");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "permits");
    lua_createtable(L, (int)m->nfiles, 0);
    for (size_t i = 0; i < m->nfiles; i++) {
        char hex[65];
        sfi_hex_str(m->files[i].sha256, 32, hex);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, m->files[i].path);
        lua_setfield(L, -2, "path");
        lua_pushinteger(L, (lua_Integer)m->files[i].size);
        lua_setfield(L, -2, "size");
        lua_pushstring(L, hex);
        lua_setfield(L, -2, "sha256");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "files");
    return 1;
}

/* b:read(path) -> string; raises NOT_FOUND */
static int m_read(lua_State *L)
{
    struct sfi_bundle *b = checkbundle(L);
    const char *path = luaL_checkstring(L, 2);
    const void *d;
    size_t n;
    if (sfi_bundle_member(b, path, &d, &n) != SFI_OK)
        return sfib_raisef(L, SFI_E_NOT_FOUND, "bundle.read", "no member '%s' in the bundle",
                           path);
    lua_pushlstring(L, d, n);
    return 1;
}

/* b:list() -> {path...} (the listed members, sorted; not manifest/manifest.sig) */
static int m_list(lua_State *L)
{
    const struct sfi_bundle_manifest *m = sfi_bundle_get_manifest(checkbundle(L));
    lua_createtable(L, (int)m->nfiles, 0);
    for (size_t i = 0; i < m->nfiles; i++) {
        lua_pushstring(L, m->files[i].path);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* b:close(), __close, __gc */
static int m_close(lua_State *L)
{
    struct lbundle *u = luaL_checkudata(L, 1, BUNDLE_MT);
    sfi_bundle_free(u->b);
    u->b = NULL;
    return 0;
}

/* tostring(b) -> "sfi.bundle (name version)" | "sfi.bundle (closed)" */
static int mm_tostring(lua_State *L)
{
    struct lbundle *u = luaL_checkudata(L, 1, BUNDLE_MT);
    if (!u->b) {
        lua_pushstring(L, BUNDLE_MT " (closed)");
    } else {
        const struct sfi_bundle_manifest *m = sfi_bundle_get_manifest(u->b);
        lua_pushfstring(L, BUNDLE_MT " (%s %s)", m->name, m->version);
    }
    return 1;
}

static const luaL_Reg l_funcs[] = {
    {"create", l_create}, {"open", l_open}, {"fingerprint", l_fingerprint},
    {"write_archive", l_write_archive}, {NULL, NULL},
};
static const luaL_Reg m_funcs[] = {
    {"manifest", m_manifest}, {"read", m_read}, {"list", m_list}, {"close", m_close},
    {NULL, NULL},
};
static const luaL_Reg mm_funcs[] = {
    {"__close", m_close}, {"__gc", m_close}, {"__tostring", mm_tostring}, {NULL, NULL},
};
static const luaL_Reg buf_mm[] = {{"__gc", buf_gc}, {NULL, NULL}};

int luaopen_sfi_core_bundle(lua_State *L)
{
    sfib_newtype(L, BUNDLE_MT, m_funcs, mm_funcs);
    sfib_newtype(L, BUF_MT, m_funcs + 4, buf_mm);
    luaL_newlib(L, l_funcs);
    lua_pushstring(L, sfi_version());
    lua_setfield(L, -2, "sfirun_version");
    return 1;
}
