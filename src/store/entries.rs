//! Entries in and out of a queue: enqueue, close, and the reads of entries and their places.
//! A queue's keys share one slot, so each change of an entry is one script there.

use super::replies::{self, Refusal, Refused};
use super::scripts::Lua;
use super::{records, Result, Store, StoreError, Timer, CLOSED_RETENTION_SECS};
use crate::queue::{AgentId, CloseReason, Entry, EntryId, QueueError, QueueName, Timestamp};

impl Store {
    /// Put a new entry in its queue (event `entered`), with its max-wait timer when due.
    /// Nobody runs media for it yet: see [`Store::enqueue_caller`] for a caller on the line.
    pub async fn enqueue(&self, entry: &Entry, max_wait_due: Option<Timestamp>) -> Result<()> {
        self.enqueue_with(entry, max_wait_due, None).await
    }

    /// [`Store::enqueue`], with `media` (its owner and lease end) written in the same step.
    pub(super) async fn enqueue_with(
        &self,
        entry: &Entry,
        max_wait_due: Option<Timestamp>,
        media: Option<(&str, Timestamp)>,
    ) -> Result<()> {
        let q = &entry.queue;
        let (timers, _) = self.keys.timers(q);
        let max_wait = max_wait_due.filter(|_| entry.max_wait_applies());
        let mut inv = self.scripts.enqueue.prepare_invoke();
        inv.key(self.keys.entry(q, &entry.id))
            .key(self.keys.waiting(q))
            .key(self.keys.open(q))
            .key(timers)
            .key(self.keys.events(q))
            .key(self.keys.media(q))
            .arg(entry.id.as_str())
            .arg(entry.position.as_millis());
        match max_wait {
            Some(due) => inv
                .arg(self.max_wait_timer(entry).member())
                .arg(due.as_millis()),
            None => inv.arg("").arg(0),
        };
        match media {
            Some((owner, until)) => inv.arg(owner).arg(until.as_millis()),
            None => inv.arg("").arg(0),
        };
        for (field, value) in records::entry_fields(entry) {
            inv.arg(field).arg(value);
        }
        match inv.reply(&mut self.conn()).await? {
            replies::Enqueue::Added => Ok(()),
            replies::Enqueue::Exists => Err(StoreError::EntryExists(entry.id.clone())),
        }
    }

