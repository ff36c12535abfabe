//! Every integration test in one binary: one link instead of twenty, and the tests of
//! different areas run side by side instead of one binary after another.
//!
//! `common` starts private Redis servers, `engine` is the rig of simulator, Redis and
//! daemons, and `support` drives the simulator over a real socket.

mod common;
mod engine;
mod support;

mod callback_engine;
mod callback_rules;
mod cli;
mod dialplan;
mod engine_handle;
mod esl_fixtures;
mod esl_props;
mod esl_supervisor;
mod prompts;
mod queue_engine;
mod queue_resilience;
mod sim_apps;
mod sim_cli;
mod sim_flows;
mod sim_scenarios;
mod sim_switch_ops;
mod sim_wire;
mod store_callbacks;
mod store_redis;
