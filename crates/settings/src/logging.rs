//! Process logging with `tracing`: the console (stderr), and optionally a
//! file that rolls over daily, as text or JSON lines.
//!
//! This is the diagnostic log. The durable record of what the trader did
//! and why is the audit log in the database (see the `store` crate).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::LoggingSettings;

/// Keeps the file writer alive; drop it last (at exit) to flush the file.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber. `component` names the log file
/// (`<directory>/<component>.log.YYYY-MM-DD`). `console_default` is the
/// console's filter when neither RUST_LOG nor the settings say more (the
/// CLI keeps its console quiet; the daemon shows `info`).
///
/// Calling it twice is harmless: the second call keeps the first subscriber.
pub fn init(
    settings: &LoggingSettings,
    component: &str,
    console_default: Option<&str>,
) -> LogGuard {
    let file_filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&settings.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let console_filter = match console_default {
        Some(level) => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        None => file_filter(),
    };
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(console_filter);

    let mut guard = None;
    let file_layer = if settings.file {
        let dir = Path::new(&settings.directory);
        match std::fs::create_dir_all(dir) {
            Ok(()) => {
                let appender = tracing_appender::rolling::daily(dir, format!("{component}.log"));
                let (writer, g) = tracing_appender::non_blocking(appender);
                guard = Some(g);
                let layer = fmt::layer().with_writer(writer).with_ansi(false);
                Some(if settings.json {
                    layer.json().with_filter(file_filter()).boxed()
                } else {
                    layer.with_filter(file_filter()).boxed()
                })
            }
            Err(e) => {
                eprintln!(
                    "warning: cannot create log directory {}: {e}; logging to the console only",
                    dir.display()
                );
                None
            }
        }
    } else {
        None
    };
    // try_init fails only if a subscriber is already set, which is fine.
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(file_layer)
        .try_init();
    LogGuard { _file: guard }
}
