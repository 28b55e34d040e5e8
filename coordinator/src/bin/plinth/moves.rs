//! How one instance's move reads, for a drain and for a manual migration alike: its live line
//! while it transfers, the line logged when its status changes, and the report table.

use crate::format::{elapsed, or_dash, seconds, size};
use crate::table::{Table, clean};
use plinth_common::api::{MigrationProgress, MoveAction, MoveItem, MoveStatus};
use std::time::Duration;

/// `web-1  h-1 → h-2  45%  1.2 GiB of 2.6 GiB  12s`: where a move stands now.
pub fn transfer_line(item: &MoveItem) -> String {
    let done = match (item.status, &item.progress) {
        (MoveStatus::Migrating, Some(p)) if p.data_total_bytes > 0 => format!(
            "{:>3}%  {} of {}",
            percent(p),
            size(p.data_processed_bytes),
            size(p.data_total_bytes)
        ),
        (MoveStatus::Migrating, _) => "starting".to_string(),
        (MoveStatus::Pending, _) if item.attempts > 0 => "waiting to try again".to_string(),
        (MoveStatus::Pending, _) => "waiting".to_string(),
        (status, _) => status.to_string(),
    };
    let time = item
        .progress
        .as_ref()
        .map(|p| format!("  {}", elapsed(Duration::from_millis(p.elapsed_ms))))
        .unwrap_or_default();
    clean(&format!(
        "{}  {} → {}  {done}{time}",
        item.instance_name,
        item.source_host,
        or_dash(item.target_host.as_deref())
    ))
}

/// Of the data to send, how much is sent, in whole percent; never above 100 (libvirt sends
/// pages the guest dirtied again, so the processed bytes may pass the total for a while).
fn percent(p: &MigrationProgress) -> u64 {
    (p.data_processed_bytes.saturating_mul(100) / p.data_total_bytes.max(1)).min(100)
}

/// ` in 12.3 s (libvirt 8123 ms)`: what the move took, as far as it is known.
pub fn timing(item: &MoveItem) -> String {
    let total = item
        .total_ms
        .map(|ms| format!(" in {}", seconds(ms)))
        .unwrap_or_default();
    let libvirt = item
        .libvirt_ms
        .map(|ms| format!(" (libvirt {ms} ms)"))
        .unwrap_or_default();
    format!("{total}{libvirt}")
}

/// The line to log when a move's status (or attempt) differs from `before`; none when
/// nothing changed, or for a move still waiting for its first attempt.
pub fn event(before: Option<&MoveItem>, item: &MoveItem) -> Option<String> {
    let (was, tries) = before.map_or((MoveStatus::Pending, 0), |b| (b.status, b.attempts));
    if (was, tries) == (item.status, item.attempts) {
        return None;
    }
    let name = &item.instance_name;
    let source = &item.source_host;
    let target = or_dash(item.target_host.as_deref());
    let reason = item.reason.as_deref().unwrap_or("no reason given");
    let line = match item.status {
        MoveStatus::Pending if item.attempts == 0 => return None,
        MoveStatus::Pending => format!(
            "{name}: attempt {} to {target} failed: {reason}; it will be tried again",
            item.attempts
        ),
        MoveStatus::Migrating => format!(
            "{name}: migrating {source} → {target} (attempt {})",
            item.attempts
        ),
        MoveStatus::Moved => format!("{name}: moved to {target}{}", timing(item)),
        MoveStatus::Released => {
            format!("{name}: released from {source} (placed anew when next started)")
        }
        MoveStatus::Stayed => format!("{name}: stays on {source} because {reason}"),
    };
    Some(clean(&line))
}

