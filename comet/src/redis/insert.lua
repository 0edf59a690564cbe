-- KEYS: clients, digests, names, deadlines
-- ARGV: public, digest, name key (what names are unique by), record JSON, idle ms
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return 'name' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 'token'
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], now_ms() + tonumber(ARGV[5]), ARGV[1])
return 'ok'
