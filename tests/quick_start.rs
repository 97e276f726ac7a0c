//! The README's quick start, on a fresh directory: `init`, then `status`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

#[test]
fn test_readme_main_job_init_then_status_works_in_a_fresh_directory() {
    let Some(cli) = e2e::binary("trader-cli") else {
        panic!("trader-cli is not built; run `cargo test --workspace` (it builds the binaries)");
    };
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new(&cli)
        .arg("init")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let status = Command::new(&cli)
        .arg("status")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.contains("Naked Put - Weekly"), "{out}");
    assert!(out.contains("broker      sim (paper)"), "{out}");
}
