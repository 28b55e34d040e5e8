//! `plinth images` and `plinth recycle-bin`: list and show images, import one from a URL or
//! upload a local file (following the work with a progress bar), edit, delete one or a batch,
//! copy a custom image to base, signed download links, and the recycle bin.

use crate::client::Client;
use crate::format::duration;
use crate::image_render::{
    render_batch, render_bin, render_image, render_link, render_page, render_ready, render_started,
};
use crate::output::Output;
use crate::paging::PageArgs;
use crate::progress::Progress;
use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use futures_util::TryStreamExt;
use plinth_common::api::{
    BatchDelete, BatchItem, CopyToBase, Image, NewImage, Operation, OperationStatus, UpdateImage,
};
use plinth_common::image::{
    Architecture, ImageKind, ImageStatus, ImageType, IsoPurpose, OsType, Visibility,
};
use reqwest::Body;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::io::ReaderStream;

/// How often `--wait` asks for an operation's progress.
/// How much of a file is read at a time for an upload.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A clap parser for one of a text enum's values; `--help` lists them.
pub(crate) fn one_of<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    text: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|v| text(*v))).try_map(move |s: String| {
        all.iter()
            .copied()
            .find(|v| text(*v) == s)
            .ok_or("not one of the possible values")
    })
}

#[derive(Subcommand)]
pub enum ImagesCommand {
    /// List images, with search and filters.
    List(ListArgs),
    /// Show one image.
    Show { id: String },
    /// Import a custom image from an http, https or ftp URL.
    Import {
        /// Where the coordinator fetches it: http://, https:// or
        /// ftp://[user:password@]host[:port]/path. (Not `--url`: that names the coordinator.)
        #[arg(long, value_name = "URL")]
        source_url: String,
        #[command(flatten)]
        image: ImageArgs,
        /// Follow the import until it ends, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Upload a local qcow2 or ISO file as a custom image.
    Upload {
        /// The file to upload.
        file: PathBuf,
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Change an image's name, note, visibility or tags.
    Edit(EditArgs),
    /// Delete images; a custom image goes to its tenant's recycle bin.
    Delete {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Copy an available custom image into a new base image.
    CopyToBase {
        id: String,
        /// The base image's name.
        #[arg(long)]
        name: String,
        /// Follow the copy until it ends, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// A signed link to download an image, valid for 24 hours; it needs no token.
    DownloadLink { id: String },
}

#[derive(Subcommand)]
pub enum RecycleBinCommand {
    /// List deleted custom images, the last deleted first.
    List(PageArgs),
    /// Restore an image to the status it had.
    Restore { id: String },
    /// Destroy a deleted image: its content is removed for good.
    Destroy { id: String },
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[arg(long, value_parser = one_of(ImageKind::ALL, ImageKind::as_str))]
    kind: Option<ImageKind>,
    #[arg(long = "type", value_parser = one_of(ImageType::ALL, ImageType::as_str))]
    image_type: Option<ImageType>,
    #[arg(long, value_parser = one_of(Visibility::ALL, Visibility::as_str))]
    visibility: Option<Visibility>,
    #[arg(long, value_parser = one_of(ImageStatus::ALL, ImageStatus::as_str))]
    status: Option<ImageStatus>,
    #[arg(long, value_parser = one_of(OsType::ALL, OsType::as_str))]
    os_type: Option<OsType>,
    /// Only images with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Text to find in name, id or platform.
    #[arg(long, value_name = "TEXT")]
    q: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let text = [
            ("kind", self.kind.map(ImageKind::as_str)),
            ("type", self.image_type.map(ImageType::as_str)),
            ("visibility", self.visibility.map(Visibility::as_str)),
            ("status", self.status.map(ImageStatus::as_str)),
            ("os_type", self.os_type.map(OsType::as_str)),
            ("tag", self.tag.as_deref()),
            ("q", self.q.as_deref()),
        ];
        text.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
            .collect()
    }
}

/// What an import or an upload declares about the image it brings.
#[derive(clap::Args)]
pub struct ImageArgs {
    #[arg(long)]
    name: String,
    #[arg(long, value_parser = one_of(OsType::ALL, OsType::as_str))]
    os_type: OsType,
    #[arg(long, value_parser = one_of(Architecture::ALL, Architecture::as_str))]
    arch: Architecture,
    /// centos, debian, ubuntu or windows.
    #[arg(long)]
    platform: String,
    /// The platform's version, e.g. 7.9, 20.04 or 2019.
    #[arg(long)]
    version: String,
    /// The disk size instances get, 20-500 GB; the image's virtual size must fit.
    #[arg(long, value_name = "GB")]
    target_size_gb: u32,
    /// The owning tenant (admins must name one).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    #[arg(long = "type", default_value = "image",
        value_parser = one_of(ImageType::ALL, ImageType::as_str))]
    image_type: ImageType,
    /// What an ISO is for: only an os ISO can boot an instance.
    #[arg(long, value_parser = one_of(IsoPurpose::ALL, IsoPurpose::as_str))]
    iso_purpose: Option<IsoPurpose>,
    /// The hex SHA-256 the image's bytes must have.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    #[arg(long, default_value = "private",
        value_parser = one_of(Visibility::ALL, Visibility::as_str))]
    visibility: Visibility,
    /// A tag; repeat for several.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    #[arg(long, default_value = "")]
    note: String,
}

