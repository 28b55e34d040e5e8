//! The job lease's fence at the resource: each call a coordinator's job makes carries the
//! epoch of its term of the region's job lease (`x-plinth-epoch`), and the agent refuses one
//! lower than the highest it has seen, so a coordinator that lost the lease (paused past it,
//! cut off from the database) cannot act here after its successor did. The highest epoch is
//! kept on disk first, so a restarted agent still refuses the old term. Calls without an
//! epoch (reads by the API, consoles) are not jobs and pass.

use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug)]
pub struct Fence {
    path: PathBuf,
    highest: Mutex<i64>,
}

impl Fence {
    /// The fence kept in `path` (none seen yet when it is missing or unreadable).
    pub fn load(path: PathBuf) -> Fence {
        let highest = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        Fence {
            path,
            highest: Mutex::new(highest),
        }
    }

    /// Admits a call of the term at `epoch`: answers the highest epoch seen when `epoch` is
    /// lower. A higher one is remembered (on disk before it is admitted).
    pub fn admit(&self, epoch: i64) -> Result<(), i64> {
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        if epoch < *highest {
            return Err(*highest);
        }
        if epoch > *highest {
            let tmp = self.path.with_extension("tmp");
            let saved = std::fs::write(&tmp, format!("{epoch}\n"))
                .and_then(|()| std::fs::rename(&tmp, &self.path));
            if let Err(e) = saved {
                // Still fenced in memory; only a restart would forget it.
                tracing::warn!(path = %self.path.display(), error = %e, "Could not save the job lease's epoch.");
            }
            *highest = epoch;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_epoch_is_refused_also_after_a_restart() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("job-epoch");
        let fence = Fence::load(path.clone());
        assert_eq!(fence.admit(3), Ok(()));
        assert_eq!(fence.admit(3), Ok(()), "the same term again");
        assert_eq!(fence.admit(2), Err(3));
        assert_eq!(fence.admit(5), Ok(()));
        let again = Fence::load(path);
        assert_eq!(again.admit(4), Err(5), "kept on disk");
        assert_eq!(again.admit(5), Ok(()));
        Ok(())
    }
}
