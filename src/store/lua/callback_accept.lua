-- The agent pressed 1: the callback is theirs (status `dialing`), leaves the waiting set
-- for good and no longer expires. Repeating it for the same agent changes nothing.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent.
-- Other agents of the offer keep their booking until their legs are gone.
-- Replies: {'ok'} | {refusal}: 'unknown', 'not_callback',
-- 'not_offered', 'not_offered_to'.
if e.status == '' then return {'unknown'} end
if e.kind ~= 'callback' then return {'not_callback'} end
local agent = ARGV[4]
if e.status == 'dialing' and e.dialing_agent == agent then return {'ok'} end
if e.status ~= 'offered' then return {'not_offered'} end
local found = false
for _, a in ipairs(split(e.offered_to)) do
  if a == agent then found = true end
end
if not found then return {'not_offered_to'} end
local attempts = tonumber(e.attempts ~= '' and e.attempts or '0') + 1
redis.call('HSET', KEYS[1], 'status', 'dialing', 'offered_to', '', 'dialing_agent', agent,
  'dialing_since', now, 'attempts', attempts)
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[4], TIMER.offer_timeout .. id, TIMER.callback_expiry .. id)
event('accepted', 'agent', agent, 'attempt', attempts,
  'request_age_ms', ms(tonumber(now) - tonumber(e.requested_at)))
return {'ok'}
