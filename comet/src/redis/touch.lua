-- KEYS: deadlines   ARGV: public token, idle ms, public token, idle ms, …
-- Moves each client's idle deadline to now + its idle timeout (one call
-- per node and flush, not one per poll). Removed clients stay removed
-- (XX). Scores go in ZADDs of up to 500 members (Lua's unpack is bounded).
local now = now_ms()
local touched = 0
local batch = {}
local function send()
  touched = touched + redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(batch))
  batch = {}
end
for i = 1, #ARGV, 2 do
  batch[#batch + 1] = now + tonumber(ARGV[i + 1])
  batch[#batch + 1] = ARGV[i]
  if #batch >= 1000 then send() end
end
if #batch > 0 then send() end
return touched
