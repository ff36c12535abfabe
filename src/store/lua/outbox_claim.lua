-- Claims up to ARGV[3] due outbox items for delivery until ARGV[2]: only the oldest open
-- item of each callback, so the receiver gets one callback's events in the order they
-- happened, and no two daemons send one item at once. Items behind another of their
-- callback wait until then too, so they do not hold up the scan.
-- KEYS: items, due, order. ARGV: now, claimed until, limit.
-- Replies: {id, item JSON, …}.
local out, limit = {}, tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit * 4)
for _, id in ipairs(due) do
  if #out >= 2 * limit then break end
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw then
    redis.call('ZREM', KEYS[2], id)
  else
    local entry = cjson.decode(raw).event.entry
    local head = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. entry .. '|', '[' .. entry .. '|~',
      'LIMIT', 0, 1)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    if head[1] == order_member(entry, id) then
      out[#out + 1] = id
      out[#out + 1] = raw
    end
  end
end
return out
