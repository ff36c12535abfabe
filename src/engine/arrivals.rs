//! A caller arriving: overflow when nobody takes queue calls, their entry in the queue, and
//! the media task that plays to them while they wait, with what their line offers.
//!
//! Whether callbacks are open is kept here too, per queue, because it is what each caller's
//! task watches to decide whether to make the offer.

use super::caller::{self, CallbackPlan, CallerTask, MediaPlan};
use super::{Engine, EngineOptions};
use crate::callback::{MenuSettings, NumberRules};
use crate::config::{AgentMode, Config, LineConfig, NoAgentPolicy, QueueConfig};
use crate::prompts::PromptSet;
use crate::queue::{AgentState, Entry, EntryId, EntryKind, QueueName};
use crate::store::StoreError;
use crate::switch::{ParkedCaller, Pbx, VarValue};

impl<P: Pbx> Engine<P> {
    /// Take in a parked caller; while the store cannot, they hear the queue's hold music
    /// and are tried again, for as long as they stay on the line.
    pub(super) async fn park(
        &mut self,
        parked: ParkedCaller,
        attempt: u32,
    ) -> Result<(), StoreError> {
        match self.on_caller_parked(parked.clone()).await {
            Err(StoreError::Redis(e)) => {
                if self.held.insert(parked.channel.clone()) {
                    tracing::warn!(channel = %parked.channel, error = %e,
                        "the store is unreachable: the caller hears hold music until it is back");
                    self.hold_while_store_is_away(&parked);
                }
                let again = super::Report::ParkAgain {
                    parked,
                    attempt: attempt + 1,
                };
                self.retry_later(attempt, again);
                Ok(())
            }
            Ok(()) => {
                self.held.remove(&parked.channel);
                Ok(())
            }
            Err(e) => {
                self.held.remove(&parked.channel);
                Err(e)
            }
        }
    }

    /// Hold music for a caller the store has not taken in, so that nobody waits in silence.
    fn hold_while_store_is_away(&mut self, parked: &ParkedCaller) {
        let music = QueueName::new(&parked.queue)
            .ok()
            .and_then(|q| self.plans.get(&q))
            .map(|plan| plan.hold_music.clone());
        let Some(music) = music else {
            return;
        };
        let (switch, channel) = (self.switch.clone(), parked.channel.clone());
        self.tasks.spawn(async move {
            let _ = switch.play(&channel, &music).await;
        });
    }

