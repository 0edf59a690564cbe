-- KEYS: deadlines, clients   ARGV: most to return
-- Records of clients whose idle deadline has passed (by Redis's clock, the
-- same for every node).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
if #due == 0 then return {} end
local records = redis.call('HMGET', KEYS[2], unpack(due))
local out = {}
for _, r in ipairs(records) do
  if r then out[#out + 1] = r end
end
return out
