//! Why a segment or EIP operation was refused; [`From`] turns each into the one `ApiError`
//! (status and code). The messages name segments, addresses and tenants' own ids only.

use crate::db::StoreError;
use crate::http::error::ApiError;
use crate::network::store::eips::FullSegment;
use crate::network::validate::{Clash, Invalid};
use plinth_common::instance::InstanceState;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A field of the request is wrong; the message names what to change.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("segment {0} does not exist")]
    SegmentNotFound(String),
    /// The segment cannot sit beside another (name, overlap, one per family on a network).
    #[error("segment {cidr}: {clash}")]
    Clash { cidr: String, clash: Clash },
    #[error("the new gateway is allocated as EIP {0}; release it first")]
    GatewayAllocated(String),
    /// The first few EIPs are named (`eips`, with the instance each is bound to), and how
    /// many there are in all.
    #[error("segment {id} has {}", allocated_list(.eips, *.allocated))]
    SegmentInUse {
        id: String,
        eips: Vec<String>,
        allocated: u64,
    },
    #[error("segment {0} is disabled: it hands out no new addresses")]
    SegmentDisabled(String),
    #[error("no available IPv{0} segment may be used by this tenant")]
    NoSegment(u8),
    #[error("no free address: segment {} is full", full_list(.0))]
    SegmentFull(Vec<FullSegment>),
    /// `holder`: the EIP that has the address, where the caller may see it.
    #[error("{address} is already allocated{}", match .holder {
        Some(eip) => format!(" as EIP {eip}"),
        None => ", to another tenant".to_string(),
    })]
    AddressTaken {
        address: String,
        holder: Option<String>,
    },
    #[error("eip {0} does not exist")]
    EipNotFound(String),
    #[error("EIP {id} is bound to instance {instance_id}; unbind it first")]
    EipBound { id: String, instance_id: String },
    /// The instance's host does not reach the EIP's segment.
    #[error("host {host} has no NIC {nic}, which segment {segment} is reached through")]
    NicUnavailable {
        host: String,
        nic: String,
        segment: String,
    },
    /// A job is moving the instance; its NICs change when it is settled.
    #[error("instance {id} is {state}; bind or unbind its EIPs when it is running or stopped")]
    InstanceBusy { id: String, state: InstanceState },
    /// The host's agent did not make the change (its own words are logged, not shown).
    #[error("the host's agent could not {0} the instance's NIC; try again")]
    Agent(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NetworkError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> NetworkError {
        NetworkError::Invalid(Invalid {
            field,
            message: message.into(),
        })
    }
}

/// "1 EIP allocated: eip-a (203.0.113.2); release it before deleting it", naming those shown
/// and counting the rest.
fn allocated_list(eips: &[String], allocated: u64) -> String {
    let (noun, them) = if allocated == 1 {
        ("EIP", "it")
    } else {
        ("EIPs", "them")
    };
    let more = allocated.saturating_sub(eips.len() as u64);
    let named = match (eips, more) {
        ([], _) => String::new(),
        (named, 0) => format!(": {}", named.join(", ")),
        (named, more) => format!(": {} and {more} more", named.join(", ")),
    };
    format!("{allocated} {noun} allocated{named}; release {them} before deleting it")
}

fn full_list(full: &[FullSegment]) -> String {
    full.iter()
        .map(|f| {
            format!(
                "{} ({}, all {} usable addresses allocated)",
                f.id, f.cidr, f.usable
            )
        })
        .collect::<Vec<_>>()
        .join(", segment ")
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::field(e.field, e.message)
    }
}

impl From<NetworkError> for ApiError {
    fn from(err: NetworkError) -> ApiError {
        let message = err.to_string();
        let conflict = |code| ApiError::Conflict {
            code,
            message: message.clone(),
        };
        match err {
            NetworkError::Invalid(e) => e.into(),
            NetworkError::SegmentNotFound(id) => ApiError::not_found("segment", &id),
            NetworkError::Clash { clash, .. } => conflict(match clash {
                Clash::Name { .. } => "segment_name_taken",
                Clash::Overlap { .. } => "segment_overlap",
                Clash::SameNetwork { .. } => "segment_network_taken",
            }),
            NetworkError::GatewayAllocated(_) => conflict("gateway_allocated"),
            NetworkError::SegmentInUse { .. } => conflict("segment_in_use"),
            NetworkError::SegmentDisabled(_) => conflict("segment_disabled"),
            NetworkError::NoSegment(_) => conflict("no_segment"),
            NetworkError::SegmentFull(_) => conflict("segment_full"),
            NetworkError::AddressTaken { .. } => conflict("address_in_use"),
            NetworkError::EipNotFound(id) => ApiError::not_found("eip", &id),
            NetworkError::EipBound { .. } => conflict("eip_bound"),
            NetworkError::NicUnavailable { .. } => conflict("nic_unavailable"),
            NetworkError::InstanceBusy { .. } => conflict("invalid_instance_state"),
            NetworkError::Agent(_) => ApiError::Upstream {
                code: "agent_failed",
                message: err.to_string(),
            },
            NetworkError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let cases = [
            (
                "one EIP",
                NetworkError::SegmentInUse {
                    id: "seg-01".into(),
                    eips: vec!["eip-a (203.0.113.2, bound to instance inst-1)".into()],
                    allocated: 1,
                },
                "segment seg-01 has 1 EIP allocated: eip-a (203.0.113.2, bound to instance \
                 inst-1); release it before deleting it",
            ),
            (
                "two EIPs",
                NetworkError::SegmentInUse {
                    id: "seg-01".into(),
                    eips: vec!["eip-a (203.0.113.2)".into(), "eip-b (203.0.113.3)".into()],
                    allocated: 2,
                },
                "segment seg-01 has 2 EIPs allocated: eip-a (203.0.113.2), eip-b (203.0.113.3); \
                 release them before deleting it",
            ),
            (
                "address held, named",
                NetworkError::AddressTaken {
                    address: "203.0.113.7".into(),
                    holder: Some("eip-a".into()),
                },
                "203.0.113.7 is already allocated as EIP eip-a",
            ),
            (
                "address held by another tenant",
                NetworkError::AddressTaken {
                    address: "203.0.113.7".into(),
                    holder: None,
                },
                "203.0.113.7 is already allocated, to another tenant",
            ),
            (
                "more than shown",
                NetworkError::SegmentInUse {
                    id: "seg-01".into(),
                    eips: vec!["eip-a (203.0.113.2)".into()],
                    allocated: 7,
                },
                "segment seg-01 has 7 EIPs allocated: eip-a (203.0.113.2) and 6 more; release \
                 them before deleting it",
            ),
            (
                "full",
                NetworkError::SegmentFull(vec![
                    FullSegment {
                        id: "seg-01".into(),
                        cidr: "203.0.113.0/30".into(),
                        usable: "1".into(),
                    },
                    FullSegment {
                        id: "seg-02".into(),
                        cidr: "198.51.100.0/30".into(),
                        usable: "1".into(),
                    },
                ]),
                "no free address: segment seg-01 (203.0.113.0/30, all 1 usable addresses allocated), segment seg-02 (198.51.100.0/30, all 1 usable addresses allocated) is full",
            ),
        ];
        for (label, err, want) in cases {
            assert_eq!(err.to_string(), want, "{label}");
        }
    }
}
