//! Amazon Data Firehose for Lakebox.

pub mod compress;
mod errors;
pub mod prefix;
