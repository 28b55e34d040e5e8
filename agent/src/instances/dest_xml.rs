//! The domain XML a migration's target defines: the source's migratable XML with each disk's
//! file moved to where the target prepared it (the two hosts' data directories may differ).
//! Text in, text out, so it is tested without libvirt. libvirt's migratable XML carries no
//! backing chains; the target reads its overlay's from the qcow2 header.

use super::domain_xml::escape;
use plinth_common::api::AgentPrepared;
use std::path::Path;

/// Where the instance's files are on this host.
pub struct Here<'a> {
    pub disk: &'a Path,
    pub seed: &'a Path,
}

/// `xml` with the disk, the seed and an installer ISO at `there`'s paths. Refuses a domain
/// with a file disk plinth did not make, or an ISO the target did not prepare.
pub fn retarget(xml: &str, here: &Here<'_>, there: &AgentPrepared) -> Result<String, String> {
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    let (mut disk, mut seed) = (false, false);
    while let Some(start) = find_element(rest, "disk") {
        let len = element_len(&rest[start..]).ok_or("a <disk> element is not closed")?;
        let element = &rest[start..start + len];
        out.push_str(&rest[..start]);
        out.push_str(&move_disk(element, here, there, &mut disk, &mut seed)?);
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    if !disk {
        return Err(format!("its domain has no disk {}", here.disk.display()));
    }
    if !seed {
        return Err(format!("its domain has no seed {}", here.seed.display()));
    }
    Ok(out)
}

fn move_disk(
    element: &str,
    here: &Here<'_>,
    there: &AgentPrepared,
    disk: &mut bool,
    seed: &mut bool,
) -> Result<String, String> {
    let open = &element[..element.find('>').unwrap_or(element.len())];
    let Some(source) = find_element(element, "source") else {
        return Ok(element.to_string()); // an empty CD-ROM drive
    };
    let source_tag = &element[source..];
    let source_tag = &source_tag[..source_tag.find('>').unwrap_or(source_tag.len())];
    let device = attr_span(open, "device").map_or("disk", |(a, b)| &open[a..b]);
    let Some((from, to)) = attr_span(source_tag, "file") else {
        let kind = attr_span(open, "type").map_or("?", |(a, b)| &open[a..b]);
        return Err(format!(
            "it has a {device} (type '{kind}') whose source is not a file"
        ));
    };
    let path = unescape(&source_tag[from..to]);
    let target = if Path::new(&path) == here.disk {
        *disk = true;
        there.disk_path.as_str()
    } else if Path::new(&path) == here.seed {
        *seed = true;
        there.seed_path.as_str()
    } else if device == "cdrom" {
        there.iso_path.as_deref().ok_or_else(|| {
            format!("it boots from {path}, and the target prepared no ISO (iso_path)")
        })?
    } else {
        return Err(format!("its disk {path} is not one plinth made"));
    };
    let at = source + from;
    Ok(format!(
        "{}{}{}",
        &element[..at],
        escape(target),
        &element[source + to..]
    ))
}

/// Where the next `<name ` or `<name>` (or `<name/>`) element starts.
fn find_element(text: &str, name: &str) -> Option<usize> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(at) = text[from..].find(&open) {
        let at = from + at;
        match text[at + open.len()..].chars().next() {
            Some(c) if c.is_whitespace() || c == '>' || c == '/' => return Some(at),
            _ => from = at + open.len(),
        }
    }
    None
}

/// The length of the element `text` starts with, up to its `</disk>` (or its `/>`).
fn element_len(text: &str) -> Option<usize> {
    let open_end = text.find('>')?;
    if text[..open_end].ends_with('/') {
        return Some(open_end + 1);
    }
    let close = "</disk>";
    text.find(close).map(|at| at + close.len())
}

/// The byte range of attribute `name`'s value (inside its quotes) in a start tag.
fn attr_span(tag: &str, name: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    let key = format!("{name}=");
    while let Some(at) = tag[from..].find(&key) {
        let at = from + at;
        let after = at + key.len();
        let separated = tag[..at].ends_with(char::is_whitespace);
        let quote = tag[after..].chars().next();
        if let (true, Some(q @ ('\'' | '"'))) = (separated, quote) {
            let start = after + 1;
            let len = tag[start..].find(q)?;
            return Some((start, start + len));
        }
        from = after;
    }
    None
}

