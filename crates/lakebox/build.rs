//! Links the `lakebox` executable as a fixed-address (non-PIE) binary on Linux. A
//! position-independent executable carries a dynamic relocation for every pointer in its
//! read-only data — about 200,000 here, DataFusion's tables of functions and types — which the
//! loader applies at every start, reading the relocation table and dirtying each page it
//! touches: several MiB of resident memory and milliseconds of start-up before `main`. Code is
//! still compiled position-independent, so only this final link changes (no rebuild of the
//! dependencies). See docs/decisions/0009-build-profiles.md.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
