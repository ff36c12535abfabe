-- A caller calling again while their number has a callback pending keeps it: their new
-- live entry leaves the queue (`callback_kept`, naming the callback kept) and the callback
-- keeps its place. Runs on the live entry; KEYS[7] is the caller's number's.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: number, how it was kept.
-- Replies: {'ok', agents that were ringing for the live entry…} | {'no_callback'} |
-- {refusal}: 'unknown', 'not_live', 'not_open'.
if e.status == '' then return {'unknown'} end
local refused = expect_live_waiting()
if refused then return {refused} end
local existing = open_callback()
if not existing then return {'no_callback'} end
e.number = ARGV[4]
return close('callback_kept', 'existing', existing, 'choice', ARGV[5])
