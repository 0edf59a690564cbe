-- KEYS: log, trimmed[, idempotency key]
-- ARGV: audience, name, contents JSON, max messages, max age ms, wake
--       channel, idempotency window ms
-- Appends, enforces retention (count, then age), records the newest id it
-- dropped (so an older cursor is refused, never silently skipped), and
-- wakes every node. With the idempotency key already set (the same send,
-- retried),
-- appends nothing and returns the first send's id.
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return first end
end
local id = redis.call('XADD', KEYS[1], '*', 'a', ARGV[1], 'n', ARGV[2], 'c', ARGV[3])
if KEYS[3] then redis.call('SET', KEYS[3], id, 'PX', tonumber(ARGV[7])) end
local dropped = nil
local n = redis.call('XLEN', KEYS[1])
local max = tonumber(ARGV[4])
if n > max then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n - max)
  dropped = old[#old][1]
  redis.call('XTRIM', KEYS[1], 'MAXLEN', max)
end
local minid = tostring(now_ms() - tonumber(ARGV[5])) .. '-0'
local old = redis.call('XRANGE', KEYS[1], '-', '(' .. minid)
if #old > 0 then
  dropped = old[#old][1]
  redis.call('XTRIM', KEYS[1], 'MINID', minid)
end
if dropped then redis.call('SET', KEYS[2], dropped) end
redis.call(PUBLISH, ARGV[6], id)
return id
