//! A power-status sweep: many BMCs' chassis power, at most `concurrency` BMCs at once, each
//! on its pooled session (so one BMC never sees two of our sessions); and the health sweep:
//! sensors and new event-log entries, the same way.

use super::sel::SelRead;
use super::{Ipmi, IpmiError, Target};
use futures_util::StreamExt;
use plinth_common::api::SelCursor;

/// `(key, power on or the error)` for every target, in completion order.
pub async fn power_sweep<K: Send>(
    ipmi: &Ipmi,
    targets: Vec<(K, Target)>,
    concurrency: usize,
) -> Vec<(K, Result<bool, IpmiError>)> {
    futures_util::stream::iter(targets)
        .map(|(key, t)| async move {
            let on = ipmi
                .run(&t, |s| Box::pin(s.chassis_status()))
                .await
                .map(|s| s.power_on);
            (key, on)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// What a health poll of one BMC found: its sensors and the event log's new entries.
pub type Health = (Vec<plinth_common::api::Sensor>, super::sel::SelRead);

/// Sensors and new SEL entries of every target (after its cursor, at most `max_events`), at
/// most `concurrency` BMCs at once, each on its pooled session.
pub async fn health_sweep<K: Send>(
    ipmi: &Ipmi,
    targets: Vec<(K, Target, Option<SelCursor>)>,
    concurrency: usize,
    max_events: usize,
) -> Vec<(K, Result<Health, IpmiError>)> {
    futures_util::stream::iter(targets)
        .map(|(key, t, after)| async move {
            let health = ipmi
                .run(&t, |s| {
                    Box::pin(async move {
                        let (sensors, names) = s.sensors().await?;
                        let sel = match s.sel_since(after, max_events, &names).await {
                            // A BMC without a SEL has no events, which is no error.
                            Err(IpmiError::Completion { code: 0xc1, .. }) => SelRead::default(),
                            other => other?,
                        };
                        Ok((sensors, sel))
                    })
                })
                .await;
            (key, health)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}
