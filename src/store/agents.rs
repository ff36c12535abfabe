//! Agents in the store: registration, states, bookings and the reads routing needs.
//! Agents serve several queues, so their keys share a slot of their own.

use std::collections::HashMap;
use std::time::Duration;

use super::replies;
use super::{records, Result, Store, StoreError, Timer};
use crate::config::AgentConfig;
use crate::queue::{
    Agent, AgentId, AgentState, EndedCall, EntryId, QueueError, QueueName, Timestamp,
};

/// Who changed an agent's state, as recorded in `agent_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    Cli,
    Phone,
    Daemon,
    /// The HTTP API (an operator's tool, a CRM, the agent console).
    Api,
}

impl StateSource {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Phone => "phone",
            Self::Daemon => "daemon",
            Self::Api => "api",
        }
    }
}

/// An agent on a call, and the call: its queue and entry, and when the agent answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOnCall {
    pub agent: AgentId,
    pub queue: QueueName,
    pub entry: EntryId,
    pub since: Timestamp,
}

/// One agent state change as `set_agent_state.lua` makes it: from one of `from` to `to`,
/// with a timer scheduled in the same step (`then`), and, when the change is the end of a
/// call (`ending`, its entry), only while the agent is still on that call.
struct StateChange<'a> {
    from: &'a [AgentState],
    to: AgentState,
    source: StateSource,
    then: Option<(Timer, Timestamp)>,
    ending: Option<&'a EntryId>,
}

