//! Hardware inventory from a BMC's Redfish service on the same address (HTTPS, port 443):
//! processors (model, cores, rated power, L1/L2/L3 cache), memory modules (vendor, serial,
//! capacity, speed) and PCIe devices. The only place that speaks Redfish. BMC certificates are
//! verified: against the system's roots and the CA bundle the agent is given
//! (`redfish_ca_file`), never skipped.

use plinth_common::api::{CpuInfo, Inventory, MemoryModule, PcieDevice};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
/// Members read per collection: a bound on a misbehaving service.
const MAX_MEMBERS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    #[error("no Redfish service answered at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not Redfish JSON: {cause}")]
    Malformed { url: String, cause: String },
}

#[derive(Clone, Debug)]
pub struct Redfish {
    http: reqwest::Client,
}

impl Redfish {
    /// A client trusting the system's roots and, when given, the PEM CA bundle `extra_ca`.
    pub fn new(extra_ca: Option<&str>) -> anyhow::Result<Redfish> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .tls_built_in_root_certs(true);
        if let Some(pem) = extra_ca {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Redfish {
            http: builder.build()?,
        })
    }

    async fn get(
        &self,
        base: &str,
        path: &str,
        user: &str,
        password: &str,
    ) -> Result<Value, RedfishError> {
        let url = format!("{base}{path}");
        let resp = self
            .http
            .get(&url)
            .basic_auth(user, Some(password))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| RedfishError::Unreachable {
                url: url.clone(),
                cause: causes(&e),
            })?;
        if !resp.status().is_success() {
            return Err(RedfishError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        resp.json().await.map_err(|e| RedfishError::Malformed {
            url,
            cause: e.to_string(),
        })
    }

    /// The members of the collection at `path`.
    async fn members(
        &self,
        base: &str,
        path: &str,
        user: &str,
        password: &str,
    ) -> Result<Vec<Value>, RedfishError> {
        let collection = self.get(base, path, user, password).await?;
        let mut out = Vec::new();
        for link in links(&collection["Members"]).into_iter().take(MAX_MEMBERS) {
            out.push(self.get(base, &link, user, password).await?);
        }
        Ok(out)
    }

    /// The inventory of the first system the service lists.
    pub async fn inventory(
        &self,
        host: &str,
        user: &str,
        password: &str,
    ) -> Result<Inventory, RedfishError> {
        let base = format!("https://{host}");
        let systems = self
            .get(&base, "/redfish/v1/Systems", user, password)
            .await?;
        let Some(system_path) = links(&systems["Members"]).into_iter().next() else {
            return Err(RedfishError::Malformed {
                url: format!("{base}/redfish/v1/Systems"),
                cause: "no system is listed".into(),
            });
        };
        let system = self.get(&base, &system_path, user, password).await?;
        // What a service links but does not serve leaves that part unknown, not the whole.
        let mut unserved = Vec::new();
        let cpus = match link(&system["Processors"]) {
            Some(p) => {
                served(self.members(&base, &p, user, password).await, &mut unserved)?.map(|ps| {
                    ps.iter()
                        .filter(|p| p["ProcessorType"].as_str().is_none_or(|t| t == "CPU"))
                        .map(cpu)
                        .collect()
                })
            }
            None => None,
        };
        let memory = match link(&system["Memory"]) {
            Some(p) => {
                served(self.members(&base, &p, user, password).await, &mut unserved)?.map(|ms| {
                    ms.iter()
                        // Empty slots are listed too, as Absent.
                        .filter(|m| m["Status"]["State"].as_str() != Some("Absent"))
                        .map(dimm)
                        .collect()
                })
            }
            None => None,
        };
        // Newer services link each device from the system; older ones a collection.
        let pcie = match (&system["PCIeDevices"], link(&system["PCIeDevices"])) {
            (Value::Array(items), _) => {
                let mut out = Vec::new();
                for l in links(&Value::Array(items.clone()))
                    .into_iter()
                    .take(MAX_MEMBERS)
                {
                    out.push(pcie(&self.get(&base, &l, user, password).await?));
                }
                Some(out)
            }
            (_, Some(p)) => served(self.members(&base, &p, user, password).await, &mut unserved)?
                .map(|ds| ds.iter().map(pcie).collect()),
            _ => None,
        };
        Ok(Inventory {
            source: "redfish".into(),
            cpus,
            memory,
            pcie_devices: pcie,
            note: (!unserved.is_empty()).then(|| unserved.join("; ")),
        })
    }
}

/// A linked collection the service does not serve — 404, or 501 where sushy-tools' driver
/// lacks it (its systems link `Memory` and serve none) — is `None`, its answer kept in
/// `unserved` for the note; any other failure is the inventory's.
fn served<T>(
    found: Result<T, RedfishError>,
    unserved: &mut Vec<String>,
) -> Result<Option<T>, RedfishError> {
    match found {
        Ok(v) => Ok(Some(v)),
        Err(
            err @ RedfishError::Status {
                status: 404 | 501, ..
            },
        ) => {
            unserved.push(err.to_string());
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

fn causes(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

fn link(v: &Value) -> Option<String> {
    v["@odata.id"].as_str().map(String::from)
}

fn links(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(link).collect())
        .unwrap_or_default()
}

/// A string, where "N/A" (sushy-tools' model and vendor of a CPU it knows nothing of, and
/// some BMCs') is no more known than an empty one.
fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("N/A"))
        .map(String::from)
}

/// A count: a JSON integer, or one written as a string as sushy-tools does
/// (`"TotalCores": "2"`).
fn number(v: &Value) -> Option<u32> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        _ => v.as_u64().and_then(|n| u32::try_from(n).ok()),
    }
}

