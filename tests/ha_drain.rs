//! A highly available region's drain (issue 20), on its own so that its real libvirtd hosts
//! and QEMU guests do not share the machine with the other HA tests: the lease's holder is
//! killed while it drains, and the other coordinator finishes. PostgreSQL on 127.0.0.151,
//! coordinators on .152-.153, libvirtd hosts on .155-.157.

use plinth_e2e::drain::ha_drain_survives;
use plinth_e2e::ha::{shared_images, start_with};
use std::path::Path;

/// A drain of real libvirtd hosts (the drain test's harness) whose runner, the lease's holder,
/// is killed (SIGKILL) once the first migration is under way, and not restarted: the other
/// coordinator takes the lease and finishes the drain. Every guest runs on exactly one host,
/// each was started migrating once, and the claims add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_whose_runner_is_killed_is_finished_by_another() -> anyhow::Result<()> {
    let shared = |dir: &Path| shared_images(dir, &["--migration-timeout", "45s"]);
    let mut ha = start_with(151, 2, shared).await?;
    let holder = ha.holder(&[0, 1]).await?;
    let api = 1 - holder;
    let kill_holder = |ha: &mut plinth_e2e::ha::Ha| {
        ha.members[holder].daemon.kill();
        Ok(())
    };
    ha_drain_survives(&mut ha, api, 155, &[api], kill_holder).await?;
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}
