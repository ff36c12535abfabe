-- A callback not yet accepted leaves the queue (expired, canceled).
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: reason.
-- Replies: {'ok', agents that were ringing…} | {refusal}: 'unknown', 'not_callback',
-- 'not_open'.
if e.status == '' then return {'unknown'} end
local refused = expect_withdrawable()
if refused then return {refused} end
return close(ARGV[4])
