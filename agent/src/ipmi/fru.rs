//! FRU inventory (Platform Management FRU Information Storage Definition v1.0): read in small
//! parts (common header, then each area's length, then the area) and parse the chassis, board
//! and product areas for serial number, model and manufacturer.

use super::IpmiError;
use super::session::{NETFN_STORAGE, Session};
use serde::{Deserialize, Serialize};

/// Bytes asked for per Read FRU Data; halved while the BMC says it is too many.
const CHUNK: usize = 32;
const MIN_CHUNK: usize = 4;

/// What the FRU says about the machine; `None` where a field is absent or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fru {
    pub chassis_part_number: Option<String>,
    pub chassis_serial: Option<String>,
    pub board_manufacturer: Option<String>,
    pub board_product: Option<String>,
    pub board_serial: Option<String>,
    pub board_part_number: Option<String>,
    pub product_manufacturer: Option<String>,
    pub product_name: Option<String>,
    pub product_part_number: Option<String>,
    pub product_version: Option<String>,
    pub product_serial: Option<String>,
    pub product_asset_tag: Option<String>,
}

impl Fru {
    /// The machine's serial number: the product's, else the board's, else the chassis'.
    pub fn serial(&self) -> Option<&str> {
        self.product_serial
            .as_deref()
            .or(self.board_serial.as_deref())
            .or(self.chassis_serial.as_deref())
    }

    /// The model: the product name, else the board's.
    pub fn model(&self) -> Option<&str> {
        self.product_name
            .as_deref()
            .or(self.board_product.as_deref())
    }

    pub fn manufacturer(&self) -> Option<&str> {
        self.product_manufacturer
            .as_deref()
            .or(self.board_manufacturer.as_deref())
    }
}

/// One type/length-coded field at `pos`: `None` at the end marker or the area's end.
fn field(area: &[u8], pos: &mut usize) -> Option<Option<String>> {
    let tl = *area.get(*pos)?;
    if tl == 0xc1 {
        return None;
    }
    let len = usize::from(tl & 0x3f);
    let bytes = area.get(*pos + 1..*pos + 1 + len)?;
    *pos += 1 + len;
    let text = match tl >> 6 {
        0b11 => bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        0b10 => six_bit_ascii(bytes),
        0b01 => bytes
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0f])
            .map(|d| match d {
                0..=9 => char::from(b'0' + d),
                0x0a => ' ',
                0x0b => '-',
                0x0c => '.',
                _ => '?',
            })
            .collect(),
        _ => hex::encode(bytes),
    };
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    Some((!text.is_empty()).then(|| text.to_string()))
}

/// Six-bit packed ASCII: four characters in every three bytes, least significant bits first.
fn six_bit_ascii(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut v = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            v |= u32::from(*b) << (8 * i);
        }
        for i in 0..(chunk.len() * 8 / 6) {
            out.push(char::from(((v >> (6 * i)) & 0x3f) as u8 + 0x20));
        }
    }
    out
}

fn fields(area: &[u8], skip: usize, n: usize) -> Vec<Option<String>> {
    let mut pos = skip;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match field(area, &mut pos) {
            Some(f) => out.push(f),
            None => break,
        }
    }
    out.resize(n, None);
    out
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

/// Which area of the common header (offset byte index) and how many bytes precede its fields.
#[derive(Debug, Clone, Copy)]
enum Area {
    Chassis,
    Board,
    Product,
}

impl Area {
    fn header_index(self) -> usize {
        match self {
            Area::Chassis => 2,
            Area::Board => 3,
            Area::Product => 4,
        }
    }

