//! callbackd: a queue-callback ("virtual hold") daemon for FreeSWITCH.
//!
//! # Layout
//!
//! ```text
//!   cli (clap commands, logs)        sim (the FreeSWITCH simulator, for demo and tests)
//!    │    api (HTTP, SSE, /metrics) and webhooks (outbox deliveries) run beside the
//!    │    engine: they read the store and steer through the EngineHandle
//!    ▼
//!   engine ── EngineHandle: commands in, domain events out (the bus, fed from the streams)
//!    │   │
//!    │   └──▶ store ── Redis: one Lua file per transition (store/lua), typed replies, timers,
//!    │                 event streams
//!    ▼
//!   switch ── the Pbx trait: typed operations and outcomes (play, collect, record,
//!    │        originate, bridge…) on opaque CallIds, signals, callbackd's call tags,
//!    │        hangup causes in one table; switch::fake, a PBX in memory for rule tests
//!    ▼
//!   switch::freeswitch ── the Pbx over ESL: dialplan apps, channel variables, the event
//!    │                    subscription and its classification
//!    ▼
//!   esl ───── the event-socket wire codec and the supervised inbound client
//!
//!   queue, callback ── the domain rules without I/O: entries, agents, routing, wait
//!                      estimates, the caller's menu, number entry, repeat callers
//!   config ─────────── the operator's TOML file, validated into the model the others read
//!   values, prompts ── checked values every layer shares; prompt files per language
//!   latency ────────── latencies in fixed buckets, counted by the parts, read by /metrics
//! ```
//!
//! Arrows point down only: the domain (`queue`, `callback`) reads no config file, socket or
//! Redis, so its rules are unit-tested with an injected clock. Where a rule lives:
//! whether a caller hears the callback offer and the wait they are told, `queue::estimate`;
//! who is offered which entry, `queue::routing`; how keyed digits become a number,
//! `callback::number`; what the caller's keys do in the menu, `callback::menu`; when a
//! customer is dialed again, `config::RetryPolicy::next_attempt`; what a hangup cause means,
//! `switch::hangup`.

pub mod api;
pub mod callback;
pub mod cli;
pub mod config;
pub mod engine;
pub mod esl;
pub mod latency;
pub mod prompts;
pub mod queue;
pub mod sim;
pub mod store;
pub mod switch;
pub mod values;
pub mod webhooks;
