-- callbackd agent feature code: tells callbackd that the calling agent changed state.
-- Install into FreeSWITCH's scripts directory; dialplan/default/00_callbackd.xml calls it as
--   <action application="lua" data="callbackd_agent.lua away"/>
-- States: available, away, transfers_only, offline. callbackd consumes the CUSTOM event
-- callbackd::agent (headers: agent, action) and records the change.

local valid = { available = true, away = true, transfers_only = true, offline = true }
local action = argv[1]

local function finish(tone)
  if session and session:ready() then
    session:answer()
    session:execute("playback", tone)
    session:hangup("NORMAL_CLEARING")
  end
end

if not valid[action] then
  freeswitch.consoleLog("ERR", "callbackd_agent.lua: unknown state '" .. tostring(action) .. "'\n")
  finish("tone_stream://%(500,500,480,620);loops=2")
  return
end

-- The user directory may name the agent (callbackd_agent=alice); else the extension does.
local agent = nil
if session then
  agent = session:getVariable("callbackd_agent")
  if agent == nil or agent == "" then
    agent = session:getVariable("caller_id_number")
  end
end
if agent == nil or agent == "" then
  freeswitch.consoleLog("ERR", "callbackd_agent.lua: cannot tell which agent is calling\n")
  finish("tone_stream://%(500,500,480,620);loops=2")
  return
end

local event = freeswitch.Event("custom", "callbackd::agent")
event:addHeader("agent", agent)
event:addHeader("action", action)
event:fire()
freeswitch.consoleLog("INFO", "callbackd_agent.lua: " .. agent .. " -> " .. action .. "\n")
finish("tone_stream://%(200,0,800)")