impl From<ImageArgs> for NewImage {
    fn from(a: ImageArgs) -> NewImage {
        NewImage {
            url: None,
            name: a.name,
            note: a.note,
            tenant_id: a.tenant,
            image_type: a.image_type,
            iso_purpose: a.iso_purpose,
            os_type: a.os_type,
            architecture: a.arch,
            platform: a.platform,
            version: a.version,
            target_size_gb: a.target_size_gb,
            sha256: a.sha256,
            visibility: a.visibility,
            tags: a.tags,
        }
    }
}

#[derive(clap::Args)]
pub struct EditArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    note: Option<String>,
    #[arg(long, value_parser = one_of(Visibility::ALL, Visibility::as_str))]
    visibility: Option<Visibility>,
    /// Replaces the tags; repeat for several.
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "clear_tags")]
    tags: Vec<String>,
    /// Removes every tag.
    #[arg(long)]
    clear_tags: bool,
}

impl EditArgs {
    fn update(self) -> anyhow::Result<(String, UpdateImage)> {
        let tags = if self.clear_tags {
            Some(Vec::new())
        } else {
            Some(self.tags).filter(|t| !t.is_empty())
        };
        let update = UpdateImage {
            name: self.name,
            note: self.note,
            tags,
            visibility: self.visibility,
            ..UpdateImage::default()
        };
        if update.name.is_none()
            && update.note.is_none()
            && update.tags.is_none()
            && update.visibility.is_none()
        {
            bail!("nothing to change: pass --name, --note, --visibility, --tag or --clear-tags");
        }
        Ok((self.id, update))
    }
}

/// Reads a response as `T`.
pub(crate) fn typed<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("the coordinator's response has an unexpected shape")
}

pub async fn run(client: &Client, out: &Output, command: ImagesCommand) -> anyhow::Result<()> {
    match command {
        ImagesCommand::List(args) => out.emit(
            client
                .list(&["v1", "images"], &args.query(), &args.page)
                .await?,
            render_page,
        ),
        ImagesCommand::Show { id } => {
            out.emit(client.get(&["v1", "images", &id]).await?, render_image)
        }
        ImagesCommand::Import {
            source_url,
            image,
            wait,
        } => {
            let body = NewImage {
                url: Some(source_url),
                ..image.into()
            };
            let started = client.post(&["v1", "images", "import"], &body).await?;
            started_or_follow(client, out, started, wait, "import", None).await
        }
        ImagesCommand::Upload { file, image } => upload(client, out, &file, image.into()).await,
        ImagesCommand::Edit(args) => {
            let (id, update) = args.update()?;
            let edited = client.patch(&["v1", "images", &id], &update).await?;
            out.emit(edited, |i: &Image| format!("image {} updated\n", i.id))
        }
        ImagesCommand::Delete { ids } => delete(client, out, ids).await,
        ImagesCommand::CopyToBase { id, name, wait } => {
            let started = client
                .post(&["v1", "images", &id, "copy-to-base"], &CopyToBase { name })
                .await?;
            started_or_follow(client, out, started, wait, "copy", None).await
        }
        ImagesCommand::DownloadLink { id } => out.emit(
            client
                .post_empty(&["v1", "images", &id, "download-link"])
                .await?,
            render_link,
        ),
    }
}

