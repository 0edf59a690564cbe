-- Shared by the scripts below (prepended to each, after the line that sets
-- PUBLISH: 'PUBLISH' on a single Redis, 'SPUBLISH' in a Cluster, where the
-- wake channel is a shard channel in the script's own slot). Stream ids are
-- "<ms>-<seq>"; Lua numbers are doubles, exact for ms timestamps.
local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
