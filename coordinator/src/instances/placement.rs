//! Placement: the one place a host is chosen for an instance and its claim taken. A create,
//! a start of an unplaced instance, a manual migration and a drain's move all come here: the
//! scheduler picks over the hosts as the store holds them now, the caller's claim takes the
//! pick in the store, and a host that filled up between the two is left out and another picked.

use crate::db::StoreError;
use crate::instances::store::{ClaimRefused, QuotaExceeded};
use crate::scheduler::{self, Request};
use crate::state::AppState;
use plinth_common::timefmt::now_ms;

/// Hosts tried for one placement when the chosen one fills up meanwhile.
const CLAIM_TRIES: usize = 8;

/// Why no host was claimed. Callers word it for their reader (a tenant's 409, a drain report).
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// No host fits the request; the scheduler's account of why.
    #[error("{0}")]
    NoHost(String),
    /// The host the caller named cannot take it now.
    #[error("host {0} cannot take it now")]
    PinnedFull(String),
    /// Every host tried filled up between the pick and the claim.
    #[error("every host tried filled up meanwhile")]
    AllFull,
    /// The instance is no longer in the state the claim needs.
    #[error("the instance changed meanwhile")]
    Moved,
    /// An EIP the instance was to be created with was taken meanwhile.
    #[error("EIP {0} was bound or released meanwhile")]
    EipTaken(String),
    #[error("{0}")]
    Quota(QuotaExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Chooses a host for `req` (or takes `pinned`) and lets `claim` take it in the store; on a
/// host that filled up meanwhile, chooses again without it. Answers the claimed host.
pub async fn place<F, Fut>(
    st: &AppState,
    mut req: Request,
    pinned: Option<&str>,
    mut claim: F,
) -> Result<String, PlacementError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Result<(), ClaimRefused>, StoreError>>,
{
    for _ in 0..CLAIM_TRIES {
        let host = match pinned {
            Some(host) => host.to_string(),
            None => choose(st, &req)?,
        };
        match claim(host.clone()).await? {
            Ok(()) => return Ok(host),
            Err(ClaimRefused::HostFull) if pinned.is_some() => {
                return Err(PlacementError::PinnedFull(host));
            }
            Err(ClaimRefused::HostFull) => req.exclude.push(host),
            Err(ClaimRefused::Moved) => return Err(PlacementError::Moved),
            Err(ClaimRefused::EipTaken(eip)) => return Err(PlacementError::EipTaken(eip)),
            Err(ClaimRefused::Quota(q)) => return Err(PlacementError::Quota(q)),
        }
    }
    Err(PlacementError::AllFull)
}

/// One placement decision over the hosts as the store holds them now.
fn choose(st: &AppState, req: &Request) -> Result<String, PlacementError> {
    let oc = st.settings.overcommit;
    st.store.with_placement(now_ms(), |hosts| {
        match scheduler::choose(hosts, req, st.settings.policy, oc, &mut rand::thread_rng()) {
            Some(host) => {
                crate::metrics::scheduler_decision(None);
                Ok(host.host_id.clone())
            }
            None => {
                // Only when nothing fits is the slower pass that says why worth its cost.
                let (_, rejected) = scheduler::filter(hosts, req, oc);
                crate::metrics::scheduler_decision(Some(scheduler::main_reason(&rejected)));
                Err(PlacementError::NoHost(scheduler::explain(
                    hosts.len(),
                    &rejected,
                )))
            }
        }
    })
}
