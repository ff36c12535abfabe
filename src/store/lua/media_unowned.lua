-- Lists the waiting live callers whose media lease ran out: their daemon died, drained or
-- lost Redis. Leases of callers who no longer wait (connected, a callback, gone) are
-- dropped on the way, so what a daemon stopped renewing on purpose never comes back.
-- KEYS: media leases. ARGV: entry key prefix, now, limit.
-- Replies: the ids of the callers to take over.
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(expired) do
  local e = redis.call('HMGET', ARGV[1] .. id, 'status', 'kind')
  if e[2] == 'live' and (e[1] == 'waiting' or e[1] == 'offered') then
    out[#out + 1] = id
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
