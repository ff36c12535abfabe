-- Leases due timers to one daemon: each is pushed to the lease's end, so it comes due
-- again for anyone if its owner dies before completing it. A caller's max wait is left
-- to the daemon that runs their media while its lease holds: only it plays to them, so
-- only it may send them elsewhere (it comes due for others once that lease runs out).
-- KEYS: timers, leases, media leases (the timers key again for a scope without callers).
-- ARGV: now, lease end, owner, limit, the max-wait members' start ('' for none), entry
-- key prefix.
-- Replies: the timer members leased.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4] * 4)
local out = {}
local mw = ARGV[5]
for _, m in ipairs(due) do
  if #out >= tonumber(ARGV[4]) then break end
  local theirs = false
  if mw ~= '' and string.sub(m, 1, #mw) == mw then
    local id = string.sub(m, #mw + 1)
    local owner = redis.call('HGET', ARGV[6] .. id, 'media_owner')
    local lease = redis.call('ZSCORE', KEYS[3], id)
    theirs = owner and owner ~= '' and owner ~= ARGV[3] and lease
      and tonumber(lease) >= tonumber(ARGV[1])
  end
  if not theirs then
    redis.call('ZADD', KEYS[1], ARGV[2], m)
    redis.call('HSET', KEYS[2], m, ARGV[3])
    out[#out + 1] = m
  end
end
return out
