//! One pass over incoming bytes: each chunk is hashed (SHA-256) and written to the staging
//! file at the same time, on two threads, so the slower of the two sets the pace — not their
//! sum. Memory is bounded by the chunk queue (a few MiB), whatever the image size.

use bytes::{Bytes, BytesMut};
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::fd::AsRawFd;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::{Receiver, Sender, channel};

const CHUNK: usize = 1 << 20;
const QUEUE: usize = 8;
/// Write-behind: every this many bytes the writer has the kernel start writing back what is
/// dirty and drop what is already on disk, so an import holds a few windows of page cache, not
/// the whole image, and the final fsync has little left to do.
const WRITE_BEHIND: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("reading the source failed: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing the image failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("the content is larger than {0} bytes")]
    TooLarge(u64),
    #[error("ingest worker failed")]
    Worker,
}

/// Copies `reader` into `file` while hashing, calling `progress` with the byte count as it
/// goes. Stops with `TooLarge` past `limit` bytes.
pub async fn ingest(
    mut reader: impl AsyncRead + Unpin,
    file: tokio::fs::File,
    limit: u64,
    mut progress: impl FnMut(u64),
) -> Result<Ingested, IngestError> {
    let (hash_tx, mut hash_rx): (Sender<Bytes>, Receiver<Bytes>) = channel(QUEUE);
    let (write_tx, mut write_rx): (Sender<Bytes>, Receiver<Bytes>) = channel(QUEUE);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = Sha256::new();
        while let Some(chunk) = hash_rx.blocking_recv() {
            h.update(&chunk);
        }
        hex::encode(h.finalize())
    });
    let mut std_file = file.into_std().await;
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let (mut written, mut advised) = (0u64, 0u64);
        while let Some(chunk) = write_rx.blocking_recv() {
            std_file.write_all(&chunk)?;
            written += chunk.len() as u64;
            if written - advised >= WRITE_BEHIND {
                // Only advice: a failure costs memory, never data.
                let _ = posix_fadvise(
                    std_file.as_raw_fd(),
                    0,
                    0,
                    PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                );
                advised = written;
            }
        }
        std_file.sync_all()
    });

    let read_result = pump(&mut reader, &hash_tx, &write_tx, limit, &mut progress).await;
    drop(hash_tx);
    drop(write_tx);
    let write_result = writer.await.map_err(|_| IngestError::Worker)?;
    let sha256 = hasher.await.map_err(|_| IngestError::Worker)?;
    let bytes = read_result?;
    write_result.map_err(IngestError::Write)?;
    Ok(Ingested { sha256, bytes })
}

async fn pump(
    reader: &mut (impl AsyncRead + Unpin),
    hash_tx: &Sender<Bytes>,
    write_tx: &Sender<Bytes>,
    limit: u64,
    progress: &mut impl FnMut(u64),
) -> Result<u64, IngestError> {
    let mut total = 0u64;
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if reader.read_buf(&mut buf).await.map_err(IngestError::Read)? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(total);
        }
        total += buf.len() as u64;
        if total > limit {
            return Err(IngestError::TooLarge(limit));
        }
        let chunk = buf.freeze();
        // The workers only stop early when the writer failed; its error is reported then.
        let sent = hash_tx.send(chunk.clone()).await.is_ok() && write_tx.send(chunk).await.is_ok();
        if !sent {
            return Ok(total);
        }
        progress(total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_writes_in_one_pass() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut seen = 0;
        let got = ingest(
            &data[..],
            tokio::fs::File::create(&path).await?,
            u64::MAX,
            |n| seen = n,
        )
        .await?;
        assert_eq!(got.bytes, data.len() as u64);
        assert_eq!(got.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path)?, data);
        assert_eq!(seen, data.len() as u64);

        let too_big = ingest(
            &data[..],
            tokio::fs::File::create(&path).await?,
            1000,
            |_| {},
        )
        .await;
        assert!(matches!(too_big, Err(IngestError::TooLarge(1000))));
        Ok(())
    }
}
