-- The customer answered: the callback is connected to its agent and leaves the queue.
-- Repeating it for the same agent changes nothing.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent.
-- Replies: 'ok' | refusal: 'unknown', 'not_callback', 'not_dialing', 'not_offered_to'.
if e.status == '' then return 'unknown' end
local agent = ARGV[4]
if e.status == 'connected' and e.connected_agent == agent and e.kind == 'callback' then
  return 'ok'
end
local refused = expect_dialing(agent)
if refused then return refused end
local wait = tonumber(now) - tonumber(e.requested_at)
redis.call('HSET', KEYS[1], 'status', 'connected', 'connected_agent', agent,
  'connected_at', now)
redis.call('ZREM', KEYS[3], id)
drop_timers()
redis.call('EXPIRE', KEYS[1], retention)
if redis.call('GET', KEYS[7]) == id then redis.call('DEL', KEYS[7]) end
redis.call('HINCRBY', KEYS[6], 'in_queue', -1)
redis.call('HINCRBY', KEYS[6], 'answered', 1)
redis.call('HINCRBY', KEYS[6], 'answered_wait_ms', wait)
count_today(KEYS[6], now, 'connected', 1)
count_today(KEYS[6], now, 'wait_ms', wait)
local dialed = ms(tonumber(now) - tonumber(e.dialing_since))
event('customer_answered', 'agent', agent, 'attempt', e.attempts,
  'callback_wait_ms', ms(wait), 'dial_ms', dialed)
event('connected', 'agent', agent, 'kind', 'callback', 'rang_ms', dialed)
return 'ok'