pub async fn recycle_bin(
    client: &Client,
    out: &Output,
    command: RecycleBinCommand,
) -> anyhow::Result<()> {
    match command {
        RecycleBinCommand::List(page) => {
            let list = client.list(&["v1", "recycle-bin"], &[], &page).await?;
            out.emit(list, render_bin)
        }
        RecycleBinCommand::Restore { id } => out.emit(
            client
                .post_empty(&["v1", "recycle-bin", &id, "restore"])
                .await?,
            |i: &Image| format!("image {} restored ({})\n", i.id, i.status),
        ),
        RecycleBinCommand::Destroy { id } => {
            client.delete(&["v1", "recycle-bin", &id]).await?;
            out.note(&format!("image {id} destroyed\n"))
        }
    }
}

/// Prints a just-started image, or with `wait` follows its operation to the end (giving up,
/// with an error, after `limit` if one is given; the work goes on).
pub(crate) async fn started_or_follow(
    client: &Client,
    out: &Output,
    started: Value,
    wait: bool,
    what: &str,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    if !wait {
        return out.emit(started, render_started);
    }
    let image: Image = typed(started)?;
    let op_id = image
        .operation_id
        .clone()
        .with_context(|| format!("image {} has no operation to follow", image.id))?;
    out.note(&format!(
        "image {} is {}; operation {op_id}\n",
        image.id, image.status
    ))?;
    let Some(op) = wait_for(client, &op_id, &format!("{what} {}", image.id), limit).await? else {
        bail!(
            "gave up waiting after {}: the {what} of image {} goes on; follow it with \
             `plinth images show {}`",
            duration(limit.unwrap_or_default()),
            image.id,
            image.id
        );
    };
    let ended = client.get(&["v1", "images", &image.id]).await;
    match (op.status, ended) {
        (OperationStatus::Succeeded, ended) => out.emit(ended?, render_ready),
        (_, Ok(ended)) => {
            // With --json the image shows how it failed; the text is the error line.
            out.emit(ended, |_: &Image| String::new())?;
            Err(failure(what, &image.id, op.error))
        }
        // A failed copy removes its half-made base image.
        (_, Err(_)) => Err(failure(what, &image.id, op.error)),
    }
}

fn failure(what: &str, id: &str, reason: Option<String>) -> anyhow::Error {
    let reason = reason.unwrap_or_else(|| "no reason given".to_string());
    anyhow!("{what} of image {id} failed: {reason}")
}

/// Waits for an operation ([`crate::operations::wait_for`]), showing its byte progress on
/// stderr; `None` when `limit` passes first.
async fn wait_for(
    client: &Client,
    op_id: &str,
    label: &str,
    limit: Option<Duration>,
) -> anyhow::Result<Option<Operation>> {
    let progress = Progress::new(label, None);
    let ended = crate::operations::wait_for(client, op_id, limit, |op| {
        progress.set(op.progress_bytes, op.total_bytes)
    })
    .await;
    progress.finish();
    ended
}

/// Declares the image, then streams the file as its content.
async fn upload(client: &Client, out: &Output, path: &Path, image: NewImage) -> anyhow::Result<()> {
    let (file, len) = open_upload(path).await?;
    let created: Image = typed(client.post(&["v1", "images"], &image).await?)?;
    out.note(&format!(
        "image {} created; uploading {} ({len} bytes)\n",
        created.id,
        path.display()
    ))?;
    let progress = Progress::new(&format!("upload {}", created.id), Some(len));
    let sent = send_file(client, &created.id, file, len, &progress).await;
    progress.finish();
    let uploaded = sent?;
    let image: Image = typed(uploaded.clone())?;
    if image.status == ImageStatus::Available {
        return out.emit(uploaded, render_ready);
    }
    out.emit(uploaded, |_: &Image| String::new())?;
    Err(failure("upload", &image.id, image.failure_reason))
}

