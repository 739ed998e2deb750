//! `lakebox-bench`: the load generator and HTTP ceiling server behind `bench/compare.py`.
//!
//! - `load`: runs one workload against one endpoint over keep-alive connections with correctly
//!   SigV4-signed requests, and prints one JSON line: throughput and latency percentiles (HDR
//!   histogram). A run with any error response prints the errors instead and exits non-zero:
//!   a benchmark of failures is not a benchmark.
//! - `ceiling`: a minimal HTTP server answering every request with the same fixed 200, the
//!   upper bound any server can reach with this client on this machine.

mod ceiling;
mod load;
mod workloads;

use clap::{Parser, Subcommand};

// The server's allocator in the load generator too: with glibc's malloc a quarter of the load
// generator's CPU went to malloc and free, taken from the two cores the server shares with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lakebox-bench",
    about = "Load generator and ceiling server for Lakebox benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workload against one endpoint and print a JSON result line.
    Load(load::LoadArgs),
    /// Serve a fixed 200 response on 127.0.0.1 (the ceiling target).
    Ceiling {
        #[arg(long)]
        port: u16,
        /// Body size of the fixed response.
        #[arg(long, default_value_t = 64)]
        body_bytes: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match cli.command {
        Command::Load(args) => rt.block_on(load::run(args)),
        Command::Ceiling { port, body_bytes } => rt.block_on(ceiling::serve(port, body_bytes)),
    }
}
