//! The README's quick start on a fresh directory: the main job `traderd`
//! with the default configuration (here over a shorter window, set through
//! the environment as a user could, so the debug build finishes quickly),
//! then `trader-cli status` reading what it did.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

#[test]
fn test_readme_main_job_trades_then_status_reads_it_in_a_fresh_directory() {
    let traderd = e2e::binary("traderd")
        .expect("traderd is not built; run `cargo test --workspace` (it builds the binaries)");
    let cli = e2e::binary("trader-cli")
        .expect("trader-cli is not built; run `cargo test --workspace` (it builds the binaries)");
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(&traderd)
        .current_dir(dir.path())
        .env("TRADER__BROKER__SIM__REPLAY__FROM", "2020-05-01")
        .env("TRADER__BROKER__SIM__REPLAY__TO", "2020-08-31")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("trades"), "{out}");
    assert!(out.contains("0 violations"), "{out}");
    assert!(dir.path().join("reports/report.html").exists(), "{out}");
    assert!(dir.path().join("data/trader.db").exists());

    let status = Command::new(&cli)
        .arg("status")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(text.contains("Naked Put - Weekly"), "{text}");
    let trades = Command::new(&cli)
        .arg("trades")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(trades.status.success());
    assert!(
        String::from_utf8_lossy(&trades.stdout).contains("T-2020"),
        "{}",
        String::from_utf8_lossy(&trades.stdout)
    );
}
