//! Helpers for the end-to-end tests: where the workspace's binaries are.
#![deny(unsafe_code)]

use std::path::PathBuf;

/// The path of a binary built by this workspace (`target/<profile>/<name>`),
/// found next to the running test executable (`target/<profile>/deps/`).
/// `cargo test --workspace` builds the binaries before it runs any test.
pub fn binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join(name);
    path.exists().then_some(path)
}

pub mod digest;
