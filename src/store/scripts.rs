//! The Lua scripts that make each state change one atomic step in Redis. Each touches the
//! keys of one hash slot only (one queue, or the agents), so they also run on Redis Cluster.

use redis::Script;

/// Lua helpers prepended to scripts that parse comma-separated agent lists, among them an
/// entry's hold-offs (`held_off`: `agent:until_ms,…`, see `records`).
const SPLIT: &str = r#"
local function split(s)
  local out = {}
  for item in string.gmatch(s or '', '[^,]+') do out[#out + 1] = item end
  return out
end
local function ms(n) return string.format('%d', n) end
-- Whether `agent` may not be offered the entry with these hold-offs yet at `now`.
local function held_off(list, agent, now)
  for _, item in ipairs(split(list)) do
    local a, t = string.match(item, '^([^:]+):(%d+)$')
    if a == agent and tonumber(t) > now then return true end
  end
  return false
end
-- Holds `agent` off the entry at `key` until `until_ms` (replacing an earlier hold-off of
-- theirs) and, unless that time has come already, schedules `timer` in `timers` for it,
-- so routing looks again then.
local function hold_off(key, timers, list, agent, now, until_ms, timer)
  local out = {agent .. ':' .. until_ms}
  for _, item in ipairs(split(list)) do
    if string.match(item, '^[^:]+') ~= agent then out[#out + 1] = item end
  end
  redis.call('HSET', key, 'held_off', table.concat(out, ','))
  if tonumber(until_ms) > tonumber(now) then redis.call('ZADD', timers, until_ms, timer) end
end
"#;

/// KEYS: entry, waiting, open, timers, events.
/// ARGV: id, position, max-wait timer ('' for none), its due time, then hash field/value pairs.
const ENQUEUE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3]) end
local e = redis.call('HMGET', KEYS[1], 'queue', 'line', 'kind')
redis.call('XADD', KEYS[5], '*', 'event', 'entered', 'entry', ARGV[1], 'queue', e[1],
  'line', e[2], 'kind', e[3], 'at', ARGV[2])
return 'ok'
"#;

/// Lua helper for scripts that ask whether an agent may be offered an entry: available and
/// not booked. A booking whose lease ran out (its daemon died between booking and ringing)
/// counts as none.
const FREE: &str = r#"
local function is_free(key, now)
  local a = redis.call('HMGET', key, 'state', 'booked', 'booked_until')
  local booked = a[2] and a[2] ~= '' and tonumber(a[3] or '0') >= now
  return a[1] == 'available' and not booked
end
"#;

/// Books agents for an entry, all or none. With calls ending ('1'), agents still `on_call`
/// are made available first (whether or not the booking then succeeds: their call is over),
/// so that a daemon frees and books the agent of a call that just ended in one step.
/// KEYS: agent events, agent hashes. ARGV: entry, queue, now, booked-until, calls ending,
/// state source.
const BOOK_AGENTS: &str = r#"
local now = tonumber(ARGV[3])
for i = 2, #KEYS do
  local a = redis.call('HMGET', KEYS[i], 'id', 'state')
  if not a[1] then return 'unknown' end
  if ARGV[5] == '1' and a[2] == 'on_call' then
    redis.call('HSET', KEYS[i], 'state', 'available', 'idle_since', ARGV[3])
    redis.call('XADD', KEYS[1], '*', 'event', 'agent_state', 'agent', a[1], 'from', 'on_call',
      'to', 'available', 'source', ARGV[6], 'at', ARGV[3])
  end
  if not is_free(KEYS[i], now) then return 'busy:' .. a[1] end
end
for i = 2, #KEYS do
  redis.call('HSET', KEYS[i], 'booked', ARGV[1], 'booked_queue', ARGV[2],
    'booked_until', ARGV[4])
end
return 'ok'
"#;

/// Releases the bookings that still name this entry. KEYS: agent hashes. ARGV: entry.
const RELEASE_AGENTS: &str = r#"
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'booked') == ARGV[1] then
    redis.call('HSET', key, 'booked', '', 'booked_queue', '', 'booked_until', '0')
  end
