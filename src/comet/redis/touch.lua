-- KEYS: clients, deadlines   ARGV: public
-- Moves the client's idle deadline to now + its idle timeout.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('ZADD', KEYS[2], 'XX', now_ms() + cjson.decode(record).idle_ms, ARGV[1])
return 1
