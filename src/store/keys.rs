//! The Redis key schema in one place. Every key of a queue carries the queue's name as its
//! cluster hash tag, so each queue's atomic scripts touch one slot; agents share another.

use crate::queue::{AgentId, EntryId, QueueName, WebhookName};
use crate::switch::PhoneNumber;

/// Agents serve several queues, so their keys cannot live in any one queue's slot. `@`
/// never appears in a queue name, so this tag cannot collide with a queue's.
const AGENTS_TAG: &str = "{@agents}";

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn queue_key(&self, queue: &QueueName, rest: &str) -> String {
        format!("{}:{{{queue}}}:{rest}", self.prefix)
    }

    /// Sorted set of waiting entry ids scored by position (arrival, ms).
    pub(crate) fn waiting(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "waiting")
    }

    /// Sorted set of every open entry (waiting or ringing an agent), scored by position:
    /// what a restarted daemon reloads.
    pub(crate) fn open(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "open")
    }

    /// Set once by the daemon that sends a new caller to the queue's no-agent exit, so that
    /// of the daemons that all saw the caller arrive only one does.
    pub(crate) fn overflow(&self, queue: &QueueName, id: &EntryId) -> String {
        self.queue_key(queue, &format!("overflow:{id}"))
    }

    /// Sorted set of the live callers whose media a daemon runs, scored by when its lease
    /// ends; the entry's `media_owner` names the daemon.
    pub(crate) fn media(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "media")
    }

    /// Stream of offers that ended while agents still rang for them (closed, connected to
    /// another agent): every daemon follows it to stop the phones it rings.
    pub(crate) fn withdrawals(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "withdrawn")
    }

    /// Hash of one entry.
    pub(crate) fn entry(&self, queue: &QueueName, id: &EntryId) -> String {
        format!("{}{id}", self.entry_prefix(queue))
    }

    /// What every entry key of a queue starts with: scripts that walk the waiting set build
    /// entry keys from it.
    pub(crate) fn entry_prefix(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "entry:")
    }

    /// The id of the open callback for a number, so one number is never queued twice.
    /// `None` (an entry without a number) names a key that is never set, so a script can
    /// declare a dedup key either way.
    pub(crate) fn callback_number(
        &self,
        queue: &QueueName,
        number: Option<&PhoneNumber>,
    ) -> String {
        let digits = number.map_or("", |n| n.as_str().trim_start_matches('+'));
        self.queue_key(queue, &format!("cbnum:{digits}"))
    }

    /// Hash of the queue's callback counters, kept by the scripts that record the events.
    pub(crate) fn callback_stats(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "cbstats")
    }

    /// The queue's event stream.
    pub(crate) fn events(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "events")
    }

    /// Stream of the queue's callback requests (entry, at): what a callback list walks.
    pub(crate) fn requests(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "requests")
    }

    /// One part of webhook `hook`'s outbox for the queue (see `outbox`): `cursor` (the last
    /// stream id taken), `items` (hash by stream id), `due` (sorted set by next attempt),
    /// `order` (lexical set of `<entry>|<id>`, each callback's items in order), `dead`.
    pub(crate) fn outbox(&self, queue: &QueueName, hook: &WebhookName, part: &str) -> String {
        self.queue_key(queue, &format!("hook:{hook}:{part}"))
    }

    /// Sorted set of the queue's timers by due time (ms), and the hash of who leases them.
    pub(crate) fn timers(&self, queue: &QueueName) -> (String, String) {
        (
            self.queue_key(queue, "timers"),
            self.queue_key(queue, "timer_leases"),
        )
    }

    pub(crate) fn agent(&self, id: &AgentId) -> String {
        format!("{}{id}", self.agent_prefix())
    }

    /// What every agent key starts with.
    pub(crate) fn agent_prefix(&self) -> String {
        format!("{}:{AGENTS_TAG}:agent:", self.prefix)
    }

    /// Set of every registered agent id.
    pub(crate) fn agent_ids(&self) -> String {
        format!("{}:{AGENTS_TAG}:ids", self.prefix)
    }

    /// Stream of `agent_state` events: an agent's state is not any one queue's.
    pub(crate) fn agent_events(&self) -> String {
        format!("{}:{AGENTS_TAG}:events", self.prefix)
    }

    pub(crate) fn agent_timers(&self) -> (String, String) {
        (
            format!("{}:{AGENTS_TAG}:timers", self.prefix),
            format!("{}:{AGENTS_TAG}:timer_leases", self.prefix),
        )
    }
}

/// The part of `key` Redis Cluster hashes to pick a slot, so tests can prove that the
/// keys each script touches share one slot.
#[cfg(test)]
pub(crate) fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_share_the_queue_tag_and_agent_keys_share_theirs() {
        let keys = Keys::new("cbd");
        let q = QueueName::new("support").unwrap();
        let e = EntryId::new("e1").unwrap();
        let (timers, leases) = keys.timers(&q);
        for key in [
            keys.waiting(&q),
            keys.open(&q),
            keys.entry(&q, &e),
            keys.events(&q),
            keys.callback_number(&q, PhoneNumber::new("+4930222").ok().as_ref()),
            keys.callback_stats(&q),
            timers,
            leases,
        ] {
            assert_eq!(hash_tag(&key), "support", "{key}");
            assert!(key.starts_with("cbd:{support}:"), "{key}");
        }
        let a = AgentId::new("alice").unwrap();
        let (timers, leases) = keys.agent_timers();
        for key in [
            keys.agent(&a),
            keys.agent_ids(),
            keys.agent_events(),
            timers,
            leases,
        ] {
            assert_eq!(hash_tag(&key), "@agents", "{key}");
        }
    }
}
