//! What staged content must be before it becomes an image: the SHA-256 it was promised, the
//! format its type needs (qcow2 with no backing or data file; an ISO 9660 volume for ISOs), and
//! a virtual size within the target. Each refusal is a sentence for the operator.

use crate::images::qemu_img;
use crate::images::store::VerifiedBlob;
use plinth_common::image::ImageType;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub const GIB: u64 = 1 << 30;

/// What the image declared.
pub struct Expectations<'a> {
    pub image_type: ImageType,
    pub target_size_gb: u32,
    pub sha256: Option<&'a str>,
}

/// Checks staged content; returns what the store records, without the blob id (set at commit).
pub async fn verify(
    path: &Path,
    sha256: &str,
    size: u64,
    want: &Expectations<'_>,
) -> Result<VerifiedBlob, String> {
    if let Some(expected) = want.sha256
        && !expected.eq_ignore_ascii_case(sha256)
    {
        return Err(format!(
            "SHA-256 mismatch: expected {expected}, the content has {sha256}"
        ));
    }
    let limit = u64::from(want.target_size_gb) * GIB;
    let (format, virtual_size) = match want.image_type {
        ImageType::Image => {
            let info = qemu_img::info(path).await.map_err(|e| e.to_string())?;
            if info.format != "qcow2" {
                return Err(format!(
                    "the file is {}, not qcow2 (convert it with `qemu-img convert -O qcow2`)",
                    info.format
                ));
            }
            if info.backing_file.is_some() || info.data_file.is_some() {
                return Err(
                    "the qcow2 refers to a backing or data file; import a standalone image \
                            (`qemu-img convert -O qcow2` flattens it)"
                        .into(),
                );
            }
            ("qcow2", info.virtual_size)
        }
        ImageType::Iso => {
            if !is_iso9660(path)
                .await
                .map_err(|e| format!("reading the file failed: {e}"))?
            {
                return Err("the file is not an ISO 9660 image".into());
            }
            ("iso", size)
        }
    };
    if virtual_size > limit {
        return Err(format!(
            "the virtual size {:.1} GiB exceeds the target size {} GiB",
            virtual_size as f64 / GIB as f64,
            want.target_size_gb
        ));
    }
    Ok(VerifiedBlob {
        blob_id: String::new(),
        sha256: sha256.to_string(),
        size_bytes: size,
        virtual_size_bytes: virtual_size,
        format: format.into(),
    })
}

/// ISO 9660: "CD001" at byte 0x8001 (the primary volume descriptor).
async fn is_iso9660(path: &Path) -> std::io::Result<bool> {
    let mut file = tokio::fs::File::open(path).await?;
    if file.metadata().await?.len() < 0x8006 {
        return Ok(false);
    }
    file.seek(std::io::SeekFrom::Start(0x8001)).await?;
    let mut magic = [0u8; 5];
    file.read_exact(&mut magic).await?;
    Ok(&magic == b"CD001")
}
