//! `diskstats`: per-disk bytes and completed operations from `/proc/diskstats`
//! (node_exporter's `node_disk_*_total`), partitions and ram/loop/floppy devices left out with
//! node_exporter's default rule.

/// /proc/diskstats counts 512-byte sectors whatever the device's sector size.
const SECTOR: u64 = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStat {
    pub device: String,
    pub reads_completed: u64,
    pub read_bytes: u64,
    pub writes_completed: u64,
    pub written_bytes: u64,
}

/// Parses `/proc/diskstats`: `major minor name reads merged sectors ms writes merged sectors
/// ms ...`.
pub fn parse(text: &str) -> Vec<DiskStat> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || ignored(f[2]) {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some(DiskStat {
                device: f[2].to_string(),
                reads_completed: n(3)?,
                read_bytes: n(5)?.saturating_mul(SECTOR),
                writes_completed: n(7)?,
                written_bytes: n(9)?.saturating_mul(SECTOR),
            })
        })
        .collect()
}

/// node_exporter's default `--collector.diskstats.device-exclude`:
/// `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$` (partitions and pseudo disks).
pub fn ignored(device: &str) -> bool {
    let stem = device.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == device.len() {
        return false;
    }
    if matches!(stem, "ram" | "zram" | "loop" | "fd") {
        return true;
    }
    // (h|s|v|xv)d[a-z]: one letter after the `d`.
    let disk_partition = ["hd", "sd", "vd", "xvd"].iter().any(|p| {
        stem.strip_prefix(p)
            .is_some_and(|rest| rest.len() == 1 && rest.as_bytes()[0].is_ascii_lowercase())
    });
    // nvme\d+n\d+p
    let nvme_partition = stem
        .strip_prefix("nvme")
        .and_then(|rest| rest.strip_suffix('p'))
        .and_then(|rest| rest.split_once('n'))
        .is_some_and(|(ctrl, ns)| all_digits(ctrl) && all_digits(ns));
    disk_partition || nvme_partition
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
   7       0 loop0 10 0 20 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 3993215 85204 133279850 24183555 1958402 352197 913438976 8938756 0 906760 33249086 170303 29 776462496 118833 73770 7941
 254       1 vda1 100 0 800 0 50 0 400 0 0 0 0
 259       0 nvme0n1 5 0 16 1 6 0 24 1 0 0 0
 259       1 nvme0n1p1 5 0 16 1 6 0 24 1 0 0 0
 253       0 dm-0 1 0 8 0 2 0 16 0 0 0 0
 253       1 zram0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 7 0 8 0 9 0 10 0 0 0 0 0 0 0 0
";

    #[test]
    fn reads_whole_disks_in_bytes() {
        let disks = parse(FIXTURE);
        let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["vda", "nvme0n1", "dm-0", "sda"]);
        assert_eq!(
            disks[0],
            DiskStat {
                device: "vda".into(),
                reads_completed: 3_993_215,
                read_bytes: 133_279_850 * 512,
                writes_completed: 1_958_402,
                written_bytes: 913_438_976 * 512,
            }
        );
        assert_eq!(
            disks[3].written_bytes,
            10 * 512,
            "the older 14-field format"
        );
    }

    #[test]
    fn node_exporters_exclusions() {
        let cases = [
            ("sda", false),
            ("sda1", true),
            ("vdb12", true),
            ("xvda1", true),
            ("hdc3", true),
            ("sdaa1", false),
            ("nvme0n1", false),
            ("nvme0n1p2", true),
            ("nvme10n2p11", true),
            ("ram0", true),
            ("zram0", true),
            ("loop7", true),
            ("fd0", true),
            ("dm-0", false),
            ("md127", false),
            ("mmcblk0", false),
        ];
        for (dev, want) in cases {
            assert_eq!(ignored(dev), want, "{dev}");
        }
    }
}
