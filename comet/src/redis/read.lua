-- KEYS: log, trimmed   ARGV: since, count
-- {'expired'} if retention dropped something newer than `since`,
-- {'ahead'} if `since` is past the newest id, else {'ok', entries}.
local trimmed = redis.call('GET', KEYS[2])
if trimmed and cmp(ARGV[1], trimmed) < 0 then return {'expired'} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local head = (#last > 0 and last[1][1]) or trimmed or '0-0'
if cmp(ARGV[1], head) > 0 then return {'ahead'} end
return {'ok', redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))}