    pub(super) async fn on_caller_parked(
        &mut self,
        parked: ParkedCaller,
    ) -> Result<(), StoreError> {
        let (Ok(queue), Ok(line)) = (
            QueueName::new(&parked.queue),
            crate::queue::LineName::new(&parked.line),
        ) else {
            tracing::warn!(channel = %parked.channel, queue = %parked.queue, line = %parked.line,
                "parked call names an invalid queue or line; ignoring it");
            return Ok(());
        };
        let Some(queue_config) = self.config.queue(&queue).cloned() else {
            tracing::warn!(channel = %parked.channel, %queue, "parked call names an unknown queue");
            return Ok(());
        };
        if self.callers.contains_key(&parked.channel) {
            return Ok(());
        }
        if self.is_draining() {
            // The daemons staying take them, or this one's successor when it starts.
            tracing::info!(channel = %parked.channel, %queue, "draining: leaving a new caller");
            return Ok(());
        }
        let Ok(id) = EntryId::new(parked.channel.as_str()) else {
            return Ok(());
        };
        let mut entry = Entry::live_caller(
            queue.clone(),
            line,
            parked.channel.clone(),
            parked
                .caller_id_number
                .as_deref()
                .and_then(|n| VarValue::new(n).ok()),
            self.clock.as_ref(),
        );
        entry.id = id;
        if let Some(arrived) = parked.arrived {
            entry.position = arrived;
        }
        if let NoAgentPolicy::Transfer { extension, context } = &queue_config.no_agent {
            let logged_in = self
                .agents()
                .await?
                .iter()
                .any(|a| a.takes_calls_for(&queue));
            // A caller back from a bridge is not new: the rule is for arrivals only.
            if !logged_in && self.store.entry(&queue, &entry.id).await?.is_none() {
                // Every daemon on the switch saw them arrive: one sends them on.
                let owner = self.options.daemon_id.as_str();
                if self.store.claim_overflow(&queue, &entry.id, owner).await? {
                    tracing::info!(channel = %parked.channel, %queue, %extension, "no agent logged in: overflow");
                    self.spawn_transfer(parked.channel.clone(), extension.clone(), context.clone());
                }
                return Ok(());
            }
        }
        let max_wait_due = queue_config
            .max_wait
            .as_ref()
            .map(|m| entry.position.plus(m.after));
        let (owner, until) = (self.options.daemon_id.as_str(), self.media_until());
        match self
            .store
            .enqueue_caller(&entry, max_wait_due, owner, until)
            .await
        {
            Ok(()) => {}
            // Known already: back from a bridge, or enqueued by another daemon on the same
            // switch that won the race for this caller; or a caller who asked to be called
            // back and whose goodbye was cut off (a daemon died, the switch was away).
            Err(StoreError::EntryExists(_)) => {
                let known = self.store.entry(&queue, &entry.id).await?;
                if known.is_some_and(|e| matches!(e.kind, EntryKind::Callback(_))) {
                    tracing::info!(channel = %parked.channel, %queue,
                        "a caller whose callback is recorded is still on the line; hanging up");
                    self.kill(parked.channel);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        tracing::info!(channel = %parked.channel, %queue, "caller entered the queue");
        self.adopt(&entry, true, parked.sip_from_user.as_deref());
        self.routing.caller_arrived();
        Ok(())
    }

    /// Start this daemon's media for a waiting caller. `sip_from_user` helps find a
    /// number to call back when the caller ID is not one.
    pub(super) fn adopt(&mut self, entry: &Entry, greet: bool, sip_from_user: Option<&str>) {
        let EntryKind::LiveCaller { channel } = &entry.kind else {
            return;
        };
        let Some(plan) = self.plans.get(&entry.queue).cloned() else {
            return;
        };
        let callback = self.callback_plan(entry, sip_from_user);
        let media = caller::start(
            &mut self.tasks,
            CallerTask {
                switch: self.switch.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                channel: channel.clone(),
                queue: entry.queue.clone(),
                entry: entry.id.clone(),
                plan,
                callback,
                greet,
                interrupt: !greet || self.held.remove(channel),
                reports: self.reports_tx.clone(),
            },
        );
        self.callers.insert(channel.clone(), media);
    }

    /// What this caller's line offers them for callbacks, if it offers any: only a line with
    /// callbacks enabled and an outbound caller ID to call from. Whether the offer is made
    /// is decided while they wait (see [`CallbackPlan::open`]).
    fn callback_plan(&self, entry: &Entry, sip_from_user: Option<&str>) -> Option<CallbackPlan> {
        let line = self.callback_line(&entry.line)?;
        let settings = &line.callback;
        let rules = number_rules(line)?;
        let prompts = self.prompts_for(line);
        let own_number =
            rules.caller_number(entry.caller_id.as_ref().map(|c| c.as_str()), sip_from_user);
        Some(CallbackPlan {
            open: self.callbacks_open.get(&entry.queue)?.subscribe(),
            offer_when_wait_over: settings.offer_when_wait_over,
            offer_greeting: (!settings.ivr_in_front).then(|| {
                settings
                    .offer_greeting
                    .clone()
                    .unwrap_or_else(|| prompts.file("callback-offer"))
            }),
            menu: MenuSettings {
                record_name: settings.record_name,
                menu_tries: settings.menu_tries,
                number_tries: settings.number_tries,
                input_timeout: settings.timings.input_timeout,
                ..MenuSettings::default()
            },
            name_recording: settings.record_name.then(|| {
                self.options
                    .recordings
                    .file(&format!("callbackd-{}.wav", entry.id))
            }),
            rules,
            own_number,
            confirmation: settings
                .confirmation_greeting
                .clone()
                .unwrap_or_else(|| prompts.file("confirmation")),
            expiry: settings.expiry,
            in_console: settings.agent_mode == AgentMode::Console,
            prompts,
        })
    }

    /// Tell each queue's callers whether callbacks are open: some agent serving it takes
    /// queue calls. One small read of the agents' states.
    pub(super) async fn refresh_callbacks_open(&self) -> Result<(), StoreError> {
        if self.callbacks_open.is_empty() {
            return Ok(());
        }
        let states = self.store.agent_states(&self.agent_ids).await?;
        for (queue, open) in &self.callbacks_open {
            let now_open = self
                .config
                .agents
                .iter()
                .zip(&states)
                .any(|(agent, state)| {
                    state.is_some_and(AgentState::takes_queue_calls)
                        && agent.queues.iter().any(|q| &q.queue == queue)
                });
            open.send_if_modified(|was| std::mem::replace(was, now_open) != now_open);
        }
        Ok(())
    }

    /// The line, if it offers callbacks: enabled, with an outbound caller ID to call from.
    fn callback_line(&self, line: &crate::queue::LineName) -> Option<&LineConfig> {
        self.config.line(line).filter(|l| l.offers_callbacks())
    }

    /// A line's prompts: from its own sounds directory or the daemon's; in its language,
    /// else the daemon's default, else English.
    pub(super) fn prompts_for(&self, line: &LineConfig) -> PromptSet {
        PromptSet::choose(
            line.sounds.as_ref().unwrap_or(&self.options.sounds),
            &[line.language.as_str(), &self.options.default_language],
            &self.options.languages,
        )
    }
}

/// The rules a number to call back on `line` must meet, whoever gives it (the caller's
/// phone, an operator's tool); `None`, with a warning, when the line's own are bad: then it
/// offers no callbacks.
pub(super) fn number_rules(line: &LineConfig) -> Option<NumberRules> {
    let settings = &line.callback;
    NumberRules::new(settings.country.as_deref(), settings.dialing_policy.clone())
        .inspect_err(|e| {
            tracing::warn!(line = %line.name, error = %e, "callbacks off: bad number rules");
        })
        .ok()
}

pub(super) fn media_plan(
    config: &Config,
    options: &EngineOptions,
    queue: &QueueConfig,
) -> MediaPlan {
    let language = config
        .lines
        .iter()
        .find(|l| l.queue == queue.name)
        .map(|l| l.language.to_string())
        .unwrap_or_else(|| crate::prompts::FALLBACK_LANGUAGE.to_owned());
    MediaPlan {
        greetings: queue.greetings.clone(),
        hold_music: queue.hold_music.clone(),
        announce_every: queue
            .announce_every
            .map(|every| every.div_f64(options.time_scale.max(1e-3))),
        prompts: PromptSet::choose(
            &options.sounds,
            &[&language, &options.default_language],
            &options.languages,
        ),
    }
}
