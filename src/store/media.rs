//! Who runs a waiting caller's media: one daemon at a time, under a lease it renews, so two
//! daemons never play to one caller and a dead daemon's callers are taken over.
//!
//! Only the owner plays, collects digits and sends a caller elsewhere (max wait). A lease
//! that runs out (its daemon died, drained or lost Redis) lets any daemon take the caller.

use super::{Result, Store};

/// How many leases one renewal script renews.
const RENEWAL_SLICE: usize = 250;
use crate::queue::{Entry, EntryId, QueueName, Timestamp};

impl Store {
    /// [`Store::enqueue`] for a caller on the line whose media `owner` runs from now until
    /// `until`, unless it renews the lease ([`Store::renew_media`]).
    pub async fn enqueue_caller(
        &self,
        entry: &Entry,
        max_wait_due: Option<Timestamp>,
        owner: &str,
        until: Timestamp,
    ) -> Result<()> {
        self.enqueue_with(entry, max_wait_due, Some((owner, until)))
            .await
    }

    /// Renew `owner`'s leases on the media of `callers` (of `queue`) until `until`; a past
    /// `until` hands them back at once. Returns those another daemon took over. Callers
    /// who no longer wait (connected, a callback now, gone) just lose their lease.
    pub async fn renew_media(
        &self,
        queue: &QueueName,
        owner: &str,
        until: Timestamp,
        callers: &[EntryId],
    ) -> Result<Vec<EntryId>> {
        let mut lost = Vec::new();
        // Redis runs nothing else while a script runs: thousands of callers are renewed
        // in slices that each take well under a millisecond.
        for slice in callers.chunks(RENEWAL_SLICE) {
            let mut inv = self.scripts.media_renew.key(self.keys.media(queue));
            inv.arg(self.keys.entry_prefix(queue))
                .arg(owner)
                .arg(until.as_millis());
            for id in slice {
                inv.arg(id.as_str());
            }
            lost.extend(entry_ids(inv.data(&mut self.conn()).await?));
        }
        Ok(lost)
    }

    /// Take the media of those of `callers` that are `owner`'s already, nobody's, or whose
    /// lease ran out before `now`, until `until`. Returns the callers taken.
    pub async fn take_media(
        &self,
        queue: &QueueName,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        callers: &[EntryId],
    ) -> Result<Vec<EntryId>> {
        if callers.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.media_take.key(self.keys.media(queue));
        inv.arg(self.keys.entry_prefix(queue))
            .arg(owner)
            .arg(now.as_millis())
            .arg(until.as_millis());
        for id in callers {
            inv.arg(id.as_str());
        }
        Ok(entry_ids(inv.data(&mut self.conn()).await?))
    }

    /// Up to `limit` waiting callers of `queue` whose media lease ran out before `now`:
    /// their daemon died or drained, and another should take them over. The leases of
    /// callers who stopped waiting are dropped meanwhile.
    pub async fn unowned_callers(
        &self,
        queue: &QueueName,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<EntryId>> {
        let ids = self
            .scripts
            .media_unowned
            .key(self.keys.media(queue))
            .arg(self.keys.entry_prefix(queue))
            .arg(now.as_millis())
            .arg(limit)
            .data(&mut self.conn())
            .await?;
        Ok(entry_ids(ids))
    }
}

/// The ids a script replied with; one that is not an entry id (written by hand) is not ours.
fn entry_ids(reply: Vec<String>) -> Vec<EntryId> {
    reply
        .iter()
        .filter_map(|id| EntryId::new(id).ok())
        .collect()
}
