//! Per-domain statistics for the exporter, from one bulk call (`virConnectGetAllDomainStats`,
//! running and paused domains only). `NOWAIT` makes libvirt skip what would wait for a job a
//! domain holds (a migration, a snapshot) instead of blocking the whole call on it: the
//! libvirt exporters' known fault.

use super::ffi::{self, ParamValue, StatsRecord};
use super::{Libvirt, LibvirtError};
use std::collections::HashMap;
use std::time::Duration;
use virt::connect::Connect;
use virt::sys;

/// What the exporter shows of one domain. A missing number is one the driver did not report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainStats {
    pub uuid: String,
    pub name: String,
    pub cpu_time_ns: Option<u64>,
    /// The memory the guest has now (balloon), in bytes.
    pub memory_bytes: Option<u64>,
    pub vcpus: Option<u64>,
    pub blocks: Vec<BlockStats>,
    pub interfaces: Vec<InterfaceStats>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockStats {
    /// The guest's name for the disk (`vda`).
    pub device: String,
    pub read_bytes: u64,
    pub read_requests: u64,
    pub write_bytes: u64,
    pub write_requests: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterfaceStats {
    /// The host side of the NIC (`vnet3`).
    pub device: String,
    pub receive_bytes: u64,
    pub receive_packets: u64,
    pub transmit_bytes: u64,
    pub transmit_packets: u64,
}

const STATS: u32 = sys::VIR_DOMAIN_STATS_STATE
    | sys::VIR_DOMAIN_STATS_CPU_TOTAL
    | sys::VIR_DOMAIN_STATS_BALLOON
    | sys::VIR_DOMAIN_STATS_VCPU
    | sys::VIR_DOMAIN_STATS_INTERFACE
    | sys::VIR_DOMAIN_STATS_BLOCK;
const FLAGS: u32 =
    sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;

impl Libvirt {
    /// Every active domain's statistics. `held` is dropped when libvirt has answered, which
    /// may be after the deadline: a caller marks a call in flight with it, so that a hung
    /// libvirt gets no second call piled on the first.
    pub async fn domain_stats<H: Send + 'static>(
        &self,
        deadline: Duration,
        held: H,
    ) -> Result<Vec<DomainStats>, LibvirtError> {
        self.call(deadline, move |c| {
            let _held = held;
            let records = ffi::all_domain_stats(c, STATS, FLAGS)?;
            Ok(records
                .iter()
                .map(|r| with_info_fallback(c, interpret(r)))
                .collect())
        })
        .await
    }
}

/// Drivers without bulk CPU and balloon numbers (libvirt's test driver) still answer
/// virDomainGetInfo: fill the three info numbers from it. QEMU always reports `cpu.time` for a
/// running domain, so there this costs nothing.
fn with_info_fallback(conn: &Connect, mut stats: DomainStats) -> DomainStats {
    if stats.cpu_time_ns.is_some() {
        return stats;
    }
    let Ok(info) = conn
        .lookup_domain_by_uuid_string(&stats.uuid)
        .and_then(|dom| dom.info())
    else {
        return stats;
    };
    stats.cpu_time_ns = Some(info.cpu_time);
    stats.memory_bytes = stats
        .memory_bytes
        .or(Some(info.memory.saturating_mul(1024)));
    stats.vcpus = stats.vcpus.or(Some(u64::from(info.nr_virt_cpu)));
    stats
}