    /// Whether `owner` is the one daemon to send the new caller `id` to `queue`'s no-agent
    /// exit: every daemon on the switch sees them arrive, the first to ask wins.
    pub async fn claim_overflow(
        &self,
        queue: &QueueName,
        id: &EntryId,
        owner: &str,
    ) -> Result<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.overflow(queue, id))
            .arg(owner)
            .arg("NX")
            .arg("EX")
            .arg(CLOSED_RETENTION_SECS)
            .query_async(&mut self.conn())
            .await?;
        Ok(set.is_some())
    }

    fn max_wait_timer(&self, entry: &Entry) -> Timer {
        Timer::MaxWait {
            queue: entry.queue.clone(),
            entry: entry.id.clone(),
        }
    }

    /// Turn a script's refusal about an entry into the rule it broke.
    pub(super) async fn entry_rule(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: Option<&AgentId>,
        refused: Refused,
    ) -> StoreError {
        match self.entry(queue, entry).await {
            Ok(None) => StoreError::UnknownEntry {
                queue: queue.clone(),
                entry: entry.clone(),
            },
            Err(e) => e,
            Ok(Some(_)) => match refused.refusal {
                Refusal::IsCallback => QueueError::CallbackNotCut(entry.clone()).into(),
                Refusal::NotLive => QueueError::NowACallback(entry.clone()).into(),
                _ => Self::callback_rule(queue, entry, agent, refused),
            },
        }
    }

    /// The entry leaves the queue unconnected (event `abandoned` or `max_wait_exit`, with
    /// the wait). A callback is refused with [`QueueError::CallbackNotCut`]: the hangup of
    /// a caller who just asked for one must not cancel it, and its own methods close it.
    /// Returns the agents that were ringing for it: stop their legs. They stay booked until
    /// each leg is gone (the daemon ringing them releases them), so that no daemon rings
    /// a phone that still rings for this entry. Closing again for the same reason changes
    /// and records nothing and returns no agents.
    pub async fn close(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        let ringing = match self
            .leave(&self.scripts.close, queue, entry, reason.as_str(), now)
            .await?
        {
            Ok(ringing) => ringing,
            Err(refused) => return Err(self.entry_rule(queue, entry, None, refused).await),
        };
        Ok(ringing)
    }

    /// Run `close` or `connect`, the scripts that take a live entry out of the queue, with
    /// the layout they share: KEYS entry, waiting, open, timers, events, withdrawals,
    /// callback stats; ARGV id, `how`
    /// (the reason, or the agent who answered), now, the timers it drops, retention.
    pub(super) async fn leave(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        how: &str,
        now: Timestamp,
    ) -> Result<replies::WithAgents> {
        let (timers, _) = self.keys.timers(queue);
        let dropped = |t: Timer| t.member();
        script
            .key(self.keys.entry(queue, entry))
            .key(self.keys.waiting(queue))
            .key(self.keys.open(queue))
            .key(timers)
            .key(self.keys.events(queue))
            .key(self.keys.withdrawals(queue))
            .key(self.keys.callback_stats(queue))
            .arg(entry.as_str())
            .arg(how)
            .arg(now.as_millis())
            .arg(dropped(Timer::OfferTimeout {
                queue: queue.clone(),
                entry: entry.clone(),
            }))
            .arg(dropped(Timer::MaxWait {
                queue: queue.clone(),
                entry: entry.clone(),
            }))
            .arg(CLOSED_RETENTION_SECS)
            .reply(&mut self.conn())
            .await
    }

    /// One entry, whatever its status, while it is retained.
    pub async fn entry(&self, queue: &QueueName, id: &EntryId) -> Result<Option<Entry>> {
        let key = self.keys.entry(queue, id);
        let fields = self.hash(&key).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        records::entry_from(&key, &fields).map(Some)
    }

    /// The first `limit` waiting entries of a queue that routing offers, oldest first:
    /// what it reads. Callbacks waiting in agents' consoles are left out.
    pub async fn waiting_entries(&self, queue: &QueueName, limit: usize) -> Result<Vec<Entry>> {
        self.entries_in(
            queue,
            &self.keys.waiting(queue),
            None,
            limit,
            Filter::Routed,
        )
        .await
    }

    /// The first `limit` callbacks waiting in agents' consoles (of console lines), oldest
    /// first.
    pub async fn console_entries(&self, queue: &QueueName, limit: usize) -> Result<Vec<Entry>> {
        self.entries_in(
            queue,
            &self.keys.waiting(queue),
            None,
            limit,
            Filter::Console,
        )
        .await
    }

    /// How many entries wait in a queue (not counting those ringing an agent).
    pub async fn waiting_count(&self, queue: &QueueName) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg(self.keys.waiting(queue))
            .query_async(&mut self.conn())
            .await?)
    }

    /// Remember the recording of the caller saying their name, for the agent's whisper;
    /// an entry that is gone stays gone ([`StoreError::UnknownEntry`]).
    pub async fn set_caller_name(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        recording: &str,
    ) -> Result<()> {
        let set: i64 = self
            .scripts
            .caller_name
            .key(self.keys.entry(queue, entry))
            .arg(recording)
            .data(&mut self.conn())
            .await?;
        if set == 0 {
            return Err(StoreError::UnknownEntry {
                queue: queue.clone(),
                entry: entry.clone(),
            });
        }
        Ok(())
    }

    /// The recording set with [`Store::set_caller_name`], if any.
    pub async fn caller_name(&self, queue: &QueueName, entry: &EntryId) -> Result<Option<String>> {
        Ok(redis::cmd("HGET")
            .arg(self.keys.entry(queue, entry))
            .arg("name_recording")
            .query_async(&mut self.conn())
            .await?)
    }

    /// 1-based place of a waiting entry among those still waiting in its queue, or `None`
    /// when it is not waiting (ringing, connected, gone).
    pub async fn waiting_position(
        &self,
        queue: &QueueName,
        entry: &EntryId,
    ) -> Result<Option<u64>> {
        let rank: Option<u64> = redis::cmd("ZRANK")
            .arg(self.keys.waiting(queue))
            .arg(entry.as_str())
            .query_async(&mut self.conn())
            .await?;
        Ok(rank.map(|r| r + 1))
    }

    /// Every open entry (waiting or ringing an agent), oldest first: what a restarted daemon
    /// reconciles with the channels FreeSWITCH still has.
    pub async fn open_entries(&self, queue: &QueueName) -> Result<Vec<Entry>> {
        self.entries_in(queue, &self.keys.open(queue), None, usize::MAX, Filter::All)
            .await
    }

    /// The first `limit` open entries, oldest first, and how many there are: a view of a
    /// long queue reads only what it shows.
    pub async fn first_open_entries(
        &self,
        queue: &QueueName,
        limit: usize,
    ) -> Result<(Vec<Entry>, u64)> {
        let open = self.keys.open(queue);
        let count = async {
            let n: u64 = redis::cmd("ZCARD")
                .arg(&open)
                .query_async(&mut self.conn())
                .await?;
            Ok(n)
        };
        tokio::try_join!(
            self.entries_in(queue, &open, None, limit, Filter::All),
            count
        )
    }

    /// The open entries that are not waiting (offered to agents, dialing a customer,
    /// waiting for a retry): few however long the queue, so an audit may read them often.
    pub async fn held_entries(&self, queue: &QueueName) -> Result<Vec<Entry>> {
        let waiting = self.keys.waiting(queue);
        self.entries_in(
            queue,
            &self.keys.open(queue),
            Some(&waiting),
            usize::MAX,
            Filter::All,
        )
        .await
    }

    /// The first `limit` entries of one of a queue's sorted sets of entry ids, less those
    /// in `left_out`, in one round trip.
    async fn entries_in(
        &self,
        queue: &QueueName,
        set: &str,
        left_out: Option<&str>,
        limit: usize,
        filter: Filter,
    ) -> Result<Vec<Entry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = self.keys.entry_prefix(queue);
        let replies = self
            .entry_hashes_of(set, left_out, limit, filter, &prefix)
            .await?;
        Ok(records::from_hashes(
            replies,
            &prefix,
            records::entry_from,
            |e| self.skip_poison(e),
        ))
    }
}

