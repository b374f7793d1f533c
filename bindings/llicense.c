/* llicense.c: the sfi.core.license module: chip certificates, simulated chip identities and
 * the licence crypto (software provider and the RSS-side open). Strings in, strings out. */
#include <string.h>

#include "sfi/license.h"
#include "sfib.h"

static const uint8_t *arg_bytes(lua_State *L, int i, size_t want, const char *what)
{
    size_t n = 0;
    const char *s = luaL_checklstring(L, i, &n);
    if (n != want)
        luaL_argerror(L, i, lua_pushfstring(L, "%s must be %d bytes", what, (int)want));
    return (const uint8_t *)s;
}

/* license.cert_parse(cert136) -> {product_id=, pub=64B, sig=64B} */
static int l_cert_parse(lua_State *L)
{
    size_t n = 0;
    const char *c = luaL_checklstring(L, 1, &n);
    if (n != SFI_CERT_SIZE)
        return sfib_raisef(L, SFI_E_FORMAT, "license.cert_parse",
                           "certificate is %zu bytes, not %d", n, SFI_CERT_SIZE);
    struct sfi_cert cert;
    int rc = sfi_cert_parse(sfib_ctx(L), (const uint8_t *)c, &cert);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.cert_parse");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, cert.product_id);
    lua_setfield(L, -2, "product_id");
    lua_pushlstring(L, (const char *)cert.pub, 64);
    lua_setfield(L, -2, "pub");
    lua_pushlstring(L, (const char *)cert.sig, 64);
    lua_setfield(L, -2, "sig");
    return 1;
}

/* license.cert_verify(cert136, ca_pub64) -> true (raises FORMAT / AUTH) */
static int l_cert_verify(lua_State *L)
{
    size_t n = 0;
    const char *c = luaL_checklstring(L, 1, &n);
    if (n != SFI_CERT_SIZE)
        return sfib_raisef(L, SFI_E_FORMAT, "license.cert_verify",
                           "certificate is %zu bytes, not %d", n, SFI_CERT_SIZE);
    int rc = sfi_cert_verify(sfib_ctx(L), (const uint8_t *)c, arg_bytes(L, 2, 64, "CA key"));
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.cert_verify");
    lua_pushboolean(L, 1);
    return 1;
}

/* license.cert_make(ca_priv32, product_id, chip_pub64) -> cert136 */
static int l_cert_make(lua_State *L)
{
    uint8_t cert[SFI_CERT_SIZE];
    int rc = sfi_cert_make(sfib_ctx(L), arg_bytes(L, 1, 32, "CA private key"),
                           luaL_checkstring(L, 2), arg_bytes(L, 3, 64, "chip public key"), cert);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.cert_make");
    lua_pushlstring(L, (const char *)cert, sizeof cert);
    return 1;
}

/* license.chip_identity(uid, seed32) -> priv32, pub64 */
static int l_chip_identity(lua_State *L)
{
    size_t n = 0;
    const char *uid = luaL_checklstring(L, 1, &n);
    uint8_t priv[32], pub[64];
    int rc = sfi_chip_identity(sfib_ctx(L), (const uint8_t *)uid, n,
                               arg_bytes(L, 2, 32, "seed"), priv, pub);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.chip_identity");
    lua_pushlstring(L, (const char *)priv, 32);
    sfi_wipe(priv, sizeof priv);
    lua_pushlstring(L, (const char *)pub, 64);
    return 2;
}

/* license.pem_key(text, private) -> priv32|nil, pub64 */
static int l_pem_key(lua_State *L)
{
    size_t n = 0;
    const char *pem = luaL_checklstring(L, 1, &n);
    int priv_wanted = lua_toboolean(L, 2);
    uint8_t priv[32], pub[64];
    int rc = sfi_ec_from_pem(sfib_ctx(L), pem, n, priv_wanted ? priv : NULL, pub);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.pem_key");
    if (priv_wanted)
        lua_pushlstring(L, (const char *)priv, 32);
    else
        lua_pushnil(L);
    sfi_wipe(priv, sizeof priv);
    lua_pushlstring(L, (const char *)pub, 64);
    return 2;
}

/* license.parse(lic136) -> {type=, session=, version=, min_version=, eph=64B} */
static int l_parse(lua_State *L)
{
    struct sfi_license_info in;
    int rc = sfi_license_parse(sfib_ctx(L), arg_bytes(L, 1, SFI_LIC_SIZE, "licence"), &in);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.parse");
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, in.type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, in.type == SFI_LIC_TYPE_ST ? "st" : "sfirun");
    lua_setfield(L, -2, "maker");
    lua_pushinteger(L, in.session);
    lua_setfield(L, -2, "session");
    lua_pushinteger(L, in.version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, in.min_version);
    lua_setfield(L, -2, "min_version");
    lua_pushlstring(L, (const char *)in.eph_pub, 64);
    lua_setfield(L, -2, "eph");
    return 1;
}

/* license.on_curve(pub64) -> boolean: X||Y is a point on P-256 */
static int l_on_curve(lua_State *L)
{
    lua_pushboolean(L, sfi_license_on_curve(arg_bytes(L, 1, 64, "public key")));
    return 1;
}

/* license.open(chip_priv32, lic136) -> key16, iv16 (raises FORMAT / CRYPTO / AUTH) */
static int l_open(lua_State *L)
{
    uint8_t key[16], iv[16];
    int rc = sfi_license_open(sfib_ctx(L), arg_bytes(L, 1, 32, "chip private key"),
                              arg_bytes(L, 2, SFI_LIC_SIZE, "licence"), key, iv);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.open");
    lua_pushlstring(L, (const char *)key, 16);
    lua_pushlstring(L, (const char *)iv, 16);
    sfi_wipe(key, sizeof key);
    sfi_wipe(iv, sizeof iv);
    return 2;
}

/* license.make_soft(chip_pub64, key16, iv16) -> lic136 */
static int l_make_soft(lua_State *L)
{
    uint8_t lic[SFI_LIC_SIZE];
    int rc = sfi_license_make_soft(sfib_ctx(L), arg_bytes(L, 1, 64, "chip public key"),
                                   arg_bytes(L, 2, 16, "key"), arg_bytes(L, 3, 16, "IV"), lic);
    if (rc != SFI_OK)
        return sfib_raise(L, rc, "license.make_soft");
    lua_pushlstring(L, (const char *)lic, sizeof lic);
    return 1;
}

int luaopen_sfi_core_license(lua_State *L)
{
    static const luaL_Reg l[] = {
        {"cert_parse", l_cert_parse}, {"cert_verify", l_cert_verify},
        {"cert_make", l_cert_make},   {"chip_identity", l_chip_identity},
        {"pem_key", l_pem_key},       {"parse", l_parse},
        {"open", l_open},             {"make_soft", l_make_soft},
        {"on_curve", l_on_curve},
        {NULL, NULL}};
    luaL_newlib(L, l);
    lua_pushinteger(L, SFI_CERT_SIZE);
    lua_setfield(L, -2, "CERT_SIZE");
    lua_pushinteger(L, SFI_CERT_PRODUCT_LEN);
    lua_setfield(L, -2, "PRODUCT_ID_SIZE");
    lua_pushinteger(L, SFI_LIC_SIZE);
    lua_setfield(L, -2, "LICENSE_SIZE");
    return 1;
}