/// The text of an attribute value (the five entities libvirt writes, and numeric ones).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libvirt 9 answers for a plinth domain with VIR_DOMAIN_XML_MIGRATABLE (abridged).
    const MIGRATABLE: &str = "<domain type='qemu'>
  <name>inst-1</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/a/instances/inst-1/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <boot order='2'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/a/images/f00d.iso'/>
      <backingStore/>
      <target dev='sda' bus='scsi'/>
      <readonly/>
      <boot order='1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/a/instances/inst-1/seed.iso'/>
      <backingStore/>
      <target dev='sdb' bus='scsi'/>
      <readonly/>
    </disk>
    <disks-are-not-disk/>
  </devices>
</domain>
";

    fn here() -> Here<'static> {
        Here {
            disk: Path::new("/a/instances/inst-1/disk.qcow2"),
            seed: Path::new("/a/instances/inst-1/seed.iso"),
        }
    }

    fn there(iso: Option<&str>) -> AgentPrepared {
        AgentPrepared {
            disk_path: "/b/instances/inst-1/disk.qcow2".into(),
            seed_path: "/b/instances/inst-1/seed.iso".into(),
            iso_path: iso.map(str::to_string),
        }
    }

    #[test]
    fn moves_every_file_and_nothing_else() {
        let out = retarget(MIGRATABLE, &here(), &there(Some("/b/images/f00d.iso"))).expect("ok");
        let want = MIGRATABLE
            .replace("/a/instances/", "/b/instances/")
            .replace("/a/images/", "/b/images/");
        assert_eq!(out, want);
    }

    #[test]
    fn refusals_name_the_reason() {
        let cases = [
            (
                "an ISO the target lacks",
                MIGRATABLE.to_string(),
                None,
                "prepared no ISO",
            ),
            (
                "a disk plinth did not make",
                MIGRATABLE.replace("/a/instances/inst-1/disk.qcow2", "/elsewhere.qcow2"),
                Some("/b/x.iso"),
                "/elsewhere.qcow2 is not one plinth made",
            ),
            (
                "no seed",
                MIGRATABLE.replace("/a/instances/inst-1/seed.iso", "/b/images/x.iso"),
                Some("/b/x.iso"),
                "no seed",
            ),
            (
                "a block device",
                MIGRATABLE.replace(
                    "<source file='/a/instances/inst-1/disk.qcow2'/>",
                    "<source dev='/dev/sdz'/>",
                ),
                Some("/b/x.iso"),
                "source is not a file",
            ),
            (
                "unclosed",
                MIGRATABLE[..MIGRATABLE.find("</disk>").unwrap_or(0)].to_string(),
                Some("/b/x.iso"),
                "not closed",
            ),
        ];
        for (label, xml, iso, want) in cases {
            let err = retarget(&xml, &here(), &there(iso)).expect_err(label);
            assert!(err.contains(want), "{label}: {err}");
        }
    }

    #[test]
    fn escaped_paths_and_double_quotes() {
        let xml = "<domain><devices>\
            <disk type=\"file\" device=\"disk\"><source file=\"/a/it&apos;s&#x20;&amp;.qcow2\" index=\"2\"/></disk>\
            <disk type='file' device='cdrom'><source file='/a/seed.iso'/></disk>\
            <disk type='file' device='cdrom'><target dev='sdc'/></disk>\
            </devices></domain>";
        let here = Here {
            disk: Path::new("/a/it's &.qcow2"),
            seed: Path::new("/a/seed.iso"),
        };
        let there = AgentPrepared {
            disk_path: "/b/it's <b>.qcow2".into(),
            seed_path: "/b/seed.iso".into(),
            iso_path: None,
        };
        let out = retarget(xml, &here, &there).expect("ok");
        assert!(
            out.contains("<source file=\"/b/it&apos;s &lt;b&gt;.qcow2\" index=\"2\"/>"),
            "{out}"
        );
        assert!(out.contains("<source file='/b/seed.iso'/>"), "{out}");
        assert!(
            out.contains("<disk type='file' device='cdrom'><target dev='sdc'/></disk>"),
            "an empty drive stays: {out}"
        );
    }
}