end
return 'ok'
"#;

/// Takes a waiting entry out of the waiting set for its agents, unless one of them is still
/// held off it. The plan that chose it saw some entries ahead of it (`known`,
/// comma-separated): any other entry ahead of it now (put back meanwhile, by another
/// daemon) goes first, so the claim is refused.
/// KEYS: entry, waiting, timers, events. ARGV: id, now, offer timer, its due, known, agents…
const CLAIM_ENTRY: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'status', 'held_off', 'queue', 'line', 'position',
  'number')
if e[1] ~= 'waiting' then return 'not_waiting' end
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return 'not_waiting' end
if rank > 0 then
  local known, count = {}, 0
  for _, id in ipairs(split(ARGV[5])) do known[id] = true; count = count + 1 end
  if rank > count then return 'not_first' end
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, rank - 1)) do
    if not known[id] then return 'not_first' end
  end
end
local now = tonumber(ARGV[2])
local agents = {}
for i = 6, #ARGV do
  if held_off(e[2], ARGV[i], now) then return 'held_off:' .. ARGV[i] end
  agents[#agents + 1] = ARGV[i]
end
local list = table.concat(agents, ',')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'offered', 'offered_to', list, 'offered_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
local event = {'XADD', KEYS[4], '*', 'event', 'offered', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agents', list, 'at', ARGV[2],
  'waited_ms', ms(tonumber(ARGV[2]) - tonumber(e[5]))}
-- Callbacks name their number in every event.
if e[6] then
  event[#event + 1] = 'number'
  event[#event + 1] = e[6]
end
redis.call(unpack(event))
return 'ok'
"#;

/// Undoes a claim whose agents could not be booked (the claim and the booking are made
/// together, in different slots): the entry waits again at its old score, holding nobody
/// off.
/// KEYS: entry, waiting, timers, events. ARGV: id, now, offer timer, agents (comma-separated).
const WITHDRAW_OFFER: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'queue', 'line', 'position')
if e[1] ~= 'offered' or e[2] ~= ARGV[4] then return 'moved_on' end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'offered_to', '')
redis.call('ZADD', KEYS[2], e[5], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], '*', 'event', 'offer_withdrawn', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agents', ARGV[4], 'at', ARGV[2])
return 'ok'
"#;

/// An agent did not take the offer: the entry waits again at its old score once no other
/// agent is ringing for it, and is not offered to this agent again before their hold-off
/// ends. A missed ring is not a decline: it never counts toward `declined_by_all`.
/// KEYS: entry, waiting, timers, events.
/// ARGV: id, agent, now, cause, offer timer, held off until, hold-off timer.
const OFFER_FAILED: &str = r#"
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
"#;

/// Frees an agent after a missed offer and counts it; past the queue's limit an
/// `available` agent goes `away`.
/// KEYS: agent, agent events. ARGV: entry, away-after (0 = never), now, queue.
const AGENT_MISSED: &str = r#"
local a = redis.call('HMGET', KEYS[1], 'id', 'state', 'booked', 'missed')
if not a[1] then return 'unknown' end
if a[3] ~= ARGV[1] then return 'not_booked' end
local missed = tonumber(a[4] or '0') + 1
redis.call('HSET', KEYS[1], 'booked', '', 'booked_queue', '', 'booked_until', '0',
  'missed', missed)
local limit = tonumber(ARGV[2])
if limit > 0 and missed >= limit and a[2] == 'available' then
  redis.call('HSET', KEYS[1], 'state', 'away')
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
    'to', 'away', 'source', 'missed_offers', 'queue', ARGV[4], 'at', ARGV[3])
  return 'away'
end
return 'released'
"#;