    fn apply(self, area: &[u8], fru: &mut Fru) {
        match self {
            Area::Chassis => {
                let f = fields(area, 3, 2);
                fru.chassis_part_number = f[0].clone();
                fru.chassis_serial = f[1].clone();
            }
            Area::Board => {
                let f = fields(area, 6, 4);
                fru.board_manufacturer = f[0].clone();
                fru.board_product = f[1].clone();
                fru.board_serial = f[2].clone();
                fru.board_part_number = f[3].clone();
            }
            Area::Product => {
                let f = fields(area, 3, 6);
                fru.product_manufacturer = f[0].clone();
                fru.product_name = f[1].clone();
                fru.product_part_number = f[2].clone();
                fru.product_version = f[3].clone();
                fru.product_serial = f[4].clone();
                fru.product_asset_tag = f[5].clone();
            }
        }
    }
}

/// Parses a whole FRU image (tests; the reader fetches only the areas).
pub fn parse(image: &[u8]) -> Fru {
    let mut fru = Fru::default();
    if image.len() < 8 || !checksum_ok(&image[..8]) {
        return fru;
    }
    for area in [Area::Chassis, Area::Board, Area::Product] {
        let at = usize::from(image[area.header_index()]) * 8;
        if at == 0 {
            continue;
        }
        let Some(len) = image.get(at + 1).map(|l| usize::from(*l) * 8) else {
            continue;
        };
        if let Some(bytes) = image.get(at..at + len)
            && checksum_ok(bytes)
        {
            area.apply(bytes, &mut fru);
        }
    }
    fru
}

