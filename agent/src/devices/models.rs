//! A small built-in table of common GPU models by PCI vendor and device id, with their memory
//! (sysfs does not tell a GPU's memory). Ids it does not know are shown raw.

const GIB: u64 = 1 << 30;

/// (vendor, device, model, memory in GiB)
const MODELS: &[(u32, u32, &str, u64)] = &[
    (0x10de, 0x1b38, "NVIDIA Tesla P40", 24),
    (0x10de, 0x1db4, "NVIDIA Tesla V100 PCIe 16GB", 16),
    (0x10de, 0x1db6, "NVIDIA Tesla V100 PCIe 32GB", 32),
    (0x10de, 0x1eb8, "NVIDIA Tesla T4", 16),
    (0x10de, 0x20b0, "NVIDIA A100 SXM4 40GB", 40),
    (0x10de, 0x20b2, "NVIDIA A100 SXM4 80GB", 80),
    (0x10de, 0x20b5, "NVIDIA A100 PCIe 80GB", 80),
    (0x10de, 0x20f1, "NVIDIA A100 PCIe 40GB", 40),
    (0x10de, 0x20b7, "NVIDIA A30", 24),
    (0x10de, 0x2235, "NVIDIA A40", 48),
    (0x10de, 0x2236, "NVIDIA A10", 24),
    (0x10de, 0x25b6, "NVIDIA A16", 16),
    (0x10de, 0x26b5, "NVIDIA L40", 48),
    (0x10de, 0x26b9, "NVIDIA L40S", 48),
    (0x10de, 0x27b8, "NVIDIA L4", 24),
    (0x10de, 0x2321, "NVIDIA H100 NVL", 94),
    (0x10de, 0x2330, "NVIDIA H100 SXM5 80GB", 80),
    (0x10de, 0x2331, "NVIDIA H100 PCIe", 80),
    (0x10de, 0x2335, "NVIDIA H200 SXM 141GB", 141),
    (0x1002, 0x738c, "AMD Instinct MI100", 32),
    (0x1002, 0x740c, "AMD Instinct MI250X", 128),
    (0x1002, 0x740f, "AMD Instinct MI210", 64),
    (0x1002, 0x74a1, "AMD Instinct MI300X", 192),
    (0x8086, 0x56c0, "Intel Data Center GPU Flex 170", 16),
    (0x8086, 0x56c1, "Intel Data Center GPU Flex 140", 12),
    (0x8086, 0x0bd5, "Intel Data Center GPU Max 1550", 128),
];

/// Display devices that carry no memory worth listing: BMC and emulated adapters.
const OTHERS: &[(u32, u32, &str)] = &[
    (0x1a03, 0x2000, "ASPEED Graphics Family (BMC)"),
    (0x102b, 0x0536, "Matrox G200eW3 (BMC)"),
    (0x1234, 0x1111, "QEMU standard VGA"),
    (0x1b36, 0x0100, "QXL paravirtual graphics"),
    (0x1af4, 0x1050, "virtio GPU"),
];

pub fn vendor_name(vendor: u32) -> String {
    match vendor {
        0x10de => "NVIDIA".into(),
        0x1002 => "AMD".into(),
        0x8086 => "Intel".into(),
        0x1a03 => "ASPEED".into(),
        0x102b => "Matrox".into(),
        0x1234 => "QEMU".into(),
        0x1b36 | 0x1af4 => "Red Hat".into(),
        other => format!("{other:04x}"),
    }
}

/// The model's name and memory, or `GPU vvvv:dddd` and none.
pub fn model(vendor: u32, device: u32) -> (String, Option<u64>) {
    if let Some((_, _, name, gib)) = MODELS
        .iter()
        .find(|(v, d, _, _)| *v == vendor && *d == device)
    {
        return (name.to_string(), Some(gib * GIB));
    }
    if let Some((_, _, name)) = OTHERS.iter().find(|(v, d, _)| *v == vendor && *d == device) {
        return (name.to_string(), None);
    }
    (format!("GPU {vendor:04x}:{device:04x}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_ids() {
        let cases = [
            ("L4", 0x10de, 0x27b8, "NVIDIA L4", Some(24 * GIB)),
            (
                "MI210",
                0x1002,
                0x740f,
                "AMD Instinct MI210",
                Some(64 * GIB),
            ),
            ("BMC", 0x1a03, 0x2000, "ASPEED Graphics Family (BMC)", None),
            ("unknown", 0x10de, 0xffff, "GPU 10de:ffff", None),
        ];
        for (label, v, d, name, memory) in cases {
            assert_eq!(model(v, d), (name.to_string(), memory), "{label}");
        }
        assert_eq!(vendor_name(0x10de), "NVIDIA");
        assert_eq!(vendor_name(0xabcd), "abcd");
    }
}