/// The agent answered: the entry is connected and leaves the queue. Repeating it for the
/// same agent changes nothing and answers 'ok', so a caller may retry after a lost reply.
/// KEYS: entry, open, timers, events.
/// ARGV: id, agent, now, offer timer, max-wait timer, retention (s).
/// Returns 'ok' followed by the other agents of a ring-all offer.
const CONNECT: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'queue', 'line', 'position',
  'offered_at', 'connected_agent', 'kind')
-- A callback connects when its customer answers, through its own script.
if e[8] == 'callback' then return {'not_live'} end
if e[1] == 'connected' then
  if e[7] == ARGV[2] then return {'ok'} end
  return {'not_offered_to'}
end
if e[1] ~= 'offered' then return {'not_offered'} end
local others, found = {}, false
for _, a in ipairs(split(e[2])) do
  if a == ARGV[2] then found = true else others[#others + 1] = a end
end
if not found then return {'not_offered_to'} end
redis.call('HSET', KEYS[1], 'status', 'connected', 'offered_to', '',
  'connected_agent', ARGV[2], 'connected_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[4], '*', 'event', 'connected', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agent', ARGV[2], 'at', ARGV[3],
  'waited_ms', ms(tonumber(ARGV[3]) - tonumber(e[5])),
  'rang_ms', ms(tonumber(ARGV[3]) - tonumber(e[6])))
local out = {'ok'}
for _, a in ipairs(others) do out[#out + 1] = a end
return out
"#;

/// The bridge to the agent who answered could not be made (their leg vanished): the entry
/// waits again at its old position. KEYS: entry, waiting, open, events. ARGV: id, agent, now.
const BRIDGE_FAILED: &str = r#"
local e = redis.call('HMGET', KEYS[1], 'status', 'connected_agent', 'queue', 'line', 'position')
if e[1] ~= 'connected' or e[2] ~= ARGV[2] then return 'not_connected' end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'connected_agent', '', 'connected_at', '')
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], e[5], ARGV[1])
redis.call('ZADD', KEYS[3], e[5], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'event', 'agent_no_answer', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agent', ARGV[2], 'cause', 'bridge_failed', 'at', ARGV[3])
return 'ok'
"#;

/// The agent who answered is on the call. The answer is a fact, so this does not check
/// the state: an agent set `away` while their phone rang is on the call all the same.
/// KEYS: agent, agent events, other agents of the offer. ARGV: entry, now, queue.
const AGENT_ANSWERED: &str = r#"
local a = redis.call('HMGET', KEYS[1], 'id', 'state', 'booked')
if not a[1] then return 'unknown' end
redis.call('HSET', KEYS[1], 'state', 'on_call', 'missed', '0')
if a[3] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'booked', '', 'booked_queue', '', 'booked_until', '0')
end
if a[2] ~= 'on_call' then
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
    'to', 'on_call', 'source', 'answered', 'queue', ARGV[3], 'at', ARGV[2])
end
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'booked') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'booked', '', 'booked_queue', '', 'booked_until', '0')
  end
end
return 'ok'
"#;

