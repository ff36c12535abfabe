//! Durable timers: scheduled in Redis and leased to one daemon at a time, so a timer whose
//! daemon dies comes due again for another.

use std::time::Duration;

use super::{Result, Store, StoreError, Timer, TimerScope};
use crate::queue::Timestamp;

impl Store {
    fn timer_keys(&self, scope: &TimerScope) -> (String, String) {
        match scope {
            TimerScope::Queue(queue) => self.keys.timers(queue),
            TimerScope::Agents => self.keys.agent_timers(),
        }
    }

    /// Set (or move) a durable timer.
    pub async fn schedule(&self, timer: &Timer, due: Timestamp) -> Result<()> {
        let (timers, leases) = self.timer_keys(&timer.scope());
        let member = timer.member();
        redis::pipe()
            .atomic()
            .zadd(&timers, &member, due.as_millis())
            .ignore()
            .hdel(&leases, &member)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Lease up to `limit` timers of `scope` due by `now` to `owner` until `now + lease`.
    /// A timer not completed by then comes due again for any daemon.
    pub async fn claim_due_timers(
        &self,
        scope: &TimerScope,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Timer>> {
        let (timers, leases) = self.timer_keys(scope);
        // A caller's max wait is their media owner's to act on (see the script).
        let (media, max_wait, entries) = match scope {
            TimerScope::Queue(q) => (
                self.keys.media(q),
                Timer::max_wait_start(),
                self.keys.entry_prefix(q),
            ),
            TimerScope::Agents => (timers.clone(), String::new(), String::new()),
        };
        let members: Vec<String> = self
            .scripts
            .claim_timers
            .key(&timers)
            .key(&leases)
            .key(media)
            .arg(now.as_millis())
            .arg(now.plus(lease).as_millis())
            .arg(owner)
            .arg(limit)
            .arg(max_wait)
            .arg(entries)
            .data(&mut self.conn())
            .await?;
        let mut due = Vec::with_capacity(members.len());
        let mut poison = Vec::new();
        for m in members {
            match Timer::from_member(scope, &m) {
                Some(timer) => due.push(timer),
                None => {
                    self.skip_poison(&StoreError::Corrupt {
                        key: timers.clone(),
                        reason: format!("timer {m:?}"),
                    });
                    poison.push(m);
                }
            }
        }
        // Nothing can ever act on it: leased again every lease, it would be said forever.
        if !poison.is_empty() {
            redis::pipe()
                .atomic()
                .zrem(&timers, &poison)
                .ignore()
                .hdel(&leases, &poison)
                .ignore()
                .query_async::<()>(&mut self.conn())
                .await?;
        }
        Ok(due)
    }

    /// Hand back every timer of `scope` leased to `owner`, for a daemon that claims no
    /// more (draining): each comes due at once (`now`) for any daemon, instead of when its
    /// lease runs out. Returns how many there were.
    pub async fn release_timers(
        &self,
        scope: &TimerScope,
        owner: &str,
        now: Timestamp,
    ) -> Result<usize> {
        let (timers, leases) = self.timer_keys(scope);
        self.scripts
            .release_timers
            .key(timers)
            .key(leases)
            .arg(owner)
            .arg(now.as_millis())
            .data(&mut self.conn())
            .await
    }

    /// Drop the leases of `scope` whose timer is gone (removed while a daemon that had
    /// claimed it died); returns how many.
    pub async fn sweep_timer_leases(&self, scope: &TimerScope) -> Result<usize> {
        let (timers, leases) = self.timer_keys(scope);
        self.scripts
            .sweep_leases
            .key(timers)
            .key(leases)
            .data(&mut self.conn())
            .await
    }

    /// Remove a handled timer; `false` when `owner` no longer holds its lease (it expired
    /// and another daemon claimed it).
    pub async fn complete_timer(&self, timer: &Timer, owner: &str) -> Result<bool> {
        let (timers, leases) = self.timer_keys(&timer.scope());
        let done: i64 = self
            .scripts
            .complete_timer
            .key(timers)
            .key(leases)
            .arg(timer.member())
            .arg(owner)
            .data(&mut self.conn())
            .await?;
        Ok(done == 1)
    }
}