/// Reads libvirt's `group.index.field` parameters into a [`DomainStats`].
pub(crate) fn interpret(record: &StatsRecord) -> DomainStats {
    let params: HashMap<&str, &ParamValue> =
        record.params.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let num = |key: &str| params.get(key).and_then(|v| v.as_f64()).map(|v| v as u64);
    let text = |key: &str| params.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let count = |group: &str| num(&format!("{group}.count")).unwrap_or(0).min(4096);
    let blocks = (0..count("block"))
        .map(|i| {
            let field = |f: &str| num(&format!("block.{i}.{f}")).unwrap_or(0);
            BlockStats {
                device: text(&format!("block.{i}.name")).unwrap_or_else(|| format!("block{i}")),
                read_bytes: field("rd.bytes"),
                read_requests: field("rd.reqs"),
                write_bytes: field("wr.bytes"),
                write_requests: field("wr.reqs"),
            }
        })
        .collect();
    let interfaces = (0..count("net"))
        .map(|i| {
            let field = |f: &str| num(&format!("net.{i}.{f}")).unwrap_or(0);
            InterfaceStats {
                device: text(&format!("net.{i}.name")).unwrap_or_else(|| format!("net{i}")),
                receive_bytes: field("rx.bytes"),
                receive_packets: field("rx.pkts"),
                transmit_bytes: field("tx.bytes"),
                transmit_packets: field("tx.pkts"),
            }
        })
        .collect();
    DomainStats {
        uuid: record.uuid.clone(),
        name: record.name.clone(),
        cpu_time_ns: num("cpu.time"),
        memory_bytes: num("balloon.current").map(|kib| kib.saturating_mul(1024)),
        vcpus: num("vcpu.current"),
        blocks,
        interfaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(params: &[(&str, ParamValue)]) -> StatsRecord {
        StatsRecord {
            name: "inst-0a".into(),
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn reads_a_qemu_record() {
        use ParamValue::{Text, UInt};
        let stats = interpret(&record(&[
            ("state.state", ParamValue::Int(1)),
            ("cpu.time", UInt(12_500_000_000)),
            ("balloon.current", UInt(1_048_576)),
            ("vcpu.current", ParamValue::Int(2)),
            ("net.count", UInt(1)),
            ("net.0.name", Text("vnet3".into())),
            ("net.0.rx.bytes", UInt(1000)),
            ("net.0.rx.pkts", UInt(10)),
            ("net.0.tx.bytes", UInt(2000)),
            ("net.0.tx.pkts", UInt(20)),
            ("block.count", UInt(2)),
            ("block.0.name", Text("vda".into())),
            ("block.0.rd.bytes", UInt(4096)),
            ("block.0.rd.reqs", UInt(1)),
            ("block.0.wr.bytes", UInt(8192)),
            ("block.0.wr.reqs", UInt(2)),
            ("block.1.name", Text("sda".into())),
        ]));
        assert_eq!(stats.cpu_time_ns, Some(12_500_000_000));
        assert_eq!(stats.memory_bytes, Some(1 << 30));
        assert_eq!(stats.vcpus, Some(2));
        assert_eq!(
            stats.interfaces,
            vec![InterfaceStats {
                device: "vnet3".into(),
                receive_bytes: 1000,
                receive_packets: 10,
                transmit_bytes: 2000,
                transmit_packets: 20,
            }]
        );
        assert_eq!(stats.blocks.len(), 2);
        assert_eq!(stats.blocks[0].write_bytes, 8192);
        assert_eq!(
            stats.blocks[1],
            BlockStats {
                device: "sda".into(),
                ..BlockStats::default()
            },
            "a disk with no numbers yet (NOWAIT during a job) reads as zero"
        );
    }

    #[test]
    fn a_state_only_record_has_no_numbers() {
        let stats = interpret(&record(&[("state.state", ParamValue::Int(1))]));
        assert_eq!(stats.cpu_time_ns, None);
        assert_eq!(stats.memory_bytes, None);
        assert!(stats.blocks.is_empty() && stats.interfaces.is_empty());
    }

    /// The bulk call against libvirt's test driver (in-process, a real libvirt): it reports
    /// only state, so the info numbers come from the fallback.
    #[tokio::test]
    async fn test_driver_domains_have_info_numbers() -> Result<(), LibvirtError> {
        let lv = Libvirt::new("test:///default");
        let all = lv.domain_stats(Duration::from_secs(10), ()).await?;
        let test = all
            .iter()
            .find(|d| d.name == "test")
            .expect("the test driver runs 'test'");
        assert_eq!(test.uuid.len(), 36, "{test:?}");
        assert!(test.cpu_time_ns.is_some(), "{test:?}");
        assert!(test.memory_bytes.is_some_and(|m| m > 0), "{test:?}");
        assert!(test.vcpus.is_some_and(|v| v > 0), "{test:?}");
        Ok(())
    }
}