impl Session {
    /// Reads `len` bytes of FRU device `id` from `offset`, a few at a time.
    async fn read_fru(
        &mut self,
        id: u8,
        words: bool,
        offset: usize,
        len: usize,
    ) -> Result<Vec<u8>, IpmiError> {
        const NAME: &str = "read fru data";
        let unit = if words { 2 } else { 1 };
        let mut out = Vec::with_capacity(len);
        let mut chunk = CHUNK;
        while out.len() < len {
            let at = offset + out.len();
            let want = chunk.min(len - out.len());
            let off = ((at / unit) as u16).to_le_bytes();
            let count = want.div_ceil(unit) as u8;
            match self
                .command(NAME, NETFN_STORAGE, 0x11, &[id, off[0], off[1], count])
                .await
            {
                Ok(d) => {
                    let got = usize::from(*d.first().unwrap_or(&0)) * unit;
                    let data = d.get(1..).unwrap_or_default();
                    if got == 0 || data.is_empty() {
                        return Err(IpmiError::Malformed {
                            command: NAME,
                            detail: format!("no data at offset {at}"),
                        });
                    }
                    let take = got.min(data.len()).min(len - out.len());
                    out.extend_from_slice(&data[..take]);
                }
                // Too many bytes for this BMC's buffers: ask for fewer.
                Err(IpmiError::Completion { code, .. })
                    if matches!(code, 0xc7 | 0xc8 | 0xca) && chunk > MIN_CHUNK =>
                {
                    chunk /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// FRU device `id` (0: the baseboard): serial, model, manufacturer and the rest.
    pub async fn fru(&mut self, id: u8) -> Result<Fru, IpmiError> {
        const NAME: &str = "get fru inventory area info";
        let info = self.command(NAME, NETFN_STORAGE, 0x10, &[id]).await?;
        if info.len() < 3 {
            return Err(IpmiError::Malformed {
                command: NAME,
                detail: format!("{} data bytes, need 3", info.len()),
            });
        }
        let size = usize::from(u16::from_le_bytes([info[0], info[1]]));
        let words = info[2] & 0x01 != 0;
        let mut fru = Fru::default();
        if size < 8 {
            return Ok(fru);
        }
        let header = self.read_fru(id, words, 0, 8).await?;
        if !checksum_ok(&header) || header[0] & 0x0f != 1 {
            return Err(IpmiError::Malformed {
                command: "read fru data",
                detail: "the FRU common header is invalid".into(),
            });
        }
        for area in [Area::Chassis, Area::Board, Area::Product] {
            let at = usize::from(header[area.header_index()]) * 8;
            if at == 0 || at + 2 > size {
                continue;
            }
            let head = self.read_fru(id, words, at, 2).await?;
            let len = usize::from(head[1]) * 8;
            if len < 2 || at + len > size {
                continue;
            }
            let mut bytes = head;
            bytes.extend(self.read_fru(id, words, at + 2, len - 2).await?);
            if checksum_ok(&bytes) {
                area.apply(&bytes, &mut fru);
            } else {
                tracing::warn!(bmc = %self.addr(), area = ?area, "FRU area checksum is wrong; area ignored.");
            }
        }
        Ok(fru)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl(s: &str) -> Vec<u8> {
        let mut v = vec![0xc0 | s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn area(body: &[u8]) -> Vec<u8> {
        let mut a = vec![1, 0];
        a.extend_from_slice(body);
        a.push(0xc1);
        while (a.len() + 1) % 8 != 0 {
            a.push(0);
        }
        a[1] = ((a.len() + 1) / 8) as u8;
        let sum = a.iter().fold(0u8, |x, b| x.wrapping_add(*b));
        a.push(sum.wrapping_neg());
        a
    }

    /// The same image the ipmi_sim recipe writes.
    fn image() -> Vec<u8> {
        let ch = area(&[[0x17].as_slice(), &tl("CH-PART-1"), &tl("CHASSIS-SN-0001")].concat());
        let bd = area(
            &[
                [0, 0, 0, 0].as_slice(),
                &tl("Acme"),
                &tl("SimBoard"),
                &tl("BOARD-SN-0001"),
                &tl("BRD-PN-1"),
                &tl(""),
            ]
            .concat(),
        );
        let pr = area(
            &[
                [0].as_slice(),
                &tl("Acme"),
                &tl("SimServer 1000"),
                &tl("SS-1000"),
                &tl("v1"),
                &tl("PRODUCT-SN-0001"),
                &tl("ASSET-42"),
                &tl(""),
            ]
            .concat(),
        );
        let mut h = vec![
            1,
            0,
            1,
            ((8 + ch.len()) / 8) as u8,
            ((8 + ch.len() + bd.len()) / 8) as u8,
            0,
            0,
        ];
        let sum = h.iter().fold(0u8, |x, b| x.wrapping_add(*b));
        h.push(sum.wrapping_neg());
        [h, ch, bd, pr].concat()
    }

    #[test]
    fn parses_the_three_areas() {
        let fru = parse(&image());
        assert_eq!(fru.serial(), Some("PRODUCT-SN-0001"));
        assert_eq!(fru.model(), Some("SimServer 1000"));
        assert_eq!(fru.manufacturer(), Some("Acme"));
        assert_eq!(fru.chassis_serial.as_deref(), Some("CHASSIS-SN-0001"));
        assert_eq!(fru.board_serial.as_deref(), Some("BOARD-SN-0001"));
        assert_eq!(fru.product_asset_tag.as_deref(), Some("ASSET-42"));
    }

    #[test]
    fn field_encodings() {
        let cases: [(&str, Vec<u8>, Option<&str>); 5] = [
            ("8-bit", tl("ABC"), Some("ABC")),
            ("bcd plus", vec![0x42, 0x12, 0xb3], Some("12-3")),
            // "ABCD" packed six bits each: 0x21 0x22 0x23 0x24
            ("6-bit", vec![0x83, 0xa1, 0x38, 0x92], Some("ABCD")),
            ("binary", vec![0x02, 0xde, 0xad], Some("dead")),
            ("empty", vec![0xc0], None),
        ];
        for (label, bytes, want) in cases {
            let mut pos = 0;
            assert_eq!(
                field(&bytes, &mut pos),
                Some(want.map(String::from)),
                "{label}"
            );
        }
        assert_eq!(field(&[0xc1], &mut 0), None, "end marker");
        assert_eq!(field(&[0xc5, b'a'], &mut 0), None, "truncated");
    }

    #[test]
    fn corrupt_images_give_nothing_rather_than_panic() {
        let mut img = image();
        img[7] ^= 1;
        assert_eq!(parse(&img), Fru::default());
        for cut in 0..image().len() {
            let _ = parse(&image()[..cut]);
        }
    }
}