/// The entry leaves the queue unconnected (abandoned, max wait); never a callback. Repeating it with the
/// same reason changes nothing and answers 'ok' (a hangup seen twice across a reconnect).
/// KEYS: entry, waiting, open, timers, events.
/// ARGV: id, reason, now, offer timer, max-wait timer, retention (s).
/// Returns 'ok' followed by the agents still ringing for it.
const CLOSE: &str = r#"
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
local out = {'ok'}
for _, a in ipairs(split(e[2])) do out[#out + 1] = a end
return out
"#;

/// Helpers for the callback scripts, which share one key layout.
/// KEYS: entry, waiting, open, timers, events, callback stats, the number's dedup key, then
/// each script's own. ARGV: id, now, retention (s), then each script's own.
const CALLBACK: &str = r#"
local id, now, retention = ARGV[1], ARGV[2], ARGV[3]
local f = {'status', 'kind', 'queue', 'line', 'position', 'number', 'offered_to', 'held_off',
  'declined', 'requested_at', 'expires_at', 'dialing_agent', 'dialing_since', 'attempts',
  'connected_at', 'connected_agent'}
local e = {}
local raw = redis.call('HMGET', KEYS[1], unpack(f))
for i, name in ipairs(f) do e[name] = raw[i] or '' end
local function waited() return ms(tonumber(now) - tonumber(e.position)) end
local function event(kind, ...)
  local args = {'XADD', KEYS[5], '*', 'event', kind, 'entry', id, 'queue', e.queue,
    'line', e.line, 'number', e.number, 'at', now, 'waited_ms', waited(), ...}
  if kind == 'accepted' or kind == 'declined_by_all' or kind == 'expired'
    or kind == 'attempt_failed' then
    args[#args + 1] = 'ticket'
    args[#args + 1] = '1'
  end
  redis.call(unpack(args))
end
local function drop_timers()
  redis.call('ZREM', KEYS[4], 'offer:' .. id, 'max_wait:' .. id, 'cb_expiry:' .. id,
    'cb_retry:' .. id)
end
-- The entry leaves the queue for good: it no longer holds its number, counts as in queue,
-- or has timers. Returns the agents still ringing for it.
local function close(reason, ...)
  local ringing = split(e.offered_to)
  redis.call('HSET', KEYS[1], 'status', 'closed', 'offered_to', '', 'closed_reason', reason,
    'closed_at', now)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  drop_timers()
  redis.call('EXPIRE', KEYS[1], retention)
  if redis.call('GET', KEYS[7]) == id then redis.call('DEL', KEYS[7]) end
  if e.kind == 'callback' then redis.call('HINCRBY', KEYS[6], 'in_queue', -1) end
  event(reason, ...)
  local out = {'ok'}
  for _, a in ipairs(ringing) do out[#out + 1] = a end
  return out
end
-- The open callback holding this number's place in the queue, if any.
local function open_callback()
  local existing = redis.call('GET', KEYS[7])
  if existing and redis.call('ZSCORE', KEYS[3], existing) then return existing end
  return nil
end
local function expect_live_waiting()
  if e.kind ~= 'live' then return 'not_live' end
  if e.status ~= 'waiting' and e.status ~= 'offered' then return 'not_open' end
  return nil
end
-- Only a callback no agent has accepted may still be withdrawn.
local function expect_withdrawable()
  if e.kind ~= 'callback' then return 'not_callback' end
  if e.status ~= 'waiting' and e.status ~= 'offered' and e.status ~= 'retry_wait' then
    return 'not_open'
  end
  return nil
end
local function expect_dialing(agent)
  if e.kind ~= 'callback' then return 'not_callback' end
  if e.status ~= 'dialing' then return 'not_dialing' end
  if e.dialing_agent ~= agent then return 'not_offered_to' end
  return nil
end
"#;

/// A waiting (or ringing) caller asks to be called back: the entry becomes a callback with
/// the same id and position, unless the number already has one open in this queue.
/// ARGV (after the common ones): number, expires_at.
/// Returns {'ok'} or {'duplicate', existing id, agents that were ringing…}.
const CALLBACK_REQUEST: &str = r#"
if e.status == '' then return {'unknown'} end
local existing = redis.call('GET', KEYS[7])
if existing == id then return {'ok'} end
local refused = expect_live_waiting()
if refused then return {refused} end
e.number = ARGV[4]
existing = open_callback()
if existing then
  local out = close('duplicate_ignored', 'existing', existing)
  out[1] = existing
  table.insert(out, 1, 'duplicate')
  return out
end
redis.call('HSET', KEYS[1], 'kind', 'callback', 'number', ARGV[4], 'requested_at', now,
  'attempts', '0', 'expires_at', ARGV[5])
redis.call('ZREM', KEYS[4], 'max_wait:' .. id)
redis.call('ZADD', KEYS[4], ARGV[5], 'cb_expiry:' .. id)
redis.call('SET', KEYS[7], id)
redis.call('HINCRBY', KEYS[6], 'total', 1)
redis.call('HINCRBY', KEYS[6], 'in_queue', 1)
event('requested', 'expires_at', ARGV[5])
return {'ok'}
"#;

/// The agent heard the callback and declined it: they are recorded in `declined` and held
/// off it, and it waits again at its position unless every eligible agent has now declined
/// (agents who only missed a ring have not).
/// ARGV (after the common ones): agent, held off until, hold-off timer, eligible agents…
/// Returns {'waiting'|'ringing'|'declined_by_all', agents still ringing…}.
const CALLBACK_DECLINE: &str = r#"
if e.status == '' then return {'unknown'} end
if e.kind ~= 'callback' then return {'not_callback'} end
if e.status ~= 'offered' then return {'not_offered'} end
local agent = ARGV[4]
local rest, found = {}, false
for _, a in ipairs(split(e.offered_to)) do
  if a == agent then found = true else rest[#rest + 1] = a end
end
if not found then return {'not_offered_to'} end
local declined = {}
for _, a in ipairs(split(e.declined)) do declined[a] = true end
if not declined[agent] then
  if e.declined == '' then e.declined = agent else e.declined = e.declined .. ',' .. agent end
  declined[agent] = true
end
e.offered_to = table.concat(rest, ',')
redis.call('HSET', KEYS[1], 'offered_to', e.offered_to, 'declined', e.declined)
event('declined', 'agent', agent)
local all = #ARGV >= 7
for i = 7, #ARGV do if not declined[ARGV[i]] then all = false end end
if all then
  local out = close('declined_by_all', 'agent', agent)
  out[1] = 'declined_by_all'
  return out
end
hold_off(KEYS[1], KEYS[4], e.held_off, agent, now, ARGV[5], ARGV[6])
if #rest == 0 then
  redis.call('HSET', KEYS[1], 'status', 'waiting')
  redis.call('ZADD', KEYS[2], e.position, id)
  redis.call('ZREM', KEYS[4], 'offer:' .. id)
  return {'waiting'}
end
local out = {'ringing'}
for _, a in ipairs(rest) do out[#out + 1] = a end
return out
"#;

/// The agent pressed 1: the callback is theirs, leaves the waiting set for good and no
/// longer expires. Repeating it for the same agent changes nothing.
/// ARGV (after the common ones): agent. Returns {'ok', other agents of the offer…}.
const CALLBACK_ACCEPT: &str = r#"
if e.status == '' then return {'unknown'} end
if e.kind ~= 'callback' then return {'not_callback'} end
local agent = ARGV[4]
if e.status == 'dialing' and e.dialing_agent == agent then return {'ok'} end
if e.status ~= 'offered' then return {'not_offered'} end
local others, found = {}, false
for _, a in ipairs(split(e.offered_to)) do
  if a == agent then found = true else others[#others + 1] = a end
end
if not found then return {'not_offered_to'} end
local attempts = tonumber(e.attempts ~= '' and e.attempts or '0') + 1
redis.call('HSET', KEYS[1], 'status', 'dialing', 'offered_to', '', 'dialing_agent', agent,
  'dialing_since', now, 'attempts', attempts)
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[4], 'offer:' .. id, 'cb_expiry:' .. id)
event('accepted', 'agent', agent, 'attempt', attempts,
  'request_age_ms', ms(tonumber(now) - tonumber(e.requested_at)))
local out = {'ok'}
for _, a in ipairs(others) do out[#out + 1] = a end
return out
"#;

/// The customer leg is being dialed. ARGV (after the common ones): agent.
const CALLBACK_DIALING: &str = r#"
if e.status == '' then return 'unknown' end
local refused = expect_dialing(ARGV[4])
if refused then return refused end
event('dialing_customer', 'agent', ARGV[4], 'attempt', e.attempts)
return 'ok'
"#;

/// The customer answered: the callback is connected to its agent and leaves the queue.
/// Repeating it for the same agent changes nothing. ARGV (after the common ones): agent.
const CALLBACK_ANSWERED: &str = r#"
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
local dialed = ms(tonumber(now) - tonumber(e.dialing_since))
event('customer_answered', 'agent', agent, 'attempt', e.attempts,
  'callback_wait_ms', ms(wait), 'dial_ms', dialed)
event('connected', 'agent', agent, 'kind', 'callback', 'rang_ms', dialed)
return 'ok'
"#;

/// The customer leg failed: the callback waits for its retry time, or is closed.
/// ARGV (after the common ones): agent, cause, retry time ('' for none).
const CALLBACK_ATTEMPT_FAILED: &str = r#"
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
redis.call('ZADD', KEYS[4], ARGV[6], 'cb_retry:' .. id)
event('attempt_failed', 'agent', agent, 'cause', ARGV[5], 'attempt', e.attempts,
  'retry', '1', 'retry_at', ARGV[6])
return 'retry'
"#;

/// A failed callback's retry time came: it waits again at its position until its original
/// expiry, or expires now when that has passed.
const CALLBACK_RETRY_DUE: &str = r#"
if e.status ~= 'retry_wait' or e.kind ~= 'callback' then return 'not_retry_wait' end
if tonumber(now) >= tonumber(e.expires_at) then
  close('expired')
  return 'expired'
end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'retry_at', '')
redis.call('ZADD', KEYS[2], e.position, id)
redis.call('ZREM', KEYS[4], 'cb_retry:' .. id)
redis.call('ZADD', KEYS[4], e.expires_at, 'cb_expiry:' .. id)
return 'waiting'
"#;

/// A callback not yet accepted leaves the queue (expired, canceled).
/// ARGV (after the common ones): reason. Returns {'ok', agents that were ringing…}.
const CALLBACK_CLOSE: &str = r#"
if e.status == '' then return {'unknown'} end
local refused = expect_withdrawable()
if refused then return {refused} end
return close(ARGV[4])
"#;

/// A caller calling again while their number has a callback pending keeps it: their new
/// live entry leaves the queue (`callback_kept`, naming the callback kept) and the callback
/// keeps its place. Runs on the live entry; KEYS[7] is the caller's number's.
/// ARGV (after the common ones): number, how it was kept.
/// Returns {'ok', agents that were ringing for the live entry…}.
const CALLBACK_KEPT: &str = r#"
if e.status == '' then return {'unknown'} end
local refused = expect_live_waiting()
if refused then return {refused} end
local existing = open_callback()
if not existing then return {'no_callback'} end
e.number = ARGV[4]
return close('callback_kept', 'existing', existing, 'choice', ARGV[5])
"#;

/// A caller calling again cancels their pending callback to wait on the line: the callback
/// is closed (`callback_canceled_by_caller`, naming the live entry) and the live entry takes
/// the earlier of the two places, both in one step, so no instant has the caller neither
/// queued nor called back. Refused (`dialing`) once an agent accepted the callback: its
/// customer is being called already. Runs on the callback; KEYS[8] is the live entry.
/// ARGV (after the common ones): the live entry's id.
/// Returns {'ok', agents that were ringing for the callback…}.
const CALLBACK_CANCELED_BY_CALLER: &str = r#"
if e.status == '' then return {'unknown'} end
if e.kind == 'callback' and e.status == 'dialing' then return {'dialing'} end
local refused = expect_withdrawable()
if refused then return {refused} end
local live = redis.call('HMGET', KEYS[8], 'kind', 'status', 'position')
if live[1] ~= 'live' or (live[2] ~= 'waiting' and live[2] ~= 'offered') then
  return {'caller_gone'}
end
local out = close('callback_canceled_by_caller', 'live_entry', ARGV[4])
local position = ms(math.min(tonumber(live[3]), tonumber(e.position)))
redis.call('HSET', KEYS[8], 'position', position)
redis.call('ZADD', KEYS[3], position, ARGV[4])
-- A ringing entry goes back to the waiting set at its (new) position if its agents miss.
if live[2] == 'waiting' then redis.call('ZADD', KEYS[2], position, ARGV[4]) end
return out
"#;

/// Completion of a connected callback's conversation. ARGV (after the common ones): agent.
const CALLBACK_COMPLETED: &str = r#"
if e.status == '' then return 'unknown' end
if e.kind ~= 'callback' then return 'not_callback' end
if e.status ~= 'connected' or e.connected_agent ~= ARGV[4] then return 'not_connected' end
event('completed', 'agent', ARGV[4], 'talk_ms', ms(tonumber(now) - tonumber(e.connected_at)))
return 'ok'
"#;

/// The agent answered the offer of a callback and now hears whom they would call: the
/// offer's timeout moves to the end of that decision, so it neither returns the callback to
/// the queue meanwhile nor is lost if this daemon dies.
/// ARGV (after the common ones): agent, new timeout.
const CALLBACK_OFFER_ANSWERED: &str = r#"
if e.status == '' then return 'unknown' end
if e.kind ~= 'callback' then return 'not_callback' end
if e.status ~= 'offered' then return 'not_offered' end
local found = false
for _, a in ipairs(split(e.offered_to)) do if a == ARGV[4] then found = true end end
if not found then return 'not_offered_to' end
redis.call('ZADD', KEYS[4], ARGV[5], 'offer:' .. id)
return 'ok'
"#;

/// Extends an agent's booking for an entry while it still names that entry.
/// KEYS: agent. ARGV: entry, booked-until.
const EXTEND_BOOKING: &str = r#"
if redis.call('HGET', KEYS[1], 'booked') ~= ARGV[1] then return 'not_booked' end
redis.call('HSET', KEYS[1], 'booked_until', ARGV[2])
return 'ok'
"#;

/// An agent a callback no longer needs: their booking for it ends, and an agent it put on
/// the call is available again.
/// KEYS: agent, agent events. ARGV: entry, now, queue.
const AGENT_RELEASED: &str = r#"
local a = redis.call('HMGET', KEYS[1], 'id', 'state', 'booked')
if not a[1] then return 'unknown' end
if a[3] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'booked', '', 'booked_queue', '', 'booked_until', '0')
end
if a[2] == 'on_call' then
  redis.call('HSET', KEYS[1], 'state', 'available', 'idle_since', ARGV[2])
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', 'on_call',
    'to', 'available', 'source', 'callback', 'queue', ARGV[3], 'at', ARGV[2])
end
return 'ok'
"#;

/// KEYS: agent, agent events. ARGV: to, now, source, states allowed to move to `to`…
/// Returns {outcome, previous state}.
const SET_AGENT_STATE: &str = r#"
local a = redis.call('HMGET', KEYS[1], 'id', 'state')
if not a[1] then return {'unknown', ''} end
if a[2] == ARGV[1] then return {'same', a[2]} end
local allowed = false
for i = 4, #ARGV do if ARGV[i] == a[2] then allowed = true end end
if not allowed then return {'refused', a[2]} end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if ARGV[1] == 'available' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[2]) end
redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
  'to', ARGV[1], 'source', ARGV[3], 'at', ARGV[2])
return {'ok', a[2]}
"#;

/// Reads the first entries of one of a queue's sorted sets of entry ids (waiting, open),
/// in order, in one round trip. The entry keys are built from a prefix that carries the
/// queue's hash tag, so they share its slot.
/// KEYS: the set. ARGV: entry key prefix, index of the last entry (-1: all).
/// Returns one HGETALL reply per entry.
const ENTRIES_IN: &str = r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, ARGV[2])
local out = {}
for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[1] .. id) end
return out
"#;

