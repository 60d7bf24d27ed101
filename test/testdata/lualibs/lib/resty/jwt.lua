-- A test-only stand-in for lua-resty-jwt (not packaged by Debian): the two
-- calls the corpus hook skylothar-jwt-redis-kid.lua makes, HS256 only,
-- written on resty.sha256 so that the hook runs where Debian's libraries are.
local cjson = require "cjson.safe"
local sha256 = require "resty.sha256"
local bit = require "bit"

local _M = {}

local function b64url_decode(s)
    s = s:gsub("-", "+"):gsub("_", "/")
    local pad = #s % 4
    if pad > 0 then s = s .. string.rep("=", 4 - pad) end
    return ngx.decode_base64(s)
end

local function b64url_encode(s)
    return (ngx.encode_base64(s):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

local function hmac_sha256(key, msg)
    if #key > 64 then
        local h = sha256:new()
        h:update(key)
        key = h:final()
    end
    key = key .. string.rep("\0", 64 - #key)
    local ipad, opad = {}, {}
    for i = 1, 64 do
        local b = key:byte(i)
        ipad[i] = string.char(bit.bxor(b, 0x36))
        opad[i] = string.char(bit.bxor(b, 0x5c))
    end
    local h = sha256:new()
    h:update(table.concat(ipad))
    h:update(msg)
    local inner = h:final()
    h = sha256:new()
    h:update(table.concat(opad))
    h:update(inner)
    return h:final()
end

function _M.load_jwt(self, token)
    local obj = { valid = false, verified = false, reason = "invalid jwt string" }
    if type(token) ~= "string" then return obj end
    local h, p, s = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]*)$")
    if not h then return obj end
    local header = cjson.decode(b64url_decode(h) or "")
    local payload = cjson.decode(b64url_decode(p) or "")
    if type(header) ~= "table" or type(payload) ~= "table" then return obj end
    obj.header, obj.payload, obj.signature = header, payload, s
    obj.raw_header, obj.raw_payload = h, p
    obj.valid, obj.reason = true, "everything is awesome~ :p"
    return obj
end

function _M.verify_jwt_obj(self, secret, obj, leeway)
    if not obj.valid then return obj end
    if obj.header.alg ~= "HS256" then
        obj.reason = "invalid alg"
        return obj
    end
    local want = b64url_encode(hmac_sha256(secret, obj.raw_header .. "." .. obj.raw_payload))
    if want ~= obj.signature then
        obj.reason = "signature mismatch: " .. obj.signature
        return obj
    end
    local exp = obj.payload.exp
    if exp and exp + (leeway or 0) < ngx.time() then
        obj.reason = "jwt token expired at: " .. ngx.http_time(exp)
        return obj
    end
    obj.verified = true
    return obj
end

return _M
