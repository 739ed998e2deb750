//! Shared vocabulary for every Lakebox crate.
//!
//! What lives here: the per-request context (account, region, request id, principal), the one
//! error type every service returns ([`ServiceError`]), ARN construction, the rules of resource
//! tags, id generation and the clock abstraction that lets tests move time.
//!
//! What does not: anything about wire formats (that is `lakebox-protocol`) or storage
//! (`lakebox-store`). This crate has no heavy dependencies on purpose: everything depends on it.

pub mod arn;
pub mod clock;
pub mod context;
pub mod error;
pub mod fuzz;
pub mod ids;
pub mod javatime;
pub mod net;
pub mod paging;
pub mod stack;
pub mod tags;

pub use arn::Arn;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use context::{DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Principal, RequestContext};
pub use error::ServiceError;