impl Store {
    /// The hashes of the first `limit` entries of `set` that `filter` keeps (see
    /// `entries_in.lua`), in one round trip.
    pub(super) async fn entry_hashes(
        &self,
        queue: &QueueName,
        set: &str,
        limit: usize,
        filter: Filter,
    ) -> Result<Vec<Vec<String>>> {
        let prefix = self.keys.entry_prefix(queue);
        self.entry_hashes_of(set, None, limit, filter, &prefix)
            .await
    }

    async fn entry_hashes_of(
        &self,
        set: &str,
        left_out: Option<&str>,
        limit: usize,
        filter: Filter,
        prefix: &str,
    ) -> Result<Vec<Vec<String>>> {
        let mut invocation = self.scripts.entries_in.key(set);
        if let Some(left_out) = left_out {
            invocation.key(left_out);
        }
        let replies: Vec<Vec<String>> = invocation
            .arg(prefix)
            .arg(isize::try_from(limit.saturating_sub(1)).unwrap_or(-1))
            .arg(filter.as_arg())
            .data(&mut self.conn())
            .await?;
        // An id whose hash expired is a leftover, not an entry.
        Ok(replies
            .into_iter()
            .filter(|flat| !flat.is_empty())
            .collect())
    }
}

/// Which of a set's entries a read returns: callbacks of console lines wait among the
/// others but are taken from the agents' consoles, not routed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Filter {
    All,
    Routed,
    Console,
}

impl Filter {
    fn as_arg(self) -> &'static str {
        match self {
            Self::All => "",
            Self::Routed => "skip",
            Self::Console => "only",
        }
    }
}
