//! FreeSWITCH's event socket protocol: wire codec, events, and a supervised inbound client.
//!
//! Nothing here knows about queues or callbacks; it could be its own crate.

mod client;
mod codec;
mod event;
mod frame;
pub mod percent;

pub use client::{
    BackgroundJob, Backoff, Client, ClientConfig, ClientStats, Delivery, Error, EventFormat,
    Execution, Password, Reply, Result,
};
pub use codec::{DecodeError, FrameDecoder, FrameWriter, DEFAULT_MAX_FRAME};
pub use event::{Event, EventError};
pub use frame::{ContentType, Frame, HeaderBlock};