/// The agents free to be offered an entry now: under load most are busy, so the reply
/// (what the daemon must parse) stays small. KEYS: agent hashes. ARGV: now.
/// Returns one HGETALL reply per free agent.
const FREE_AGENTS: &str = r#"
local now = tonumber(ARGV[1])
local out = {}
for _, key in ipairs(KEYS) do
  if is_free(key, now) then out[#out + 1] = redis.call('HGETALL', key) end
end
return out
"#;

/// Leases due timers to one daemon: each is pushed to the lease's end, so it comes due
/// again for anyone if its owner dies before completing it.
/// KEYS: timers, leases. ARGV: now, lease end, owner, limit.
const CLAIM_TIMERS: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], m)
  redis.call('HSET', KEYS[2], m, ARGV[3])
end
return due
"#;

/// Removes a timer only while the caller still holds its lease.
/// KEYS: timers, leases. ARGV: timer, owner.
const COMPLETE_TIMER: &str = r#"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"#;

pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) book_agents: Script,
    pub(crate) release_agents: Script,
    pub(crate) claim_entry: Script,
    pub(crate) withdraw_offer: Script,
    pub(crate) offer_failed: Script,
    pub(crate) agent_missed: Script,
    pub(crate) connect: Script,
    pub(crate) bridge_failed: Script,
    pub(crate) agent_answered: Script,
    pub(crate) close: Script,
    pub(crate) set_agent_state: Script,
    pub(crate) entries_in: Script,
    pub(crate) free_agents: Script,
    pub(crate) claim_timers: Script,
    pub(crate) complete_timer: Script,
    pub(crate) callback_request: Script,
    pub(crate) callback_decline: Script,
    pub(crate) callback_accept: Script,
    pub(crate) callback_dialing: Script,
    pub(crate) callback_answered: Script,
    pub(crate) callback_attempt_failed: Script,
    pub(crate) callback_retry_due: Script,
    pub(crate) callback_close: Script,
    pub(crate) callback_kept: Script,
    pub(crate) callback_canceled_by_caller: Script,
    pub(crate) callback_completed: Script,
    pub(crate) agent_released: Script,
    pub(crate) callback_offer_answered: Script,
    pub(crate) extend_booking: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_split = |body: &str| Script::new(&format!("{SPLIT}{body}"));
        let with_free = |body: &str| Script::new(&format!("{FREE}{body}"));
        let callback = |body: &str| Script::new(&format!("{SPLIT}{CALLBACK}{body}"));
        Self {
            enqueue: Script::new(ENQUEUE),
            book_agents: with_free(BOOK_AGENTS),
            release_agents: Script::new(RELEASE_AGENTS),
            claim_entry: with_split(CLAIM_ENTRY),
            withdraw_offer: Script::new(WITHDRAW_OFFER),
            offer_failed: with_split(OFFER_FAILED),
            agent_missed: Script::new(AGENT_MISSED),
            connect: with_split(CONNECT),
            bridge_failed: Script::new(BRIDGE_FAILED),
            agent_answered: Script::new(AGENT_ANSWERED),
            close: with_split(CLOSE),
            set_agent_state: Script::new(SET_AGENT_STATE),
            entries_in: Script::new(ENTRIES_IN),
            free_agents: with_free(FREE_AGENTS),
            claim_timers: Script::new(CLAIM_TIMERS),
            complete_timer: Script::new(COMPLETE_TIMER),
            callback_request: callback(CALLBACK_REQUEST),
            callback_decline: callback(CALLBACK_DECLINE),
            callback_accept: callback(CALLBACK_ACCEPT),
            callback_dialing: callback(CALLBACK_DIALING),
            callback_answered: callback(CALLBACK_ANSWERED),
            callback_attempt_failed: callback(CALLBACK_ATTEMPT_FAILED),
            callback_retry_due: callback(CALLBACK_RETRY_DUE),
            callback_close: callback(CALLBACK_CLOSE),
            callback_kept: callback(CALLBACK_KEPT),
            callback_canceled_by_caller: callback(CALLBACK_CANCELED_BY_CALLER),
            callback_completed: callback(CALLBACK_COMPLETED),
            agent_released: Script::new(AGENT_RELEASED),
            callback_offer_answered: callback(CALLBACK_OFFER_ANSWERED),
            extend_booking: Script::new(EXTEND_BOOKING),
        }
    }
}
