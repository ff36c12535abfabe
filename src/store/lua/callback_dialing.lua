-- The customer leg is being dialed.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: agent.
-- Replies: 'ok' | refusal: 'unknown', 'not_callback', 'not_dialing', 'not_offered_to'.
if e.status == '' then return 'unknown' end
local refused = expect_dialing(ARGV[4])
if refused then return refused end
event('dialing_customer', 'agent', ARGV[4], 'attempt', e.attempts)
return 'ok'
