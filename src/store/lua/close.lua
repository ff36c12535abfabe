-- The entry leaves the queue unconnected (abandoned, max wait); never a callback.
-- Repeating it with the same reason changes nothing and answers 'ok' (a hangup seen twice
-- across a reconnect).
-- Abandoned callers count in today's figures.
-- KEYS: entry, waiting, open, timers, events, withdrawals, callback stats.
-- ARGV: id, reason, now, offer timer, max-wait timer, retention (s).
-- Replies: {'ok', agents still ringing for it…} | {'callback'} (a callback: not cut) |
-- {'not_open'}.
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'queue', 'line', 'position',
  'kind', 'closed_reason')
if e[1] == 'closed' and e[7] == ARGV[2] then return {'ok'} end
-- A caller who hangs up after confirming a callback still has a channel hangup on its way:
-- only the callback's own transitions close it.
if e[6] == 'callback' then return {'callback'} end
if e[1] ~= 'waiting' and e[1] ~= 'offered' then return {'not_open'} end
redis.call('HSET', KEYS[1], 'status', 'closed', 'offered_to', '', 'closed_reason', ARGV[2],
  'closed_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[5], '*', 'event', ARGV[2], 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'at', ARGV[3], 'waited_ms', ms(tonumber(ARGV[3]) - tonumber(e[5])))
withdrawn(KEYS[6], ARGV[1], e[2], ARGV[2])
if ARGV[2] == 'abandoned' then count_today(KEYS[7], ARGV[3], 'abandoned', 1) end
local out = {'ok'}
for _, a in ipairs(split(e[2])) do out[#out + 1] = a end
return out