/// Opens the file to upload and finds its length, before anything is created.
async fn open_upload(path: &Path) -> anyhow::Result<(tokio::fs::File, u64)> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    Ok((file, meta.len()))
}

/// `PUT`s the file a chunk at a time (never all of it in memory), counting what was sent;
/// the answer is the image as the coordinator's check left it.
async fn send_file(
    client: &Client,
    id: &str,
    file: tokio::fs::File,
    len: u64,
    progress: &Progress,
) -> anyhow::Result<Value> {
    let sent = progress.clone();
    let stream = ReaderStream::with_capacity(file, UPLOAD_CHUNK).inspect_ok(move |chunk| {
        sent.add(chunk.len() as u64);
        if sent.complete() {
            sent.message("sent; the coordinator is checking it");
        }
    });
    client
        .put_stream(
            &["v1", "images", id, "content"],
            Body::wrap_stream(stream),
            len,
        )
        .await
}

async fn delete(client: &Client, out: &Output, ids: Vec<String>) -> anyhow::Result<()> {
    if let [id] = ids.as_slice() {
        client.delete(&["v1", "images", id]).await?;
        return out.note(&format!("image {id} deleted\n"));
    }
    let answer = client
        .post(&["v1", "images", "batch-delete"], &BatchDelete { ids })
        .await?;
    let items: Vec<BatchItem> = typed(answer.clone())?;
    out.emit(answer, |i: &Vec<BatchItem>| render_batch(i))?;
    let failed = items.iter().filter(|i| !i.deleted).count();
    if failed > 0 {
        bail!("{failed} of {} images were not deleted", items.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ImagesCommand,
    }

    fn parse(args: &[&str]) -> Result<ImagesCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("images").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn list_filters_become_the_query() {
        let Ok(ImagesCommand::List(args)) = parse(&[
            "list",
            "--kind",
            "custom",
            "--type",
            "iso",
            "--status",
            "import_failed",
            "--q",
            "cent",
            "--limit",
            "5",
        ]) else {
            panic!("list parses");
        };
        assert_eq!(
            args.query(),
            vec![
                ("kind", "custom".to_string()),
                ("type", "iso".to_string()),
                ("status", "import_failed".to_string()),
                ("q", "cent".to_string()),
            ]
        );
        assert_eq!(args.page.limit, Some(5));
        assert!(parse(&["list", "--per-page", "5"]).is_err());
        assert!(parse(&["list", "--kind", "other"]).is_err());
    }

    #[test]
    fn import_declares_the_image() {
        let Ok(ImagesCommand::Import {
            source_url,
            image,
            wait,
        }) = parse(&[
            "import",
            "--source-url",
            "http://x/a.qcow2",
            "--name",
            "a",
            "--os-type",
            "linux",
            "--arch",
            "x86_64",
            "--platform",
            "centos",
            "--version",
            "7.9",
            "--target-size-gb",
            "40",
            "--tag",
            "a",
            "--tag",
            "b",
            "--wait",
        ])
        else {
            panic!("import parses");
        };
        let image = NewImage::from(image);
        assert_eq!(source_url, "http://x/a.qcow2");
        assert!(wait);
        assert_eq!(image.image_type, ImageType::Image);
        assert_eq!(image.visibility, Visibility::Private);
        assert_eq!(image.architecture, Architecture::X86_64);
        assert_eq!(image.tags, vec!["a", "b"]);
    }

    #[test]
    fn edit_needs_a_change_and_clears_tags() {
        let edit = |args: &[&str]| match parse(args) {
            Ok(ImagesCommand::Edit(e)) => e.update(),
            _ => panic!("edit parses"),
        };
        assert!(edit(&["edit", "img-1"]).is_err());
        let cleared = edit(&["edit", "img-1", "--clear-tags"]).expect("a change");
        assert_eq!(cleared.1.tags, Some(Vec::new()));
        assert!(parse(&["edit", "img-1", "--tag", "a", "--clear-tags"]).is_err());
    }
}
