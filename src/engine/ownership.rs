//! Callers' media under leases: this daemon renews the leases of the callers it plays to,
//! stops playing to those it lost, takes over callers whose lease ran out, and hands its
//! own back when it drains.
//!
//! The lease (see `store::media`) is what keeps "one daemon plays to one caller" true
//! across daemons: a resync or a takeover starts media only for the callers it won.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::Engine;
use crate::queue::{CloseReason, Entry, EntryId, EntryKind, EntryStatus, QueueName, Timestamp};
use crate::store::StoreError;
use crate::switch::{CallId, Pbx};

/// How long a daemon's hold on a caller's media lasts without renewal: after a daemon
/// dies, its callers hear what was playing (hold music goes on) until another takes them
/// over, at most this long plus one renewal period later.
pub(super) const MEDIA_LEASE: Duration = Duration::from_secs(15);
/// How many callers whose lease ran out one pass takes over, per queue.
const TAKEOVER_BATCH: usize = 500;

/// What a round of lease renewals found.
#[derive(Debug, Default)]
pub(super) struct MediaTended {
    /// Callers another daemon took over.
    lost: Vec<EntryId>,
    /// Per queue, waiting callers whose lease ran out.
    orphaned: Vec<(QueueName, Vec<EntryId>)>,
}

impl<P: Pbx> Engine<P> {
    /// The end of a lease taken or renewed now.
    pub(super) fn media_until(&self) -> Timestamp {
        self.clock.now().plus(MEDIA_LEASE)
    }

    /// How often leases are renewed, in real time: three times per lease on the clock.
    pub(super) fn media_renewal(&self) -> Duration {
        (MEDIA_LEASE / 3).div_f64(self.options.time_scale.max(1e-3))
    }