impl Store {
    /// Write the configured agents: id, name, contact and queues are the config's; a new
    /// agent starts `offline`, a known one keeps its state.
    pub async fn register_agents(&self, agents: &[AgentConfig], now: Timestamp) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for a in agents {
            let key = self.keys.agent(&a.id);
            pipe.hset_multiple(
                &key,
                &[
                    ("id", a.id.to_string()),
                    ("display_name", a.display_name.clone()),
                    ("contact", a.contact.to_string()),
                    ("serves", records::encode_serves(&a.queues)),
                ],
            )
            .ignore()
            .hset_nx(&key, "state", AgentState::Offline.as_str())
            .ignore()
            .hset_nx(&key, "idle_since", now.to_string())
            .ignore()
            .hset_nx(&key, "state_since", now.to_string())
            .ignore()
            .sadd(self.keys.agent_ids(), a.id.as_str())
            .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// Drop the bookings that still name `entry`.
    pub async fn release_agents(&self, entry: &EntryId, agents: &[AgentId]) -> Result<()> {
        if agents.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.release_agents.prepare_invoke();
        for agent in agents {
            inv.key(self.keys.agent(agent));
        }
        inv.arg(entry.as_str());
        let replies::Done = inv.reply(&mut self.conn()).await?;
        Ok(())
    }

    /// `agent` answered for `entry` and is on the call. Other agents of a ring-all offer
    /// stay booked until their legs are gone.
    pub(super) async fn agent_answered(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        let mut answered = self.scripts.agent_answered.prepare_invoke();
        answered
            .key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .arg(entry.as_str())
            .arg(now.as_millis())
            .arg(queue.as_str());
        match answered.reply(&mut self.conn()).await? {
            replies::AgentChanged::Done => Ok(()),
            replies::AgentChanged::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
    }

    /// Free an agent a callback no longer needs (agents' slot): their booking for `entry`
    /// ends, and `on_call` becomes `available`.
    pub(super) async fn agent_released(
        &self,
        agent: &AgentId,
        queue: &QueueName,
        entry: &EntryId,
        now: Timestamp,
    ) -> Result<()> {
        let reply = self
            .scripts
            .agent_released
            .key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .arg(entry.as_str())
            .arg(now.as_millis())
            .arg(queue.as_str())
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::AgentChanged::Done => Ok(()),
            replies::AgentChanged::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
    }

    /// Change an agent's state if the transition is allowed from the state Redis holds now
    /// (event `agent_state`). Returns the previous state; setting the current state again
    /// changes and records nothing.
    pub async fn set_agent_state(
        &self,
        agent: &AgentId,
        to: AgentState,
        now: Timestamp,
        source: StateSource,
    ) -> Result<AgentState> {
        self.set_agent_state_from(agent, &AgentState::allowed_from(to), to, now, source)
            .await
    }

    /// [`Store::set_agent_state`], only from the states in `from` (those the domain does
    /// not allow still refuse): one round trip where reading the state first would be two.
    pub async fn set_agent_state_from(
        &self,
        agent: &AgentId,
        from: &[AgentState],
        to: AgentState,
        now: Timestamp,
        source: StateSource,
    ) -> Result<AgentState> {
        let change = StateChange {
            from,
            to,
            source,
            then: None,
            ending: None,
        };
        self.change_agent_state(agent, change, now).await
    }

    /// An agent's call ended: while they are on that call only (an agent who went away
    /// meanwhile stays away, one put on the next call stays on it, and the second of a
    /// call's two hangups finds nothing to do), they are available, or wrap up with the end
    /// of it scheduled in the same step, so no crash leaves them in `wrap_up` for good.
    /// Returns whether they were on the call.
    pub async fn call_ended(
        &self,
        call: &EndedCall,
        wrap_up: Duration,
        now: Timestamp,
    ) -> Result<bool> {
        let agent = &call.agent;
        let (to, then) = if wrap_up.is_zero() {
            (AgentState::Available, None)
        } else {
            let timer = Timer::WrapUpEnd {
                agent: agent.clone(),
            };
            (AgentState::WrapUp, Some((timer, now.plus(wrap_up))))
        };
        let change = StateChange {
            from: &[AgentState::OnCall],
            to,
            source: StateSource::Daemon,
            then,
            ending: Some(&call.entry),
        };
        match self.change_agent_state(agent, change, now).await {
            Ok(previous) => Ok(previous == AgentState::OnCall),
            Err(StoreError::Rule(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn change_agent_state(
        &self,
        agent: &AgentId,
        change: StateChange<'_>,
        now: Timestamp,
    ) -> Result<AgentState> {
        let StateChange {
            from,
            to,
            source,
            then,
            ending,
        } = change;
        let (timers, leases) = self.keys.agent_timers();
        let mut inv = self.scripts.set_agent_state.prepare_invoke();
        inv.key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .key(timers)
            .key(leases)
            .arg(to.as_str())
            .arg(now.as_millis())
            .arg(source.as_str());
        match then {
            Some((timer, due)) => inv.arg(timer.member()).arg(due.as_millis()),
            None => inv.arg("").arg(0),
        };
        inv.arg(ending.map_or("", EntryId::as_str));
        for from in from.iter().filter(|f| f.can_change_to(to)) {
            inv.arg(from.as_str());
        }
        match inv.reply(&mut self.conn()).await? {
            replies::SetAgentState::Changed(previous) | replies::SetAgentState::Same(previous) => {
                Ok(previous)
            }
            replies::SetAgentState::Refused(from) => Err(QueueError::AgentTransition {
                agent: agent.clone(),
                from,
                to,
            }
            .into()),
            replies::SetAgentState::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
    }

    /// Every registered agent; bookings whose lease ended before `now` read as none.
    pub async fn agents(&self, now: Timestamp) -> Result<Vec<Agent>> {
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.agent_ids())
            .query_async(&mut self.conn())
            .await?;
        ids.sort();
        let ids: Vec<AgentId> = ids
            .iter()
            .filter_map(|id| {
                AgentId::new(id)
                    .map_err(|e| StoreError::Corrupt {
                        key: self.keys.agent_ids(),
                        reason: e.to_string(),
                    })
                    .inspect_err(|e| self.skip_poison(e))
                    .ok()
            })
            .collect();
        self.agents_named(&ids, now).await
    }

    /// Those of the named agents that are free to be offered an entry now (what routing
    /// needs), in one round trip.
    pub async fn free_agents(&self, ids: &[AgentId], now: Timestamp) -> Result<Vec<Agent>> {
        let mut inv = self.scripts.free_agents.prepare_invoke();
        for id in ids {
            inv.key(self.keys.agent(id));
        }
        inv.arg(now.as_millis());
        let replies: Vec<Vec<String>> = inv.data(&mut self.conn()).await?;
        Ok(records::from_hashes(
            replies,
            &self.keys.agent_prefix(),
            |key, fields| records::agent_from(key, fields, now),
            |e| self.skip_poison(e),
        ))
    }

    /// The named agents that are registered, in one round trip: a daemon reads the agents
    /// of its config this way, since it can only ring those.
    pub async fn agents_named(&self, ids: &[AgentId], now: Timestamp) -> Result<Vec<Agent>> {
        // An empty pipeline is refused by the client.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(ids.len());
        let mut pipe = redis::pipe();
        for id in ids {
            let key = self.keys.agent(id);
            pipe.hgetall(&key);
            keys.push(key);
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        Ok(keys
            .iter()
            .zip(&all)
            .filter(|(_, fields)| !fields.is_empty())
            .filter_map(|(key, fields)| {
                records::agent_from(key, fields, now)
                    .inspect_err(|e| self.skip_poison(e))
                    .ok()
            })
            .collect())
    }

    /// The named agents who are on a call, with the call the store put them on: what a
    /// resync checks against the switch's channels. Agents put on a call before calls were
    /// recorded, and unreadable records, are left out.
    pub async fn agents_on_calls(&self, ids: &[AgentId]) -> Result<Vec<AgentOnCall>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.keys.agent(id)).arg(&[
                "state",
                "call_entry",
                "call_queue",
                "call_since",
            ]);
        }
        let rows: Vec<[Option<String>; 4]> = pipe.query_async(&mut self.conn()).await?;
        Ok(ids
            .iter()
            .zip(rows)
            .filter_map(|(id, [state, entry, queue, since])| {
                if state.as_deref() != Some("on_call") {
                    return None;
                }
                let call = AgentOnCall {
                    agent: id.clone(),
                    queue: QueueName::new(queue.as_deref()?).ok()?,
                    entry: EntryId::new(entry.as_deref()?).ok()?,
                    since: Timestamp::from_millis(since?.parse().ok()?),
                };
                Some(call)
            })
            .collect())
    }

    /// The state of each named agent (`None` for one not registered), in one round trip
    /// whose reply stays small: what tells a daemon whether a queue can offer callbacks.
    pub async fn agent_states(&self, ids: &[AgentId]) -> Result<Vec<Option<AgentState>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.keys.agent(id), "state");
        }
        let states: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
        // An unreadable state reads as none: that agent takes no calls until it is set.
        Ok(ids
            .iter()
            .zip(states)
            .map(|(id, state)| {
                let s = state?;
                s.parse::<AgentState>()
                    .map_err(|e| StoreError::Corrupt {
                        key: self.keys.agent(id),
                        reason: e.to_string(),
                    })
                    .inspect_err(|e| self.skip_poison(e))
                    .ok()
            })
            .collect())
    }

    pub async fn agent(&self, id: &AgentId, now: Timestamp) -> Result<Option<Agent>> {
        let key = self.keys.agent(id);
        let fields = self.hash(&key).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        records::agent_from(&key, &fields, now).map(Some)
    }
}
