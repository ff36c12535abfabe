-- A dead letter goes out again now, with a fresh retry window, behind any item of its
-- callback still open.
-- KEYS: items, due, order, dead. ARGV: id, now.
-- Replies: 'ok' | 'not_dead'.
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 'not_dead' end
local item = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))
item.attempts, item.first_failed, item.error = 0, nil, nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(item))
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, order_member(item.event.entry, ARGV[1]))
return 'ok'
