-- KEYS: clients, deadlines   ARGV: public tokens
-- Moves each client's idle deadline to now + its idle timeout (one call
-- per node and flush, not one per poll). Removed clients stay removed (XX).
local now = now_ms()
local touched = 0
for _, public in ipairs(ARGV) do
  local record = redis.call('HGET', KEYS[1], public)
  if record then
    redis.call('ZADD', KEYS[2], 'XX', now + cjson.decode(record).idle_ms, public)
    touched = touched + 1
  end
end
return touched
