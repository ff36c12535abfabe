-- The customer leg failed: the callback waits for its retry time, or is closed.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent, cause, retry time
-- ('' for none).
-- Replies: 'retry' | 'closed' | refusal: 'unknown', 'not_callback', 'not_dialing',
-- 'not_offered_to'.
if e.status == '' then return 'unknown' end
local agent = ARGV[4]
local refused = expect_dialing(agent)
if refused then return refused end
if ARGV[6] == '' then
  close('attempt_failed', 'agent', agent, 'cause', ARGV[5], 'attempt', e.attempts,
    'retry', '0')
  return 'closed'
end
redis.call('HSET', KEYS[1], 'status', 'retry_wait', 'retry_at', ARGV[6], 'dialing_agent', '')
redis.call('ZADD', KEYS[4], ARGV[6], TIMER.callback_retry .. id)
event('attempt_failed', 'agent', agent, 'cause', ARGV[5], 'attempt', e.attempts,
  'retry', '1', 'retry_at', ARGV[6])
return 'retry'
