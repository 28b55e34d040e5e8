//! A power-status sweep: many BMCs' chassis power, at most `concurrency` BMCs at once, each
//! on its pooled session (so one BMC never sees two of our sessions).

use super::{Ipmi, IpmiError, Target};
use futures_util::StreamExt;

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
