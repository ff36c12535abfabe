-- An agent did not take the offer: the entry waits again at its old score once no other
-- agent is ringing for it, and is not offered to this agent again before their hold-off
-- ends. A missed ring is not a decline: it never counts toward `declined_by_all`.
-- KEYS: entry, waiting, timers, events.
-- ARGV: id, agent, now, cause, offer timer, held off until, hold-off timer.
-- Replies: 'waiting' | 'ringing' (other agents still ring) | 'not_offered' |
-- 'not_offered_to'.
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'held_off', 'queue', 'line',
  'position', 'offered_at')
if e[1] ~= 'offered' then return 'not_offered' end
local rest, found = {}, false
for _, a in ipairs(split(e[2])) do
  if a == ARGV[2] then found = true else rest[#rest + 1] = a end
end
if not found then return 'not_offered_to' end
redis.call('HSET', KEYS[1], 'offered_to', table.concat(rest, ','))
hold_off(KEYS[1], KEYS[3], e[3], ARGV[2], ARGV[3], ARGV[6], ARGV[7])
if #rest == 0 then
  redis.call('HSET', KEYS[1], 'status', 'waiting')
  redis.call('ZADD', KEYS[2], e[6], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[5])
end
redis.call('XADD', KEYS[4], '*', 'event', 'agent_no_answer', 'entry', ARGV[1],
  'queue', e[4], 'line', e[5], 'agent', ARGV[2], 'cause', ARGV[4], 'at', ARGV[3],
  'rang_ms', ms(tonumber(ARGV[3]) - tonumber(e[7])), 'held_off_until', ARGV[6])
if #rest == 0 then return 'waiting' end
return 'ringing'
