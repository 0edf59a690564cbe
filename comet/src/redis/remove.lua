-- KEYS: clients, digests, names, deadlines   ARGV: public, wake channel
-- Atomic, so of several nodes reaping the same client exactly one gets
-- the record back (and sends "left"). Every node hears "gone:<digest>" and
-- forgets the client from its look-up cache (keyed by digest) at once.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return false end
local r = cjson.decode(record)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], r.digest)
redis.call('HDEL', KEYS[3], r.lname)
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call(PUBLISH, ARGV[2], 'gone:' .. r.digest)
return record