fn cpu(p: &Value) -> CpuInfo {
    // ProcessorMemory lists the caches: {"MemoryType": "L2Cache", "CapacityMiB": 2}.
    let cache_kb = |level: &str| {
        p["ProcessorMemory"].as_array().and_then(|caches| {
            caches
                .iter()
                .find(|c| c["MemoryType"].as_str() == Some(level))
                .and_then(|c| c["CapacityMiB"].as_f64())
                .map(|mib| (mib * 1024.0).round() as u32)
        })
    };
    CpuInfo {
        model: text(&p["Model"]),
        cores: number(&p["TotalCores"]),
        rated_power_watts: number(&p["TDPWatts"]).or_else(|| number(&p["MaxTDPWatts"])),
        l1_cache_kb: cache_kb("L1Cache"),
        l2_cache_kb: cache_kb("L2Cache"),
        l3_cache_kb: cache_kb("L3Cache"),
    }
}

fn dimm(m: &Value) -> MemoryModule {
    MemoryModule {
        vendor: text(&m["Manufacturer"]),
        serial: text(&m["SerialNumber"]),
        capacity_gb: m["CapacityMiB"].as_f64().map(|mib| mib / 1024.0),
        speed_mhz: number(&m["OperatingSpeedMhz"]).or_else(|| {
            m["AllowedSpeedsMHz"]
                .as_array()
                .and_then(|a| a.iter().filter_map(number).max())
        }),
    }
}

fn pcie(d: &Value) -> PcieDevice {
    PcieDevice {
        name: text(&d["Name"]),
        manufacturer: text(&d["Manufacturer"]),
        model: text(&d["Model"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_fields_the_detail_view_shows() {
        let p = json!({"Model": "Xeon Gold 6338", "TotalCores": 32, "MaxTDPWatts": 205,
            "ProcessorMemory": [{"MemoryType": "L1Cache", "CapacityMiB": 2.5},
                                {"MemoryType": "L2Cache", "CapacityMiB": 40},
                                {"MemoryType": "L3Cache", "CapacityMiB": 48}]});
        assert_eq!(
            cpu(&p),
            CpuInfo {
                model: Some("Xeon Gold 6338".into()),
                cores: Some(32),
                rated_power_watts: Some(205),
                l1_cache_kb: Some(2560),
                l2_cache_kb: Some(40960),
                l3_cache_kb: Some(49152),
            }
        );
        let m = json!({"Manufacturer": "Samsung", "SerialNumber": "S1", "CapacityMiB": 32768,
            "AllowedSpeedsMHz": [2933, 3200]});
        let d = dimm(&m);
        assert_eq!((d.capacity_gb, d.speed_mhz), (Some(32.0), Some(3200)));
        let empty = cpu(&json!({}));
        assert_eq!(empty.model, None);
    }

    #[test]
    fn reads_what_sushy_tools_serves() {
        // sushy-tools 2.2.0, libvirt driver: counts as strings, no power or caches, and
        // "N/A" where the domain names no CPU model.
        let cases = [
            (
                "a named model",
                json!({"ProcessorType": "CPU", "Manufacturer": "Intel",
                    "Model": "Skylake-Server", "TotalCores": "2", "TotalThreads": "1"}),
                CpuInfo {
                    model: Some("Skylake-Server".into()),
                    cores: Some(2),
                    rated_power_watts: None,
                    l1_cache_kb: None,
                    l2_cache_kb: None,
                    l3_cache_kb: None,
                },
            ),
            (
                "no model",
                json!({"Model": "N/A", "TotalCores": "1"}),
                CpuInfo {
                    model: None,
                    cores: Some(1),
                    rated_power_watts: None,
                    l1_cache_kb: None,
                    l2_cache_kb: None,
                    l3_cache_kb: None,
                },
            ),
        ];
        for (label, p, want) in cases {
            assert_eq!(cpu(&p), want, "{label}");
        }
        for (label, v, want) in [
            ("integer", json!(32), Some(32)),
            ("string", json!(" 8 "), Some(8)),
            ("not a number", json!("many"), None),
            ("negative", json!(-1), None),
            ("too big", json!(u64::MAX), None),
        ] {
            assert_eq!(number(&v), want, "{label}");
        }
    }

    #[test]
    fn an_unserved_collection_is_unknown_and_noted() {
        let status = |status| -> Result<Vec<Value>, RedfishError> {
            Err(RedfishError::Status {
                url: "https://127.0.0.9:443/redfish/v1/Systems/1/Memory".into(),
                status,
            })
        };
        let mut unserved = Vec::new();
        assert_eq!(
            served(Ok(vec![json!({})]), &mut unserved)
                .ok()
                .flatten()
                .map(|v| v.len()),
            Some(1)
        );
        assert!(matches!(served(status(404), &mut unserved), Ok(None)));
        assert!(matches!(served(status(501), &mut unserved), Ok(None)));
        assert_eq!(
            unserved,
            [
                "https://127.0.0.9:443/redfish/v1/Systems/1/Memory answered HTTP 404",
                "https://127.0.0.9:443/redfish/v1/Systems/1/Memory answered HTTP 501",
            ]
        );
        // Bad credentials are no missing part: the inventory fails.
        assert!(served(status(401), &mut unserved).is_err());
        assert_eq!(unserved.len(), 2);
    }
}
