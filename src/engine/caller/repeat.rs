//! A caller whose number already has a callback pending in this queue, calling again: before
//! the greetings they choose to keep it and hang up, or to cancel it and wait on the line in
//! its place (see [`crate::callback::repeat`] for the question itself).
//!
//! Only a caller fresh on the line is asked, never one re-adopted after a restart or a failed
//! bridge, who has answered already. Whatever goes wrong on the way (the store unreachable,
//! the callback gone meanwhile), the caller stays on the line: they are never hung up on
//! unless a callback is sure to remain.

use super::{CallbackPlan, Media, MenuEnd};
use crate::callback::{RepeatChoice, RepeatMenu, RepeatStep};
use crate::engine::Report;
use crate::queue::{AgentId, EntryId, EntryStatus};
use crate::store::{CallerCancel, KeptBy};
use crate::switch::{Pbx, PhoneNumber, SwitchError};

impl<P: Pbx> Media<P> {
    /// Ask a repeat caller and act on the answer. `BackToQueue` for anyone else, and for a
    /// caller who chose to wait.
    pub(super) async fn repeat_caller(&self) -> Result<MenuEnd, SwitchError> {
        let Some(callback) = &self.task.callback else {
            return Ok(MenuEnd::BackToQueue);
        };
        let Some(number) = &callback.own_number else {
            return Ok(MenuEnd::BackToQueue);
        };
        let pending = match self
            .task
            .store
            .pending_callback(&self.task.queue, number)
            .await
        {
            Ok(Some(pending)) => pending,
            Ok(None) => return Ok(MenuEnd::BackToQueue),
            Err(e) => {
                tracing::warn!(channel = %self.channel(), error = %e,
                    "cannot tell whether a callback is pending; serving a new caller");
                return Ok(MenuEnd::BackToQueue);
            }
        };
        tracing::info!(channel = %self.channel(), number = %number.masked(), callback = %pending.id,
            "a caller with a callback pending calls again");
        // Its customer is being called right now: nothing to ask, their line is needed.
        if matches!(pending.status, EntryStatus::Dialing { .. }) {
            return self.keep(callback, number, KeptBy::BeingDialed).await;
        }
        match self.ask(callback).await? {
            None => {
                self.served_while_asked(&pending.id).await;
                Ok(MenuEnd::HungUp)
            }
            Some(RepeatChoice::Keep) => self.keep(callback, number, KeptBy::Choice).await,
            Some(RepeatChoice::NoChoice) => self.keep(callback, number, KeptBy::NoChoice).await,
            Some(RepeatChoice::Cancel) => self.cancel(callback, number, &pending.id).await,
        }
    }

    /// Put the question until it is answered; `None` when the caller left meanwhile
    /// (hung up, or an agent answered for their new entry).
    async fn ask(&self, callback: &CallbackPlan) -> Result<Option<RepeatChoice>, SwitchError> {
        let (mut menu, mut step) = RepeatMenu::start(&callback.menu);
        loop {
            if self.leaving() {
                return Ok(None);
            }
            step = match step {
                RepeatStep::Chosen(choice) => return Ok(Some(choice)),
                RepeatStep::Ask { prompts, keys } => {
                    let input = self.collect(callback, &prompts, keys).await?;
                    menu.input(input)
                }
            };
        }
    }

    /// The callback stays: the new call leaves the queue (not as abandoned) and ends.
    async fn keep(
        &self,
        callback: &CallbackPlan,
        number: &PhoneNumber,
        how: KeptBy,
    ) -> Result<MenuEnd, SwitchError> {
        let now = self.task.clock.now();
        let kept = self
            .task
            .store
            .callback_kept(&self.task.queue, &self.task.entry, number, how, now)
            .await;
        match kept {
            Ok(ringing) => self.entry_left(self.task.entry.clone(), ringing),
            Err(e) => {
                // Gone meanwhile (served, expired) or not known: hanging up could leave the
                // caller with nothing, so they wait as a new caller.
                tracing::warn!(channel = %self.channel(), error = %e,
                    "cannot keep the pending callback; the caller waits");
                return Ok(MenuEnd::BackToQueue);
            }
        }
        tracing::info!(channel = %self.channel(), number = %number.masked(), ?how, "pending callback kept");
        let closing = match how {
            KeptBy::BeingDialed => callback.prompts.file("callback-in-progress"),
            KeptBy::Choice | KeptBy::NoChoice => callback.confirmation.clone(),
        };
        self.say_goodbye(&closing).await
    }

    /// The callback goes and the caller waits on the line in its place; one an agent has
    /// accepted meanwhile is kept instead.
    async fn cancel(
        &self,
        callback: &CallbackPlan,
        number: &PhoneNumber,
        pending: &EntryId,
    ) -> Result<MenuEnd, SwitchError> {
        let now = self.task.clock.now();
        let canceled = self
            .task
            .store
            .callback_canceled_by_caller(&self.task.queue, pending, &self.task.entry, now)
            .await;
        match canceled {
            Ok(CallerCancel::Canceled { ringing }) => {
                tracing::info!(channel = %self.channel(), number = %number.masked(), callback = %pending,
                    "pending callback canceled; the caller waits in its place");
                self.entry_left(pending.clone(), ringing);
                self.play(&callback.prompts.file("callback-canceled"))
                    .await?;
            }
            Ok(CallerCancel::BeingDialed) => {
                return self.keep(callback, number, KeptBy::BeingDialed).await;
            }
            // Gone meanwhile (served, expired) or not known: the caller waits, as they chose.
            Err(e) => tracing::warn!(channel = %self.channel(), error = %e,
                "cannot cancel the pending callback; the caller waits"),
        }
        Ok(MenuEnd::BackToQueue)
    }

    /// The caller left while being asked. One an agent answered for meanwhile (their new
    /// call was next in line) is being served now: their pending callback would call them
    /// about the same thing again, so it is canceled. One who hung up keeps it.
    async fn served_while_asked(&self, pending: &EntryId) {
        let (store, queue) = (&self.task.store, &self.task.queue);
        let served = matches!(
            store.entry(queue, &self.task.entry).await,
            Ok(Some(e)) if matches!(e.status, EntryStatus::Connected { .. })
        );
        if !served {
            return;
        }
        match store
            .callback_cancel(queue, pending, self.task.clock.now())
            .await
        {
            Ok(ringing) => {
                tracing::info!(channel = %self.channel(), callback = %pending,
                    "a repeat caller was answered live; their pending callback is canceled");
                self.entry_left(pending.clone(), ringing);
            }
            // Accepted meanwhile (being dialed) or gone: nothing to undo.
            Err(e) => tracing::info!(channel = %self.channel(), callback = %pending, error = %e,
                "a repeat caller was answered live; their callback stands"),
        }
    }

    /// Tell the engine that `entry` left the queue: it stops the agent legs still ringing
    /// for it and routes again (the caller's entry may have moved ahead).
    fn entry_left(&self, entry: EntryId, ringing: Vec<AgentId>) {
        // Only a stopped engine drops the receiver, and its tasks end with it.
        let _ = self.task.reports.send(Report::EntryLeft { entry, ringing });
    }
}