    /// Renew the leases of the callers this daemon plays to, and find the callers whose
    /// lease ran out, in a task (the round trips grow with the callers): its report comes
    /// back to [`Engine::on_media_tended`]. One at a time.
    pub(super) fn tend_media(&mut self) {
        if std::mem::replace(&mut self.tending_media, true) {
            return;
        }
        let callers = self.callers_by_queue();
        let queues: Vec<QueueName> = self.config.queues.iter().map(|q| q.name.clone()).collect();
        let (store, reports) = (self.store.clone(), self.reports_tx.clone());
        let owner = self.options.daemon_id.clone();
        let (now, until) = (self.clock.now(), self.media_until());
        self.tasks.spawn(async move {
            let mut tended = MediaTended::default();
            for (queue, ids) in callers {
                match store.renew_media(&queue, owner.as_str(), until, &ids).await {
                    Ok(lost) => tended.lost.extend(lost),
                    Err(e) => tracing::warn!(%queue, error = %e, "renewing media leases failed"),
                }
            }
            for queue in queues {
                match store.unowned_callers(&queue, now, TAKEOVER_BATCH).await {
                    Ok(ids) if !ids.is_empty() => tended.orphaned.push((queue, ids)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(%queue, error = %e, "reading media leases failed"),
                }
            }
            let _ = reports.send(super::Report::MediaTended(tended));
        });
    }

    /// Let go of the callers another daemon took over, and take over those whose lease
    /// ran out.
    pub(super) async fn on_media_tended(&mut self, tended: MediaTended) -> Result<(), StoreError> {
        self.tending_media = false;
        for id in &tended.lost {
            self.let_go(id);
        }
        let mut orphaned = Vec::new();
        for (queue, ids) in tended.orphaned {
            let ids: Vec<EntryId> = ids.into_iter().filter(|id| !self.plays_to(id)).collect();
            if !ids.is_empty() {
                orphaned.push((queue, ids));
            }
        }
        if orphaned.is_empty() {
            return Ok(());
        }
        // One listing for them all: which of these callers are still on the line.
        let live: HashSet<String> = match self.switch.calls().await {
            Ok(rows) => rows.into_iter().map(|r| r.id.as_str().to_owned()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list channels; callers taken over later");
                return Ok(());
            }
        };
        for (queue, ids) in orphaned {
            let mut here = Vec::new();
            for id in ids {
                let Some(entry) = self.store.entry(&queue, &id).await? else {
                    continue;
                };
                if live.contains(id.as_str()) {
                    here.push(entry);
                } else {
                    self.caller_vanished(&entry).await;
                }
            }
            self.take_over(&queue, here).await?;
        }
        Ok(())
    }

    /// Start media for those of `entries` (waiting live callers of `queue`) whose lease
    /// this daemon wins: its own already, nobody's, or run out.
    pub(super) async fn take_over(
        &mut self,
        queue: &QueueName,
        entries: Vec<Entry>,
    ) -> Result<(), StoreError> {
        let ids: Vec<EntryId> = entries
            .iter()
            .filter(|e| !self.plays_to(&e.id))
            .map(|e| e.id.clone())
            .collect();
        let taken = self
            .store
            .take_media(
                queue,
                self.options.daemon_id.as_str(),
                self.clock.now(),
                self.media_until(),
                &ids,
            )
            .await?;
        let taken: HashSet<&EntryId> = taken.iter().collect();
        for entry in entries.iter().filter(|e| taken.contains(&e.id)) {
            tracing::info!(entry = %entry.id, %queue, "taking over a caller's media");
            self.adopt(entry, false, None);
        }
        Ok(())
    }

    /// Start again the media of `channel`, a caller of this daemon's whose media task
    /// failed, if they still wait and the switch is there (else the resync on reconnect
    /// does).
    pub(super) async fn restart_media(&mut self, channel: &CallId) -> Result<(), StoreError> {
        if !*self.switch_up.borrow() || self.callers.get(channel).is_none_or(|m| m.is_running()) {
            return Ok(());
        }
        let Some(media) = self.callers.remove(channel) else {
            return Ok(());
        };
        let Ok(id) = EntryId::new(channel.as_str()) else {
            return Ok(());
        };
        let Some(entry) = self.store.entry(&media.queue, &id).await? else {
            return Ok(());
        };
        if !matches!(
            entry.status,
            EntryStatus::Waiting | EntryStatus::Offered { .. }
        ) {
            return Ok(());
        }
        tracing::info!(%channel, "a waiting caller's media failed; starting it again");
        let queue = media.queue.clone();
        self.take_over(&queue, vec![entry]).await
    }

    /// Stop playing to every caller and hand their leases back, due at once for the
    /// daemons staying: for a drain. Returns how many callers were handed back.
    pub(super) async fn hand_back_media(&mut self) -> Result<usize, StoreError> {
        let mut handed = 0;
        for (queue, ids) in self.callers_by_queue() {
            // A lease that ended at the epoch has run out for everyone.
            self.store
                .renew_media(
                    &queue,
                    self.options.daemon_id.as_str(),
                    Timestamp::from_millis(0),
                    &ids,
                )
                .await?;
            handed += ids.len();
        }
        // The daemon taking a caller over stops what still plays before its own media.
        for (_, media) in self.callers.drain() {
            media.leave();
        }
        Ok(handed)
    }

    /// A waiting caller the store holds is not on the switch any more: they hung up while
    /// no daemon was listening (or the one that was died).
    pub(super) async fn caller_vanished(&mut self, entry: &Entry) {
        let EntryKind::LiveCaller { channel } = &entry.kind else {
            return;
        };
        if !matches!(
            entry.status,
            EntryStatus::Waiting | EntryStatus::Offered { .. }
        ) {
            return;
        }
        tracing::info!(%channel, queue = %entry.queue, "caller vanished while nobody listened");
        let now = self.clock.now();
        if let Ok(ringing) = self
            .store
            .close(&entry.queue, &entry.id, CloseReason::Abandoned, now)
            .await
        {
            self.stop_ringing(&entry.id, &ringing);
        }
    }

    fn callers_by_queue(&self) -> HashMap<QueueName, Vec<EntryId>> {
        let mut by_queue: HashMap<QueueName, Vec<EntryId>> = HashMap::new();
        for (channel, media) in &self.callers {
            if let Ok(id) = EntryId::new(channel.as_str()) {
                by_queue.entry(media.queue.clone()).or_default().push(id);
            }
        }
        by_queue
    }

    /// Whether this daemon runs the media of the live caller whose entry is `id` (a live
    /// caller's entry is named after their call).
    fn plays_to(&self, id: &EntryId) -> bool {
        CallId::new(id.as_str()).is_ok_and(|c| self.callers.contains_key(&c))
    }

    /// Stop playing to a caller whose media this daemon no longer runs.
    fn let_go(&mut self, id: &EntryId) {
        let Ok(channel) = CallId::new(id.as_str()) else {
            return;
        };
        if let Some(media) = self.callers.remove(&channel) {
            tracing::debug!(%channel, "no longer this daemon's caller");
            media.leave();
        }
    }
}
