//! What staged content must be before it becomes an image: the SHA-256 it was promised, the
//! format its type needs (qcow2 with no backing or data file; an ISO 9660 volume for ISOs), and
//! a virtual size within the target. Each refusal is a `ContentError`: a short reason for the
//! tenant, the detail (qemu-img's words, the staged path) for the log.

use crate::images::error::ContentError;
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
) -> Result<VerifiedBlob, ContentError> {
    if let Some(expected) = want.sha256
        && !expected.eq_ignore_ascii_case(sha256)
    {
        return Err(ContentError::Sha256 {
            expected: expected.to_lowercase(),
            got: sha256.to_string(),
        });
    }
    let limit = u64::from(want.target_size_gb) * GIB;
    let (format, virtual_size) = match want.image_type {
        ImageType::Image => {
            let info = qemu_img::info(path).await.map_err(ContentError::Inspect)?;
            if info.format != "qcow2" {
                return Err(ContentError::NotQcow2(info.format));
            }
            if info.backing_file.is_some() || info.data_file.is_some() {
                return Err(ContentError::External);
            }
            ("qcow2", info.virtual_size)
        }
        ImageType::Iso => {
            if !is_iso9660(path).await.map_err(ContentError::ReadStaged)? {
                return Err(ContentError::NotIso);
            }
            ("iso", size)
        }
    };
    if virtual_size > limit {
        return Err(ContentError::TooBig {
            virtual_size,
            target_gb: want.target_size_gb,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A damaged qcow2 makes qemu-img fail with the staged file's path in its stderr: the
    /// reason a tenant reads names neither.
    #[tokio::test]
    async fn a_damaged_qcow2_is_refused_without_its_path() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("staging-blob-0123.part");
        // qcow2 magic, then a version qemu-img does not know.
        let mut bytes = b"QFI\xfb\x00\x00\x00\x63".to_vec();
        bytes.resize(1 << 16, 0);
        std::fs::write(&path, &bytes)?;
        let want = Expectations {
            image_type: ImageType::Image,
            target_size_gb: 20,
            sha256: None,
        };
        let err = verify(&path, "ab", bytes.len() as u64, &want)
            .await
            .err()
            .ok_or("a damaged qcow2 was accepted")?;
        let detail = err.to_string();
        assert!(
            detail.contains("staging-blob-0123"),
            "the log keeps the detail: {detail}"
        );
        let reason = err.reason();
        assert_eq!(reason, "the file is not a valid qcow2 image");
        assert!(
            !reason.contains('/') && !reason.contains("qemu-img:"),
            "{reason}"
        );
        Ok(())
    }
}
