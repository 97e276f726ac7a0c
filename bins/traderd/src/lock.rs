//! One daemon per database: `traderd` holds an exclusive lock on
//! `<database>.lock` for as long as it runs. A second `traderd` on the
//! same database is refused with a message naming the database and the
//! process that holds it. The operating system releases the lock when the
//! holder exits, however it exits (a SIGKILL included), so a stale lock
//! file never blocks a restart.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
    path: PathBuf,
}

impl DaemonLock {
    /// The lock file of the database at `db`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of the database at `db`, or says who holds it.
    pub fn acquire(db: &Path) -> Result<DaemonLock> {
        let path = Self::path_for(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another traderd".to_string()
                } else {
                    format!("another traderd (pid {holder})")
                };
                bail!(
                    "{who} is already running on the database {} (lock file {}); stop it first \
                     (SIGTERM), or give this one another database.url",
                    db.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .with_context(|| format!("writing the lock file {}", path.display()))?;
        Ok(DaemonLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_on_one_database_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("trader.db");
        let first = DaemonLock::acquire(&db)?;
        let second = DaemonLock::acquire(&db);
        let message = format!("{:#}", second.err().context("a second lock was granted")?);
        assert!(message.contains("already running"), "{message}");
        assert!(message.contains("trader.db"), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "names the holder: {message}"
        );
        drop(first);
        // released: a restart takes it again
        let again = DaemonLock::acquire(&db)?;
        assert!(again.path().ends_with("trader.db.lock"));
        Ok(())
    }
}