/// Every move with how it ended (or stands), one row each.
pub fn report_table(items: &[MoveItem]) -> String {
    let mut table = Table::new(&[
        "instance", "id", "action", "status", "target", "attempts", "prepare", "took", "libvirt",
        "reason",
    ]);
    for m in items {
        let target = match m.action {
            MoveAction::Migrate => or_dash(m.target_host.as_deref()),
            MoveAction::Release | MoveAction::Stay => "-".to_string(),
        };
        table.row(vec![
            m.instance_name.clone(),
            m.instance_id.clone(),
            m.action.to_string(),
            m.status.to_string(),
            target,
            m.attempts.to_string(),
            m.prepare_ms
                .map_or_else(|| "-".to_string(), |ms| format!("{ms} ms")),
            m.total_ms.map_or_else(|| "-".to_string(), seconds),
            m.libvirt_ms
                .map_or_else(|| "-".to_string(), |ms| format!("{ms} ms")),
            or_dash(m.reason.as_deref()),
        ]);
    }
    table.render()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A move of `name` from h-1 in `status`, with nothing else known.
    pub(crate) fn item(name: &str, action: MoveAction, status: MoveStatus) -> MoveItem {
        MoveItem {
            instance_id: format!("i-{name}"),
            instance_name: name.to_string(),
            action,
            status,
            source_host: "h-1".to_string(),
            target_host: None,
            attempts: 0,
            reason: None,
            started_at: None,
            ended_at: None,
            prepare_ms: None,
            libvirt_ms: None,
            total_ms: None,
            progress: None,
        }
    }

    pub(crate) fn migrating(name: &str, processed: u64, total: u64, ms: u64) -> MoveItem {
        MoveItem {
            target_host: Some("h-2".to_string()),
            attempts: 1,
            progress: Some(MigrationProgress {
                elapsed_ms: ms,
                data_total_bytes: total,
                data_processed_bytes: processed,
                data_remaining_bytes: total.saturating_sub(processed),
            }),
            ..item(name, MoveAction::Migrate, MoveStatus::Migrating)
        }
    }

    pub(crate) fn moved(name: &str) -> MoveItem {
        MoveItem {
            status: MoveStatus::Moved,
            progress: None,
            total_ms: Some(12_345),
            libvirt_ms: Some(8_123),
            prepare_ms: Some(42),
            ..migrating(name, 0, 0, 0)
        }
    }

    #[test]
    fn transfer_lines() {
        const GIB: u64 = 1 << 30;
        let no_progress = MoveItem {
            progress: None,
            ..migrating("web-1", 0, 0, 0)
        };
        let retry = MoveItem {
            attempts: 1,
            ..item("web-1", MoveAction::Migrate, MoveStatus::Pending)
        };
        let cases = [
            (
                "part way",
                migrating("web-1", 1_288_490_189, 2_791_728_742, 12_400),
                "web-1  h-1 → h-2   46%  1.2 GiB of 2.6 GiB  12s",
            ),
            (
                "past the total",
                migrating("web-1", 3 * GIB, 2 * GIB, 65_000),
                "web-1  h-1 → h-2  100%  3.0 GiB of 2.0 GiB  1m05s",
            ),
            (
                "total not known yet",
                migrating("web-1", 0, 0, 900),
                "web-1  h-1 → h-2  starting  0s",
            ),
            (
                "no progress asked yet",
                no_progress,
                "web-1  h-1 → h-2  starting",
            ),
            (
                "waiting",
                item("web-1", MoveAction::Migrate, MoveStatus::Pending),
                "web-1  h-1 → -  waiting",
            ),
            ("retrying", retry, "web-1  h-1 → -  waiting to try again"),
            ("ended", moved("web-1"), "web-1  h-1 → h-2  moved"),
            (
                "control characters",
                migrating("a\u{1b}[2J", 0, 0, 0),
                "a\\u{1b}[2J  h-1 → h-2  starting  0s",
            ),
        ];
        for (label, item, want) in cases {
            assert_eq!(transfer_line(&item), want, "{label}");
        }
    }

    #[test]
    fn events_name_what_changed() {
        let pending = item("web-1", MoveAction::Migrate, MoveStatus::Pending);
        let running = migrating("web-1", 0, 0, 0);
        let failed = MoveItem {
            status: MoveStatus::Pending,
            reason: Some("libvirt: timed out".to_string()),
            ..running.clone()
        };
        let second = MoveItem {
            attempts: 2,
            ..running.clone()
        };
        let stayed = MoveItem {
            reason: Some("it has a vGPU".to_string()),
            ..item("gpu-1", MoveAction::Stay, MoveStatus::Stayed)
        };
        let released = item("db-1", MoveAction::Release, MoveStatus::Released);
        let cases: [(&str, Option<&MoveItem>, &MoveItem, Option<&str>); 9] = [
            ("new and pending", None, &pending, None),
            ("unchanged", Some(&running), &running, None),
            (
                "started",
                Some(&pending),
                &running,
                Some("web-1: migrating h-1 → h-2 (attempt 1)"),
            ),
            (
                "seen migrating first",
                None,
                &running,
                Some("web-1: migrating h-1 → h-2 (attempt 1)"),
            ),
            (
                "attempt failed",
                Some(&running),
                &failed,
                Some("web-1: attempt 1 to h-2 failed: libvirt: timed out; it will be tried again"),
            ),
            (
                "retried between polls",
                Some(&running),
                &second,
                Some("web-1: migrating h-1 → h-2 (attempt 2)"),
            ),
            (
                "moved",
                Some(&running),
                &moved("web-1"),
                Some("web-1: moved to h-2 in 12.3 s (libvirt 8123 ms)"),
            ),
            (
                "released",
                None,
                &released,
                Some("db-1: released from h-1 (placed anew when next started)"),
            ),
            (
                "stayed",
                None,
                &stayed,
                Some("gpu-1: stays on h-1 because it has a vGPU"),
            ),
        ];
        for (label, before, now, want) in cases {
            assert_eq!(event(before, now).as_deref(), want, "{label}");
        }
    }

    #[test]
    fn report_rows_say_how_each_move_ended() {
        let stayed = MoveItem {
            attempts: 3,
            target_host: Some("h-3".to_string()),
            reason: Some("migration timed out after 10m".to_string()),
            ..item("web-2", MoveAction::Migrate, MoveStatus::Stayed)
        };
        let text = report_table(&[
            moved("web-1"),
            stayed,
            item("db-1", MoveAction::Release, MoveStatus::Released),
        ]);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            lines,
            [
                vec![
                    "INSTANCE", "ID", "ACTION", "STATUS", "TARGET", "ATTEMPTS", "PREPARE", "TOOK",
                    "LIBVIRT", "REASON"
                ],
                vec![
                    "web-1", "i-web-1", "migrate", "moved", "h-2", "1", "42 ms", "12.3 s",
                    "8123 ms", "-"
                ],
                vec![
                    "web-2",
                    "i-web-2",
                    "migrate",
                    "stayed",
                    "h-3",
                    "3",
                    "-",
                    "-",
                    "-",
                    "migration timed out after 10m"
                ],
                vec![
                    "db-1", "i-db-1", "release", "released", "-", "0", "-", "-", "-", "-"
                ],
            ]
        );
    }
}
