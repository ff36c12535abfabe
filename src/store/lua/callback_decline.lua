-- The agent heard the callback and declined it: they are recorded in `declined` and held
-- off it, and it waits again at its position unless every eligible agent has now declined
-- (agents who only missed a ring have not).
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent, held off until,
-- hold-off timer, eligible agents…
-- Replies: {'waiting'} | {'ringing', agents still ringing…} | {'declined_by_all'} (agents
-- still ringing are stopped through its withdrawal) | {refusal}: 'unknown',
-- 'not_callback', 'not_offered', 'not_offered_to'.
if e.status == '' then return {'unknown'} end
if e.kind ~= 'callback' then return {'not_callback'} end
if e.status ~= 'offered' then return {'not_offered'} end
local agent = ARGV[4]
local rest, found = {}, false
for _, a in ipairs(split(e.offered_to)) do
  if a == agent then found = true else rest[#rest + 1] = a end
end
if not found then return {'not_offered_to'} end
e.offered_to = table.concat(rest, ',')
redis.call('HSET', KEYS[1], 'offered_to', e.offered_to)
if declined_by(agent, 7) then
  close('declined_by_all', 'agent', agent)
  return {'declined_by_all'}
end
hold_off(KEYS[1], KEYS[4], e.held_off, agent, now, ARGV[5], ARGV[6])
if #rest == 0 then
  redis.call('HSET', KEYS[1], 'status', 'waiting')
  redis.call('ZADD', KEYS[2], e.position, id)
  redis.call('ZREM', KEYS[4], TIMER.offer_timeout .. id)
  return {'waiting'}
end
local out = {'ringing'}
for _, a in ipairs(rest) do out[#out + 1] = a end
return out
