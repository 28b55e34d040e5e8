//! The web console (`coordinator/console/`, embedded by build.rs): `index.html` at `/`, every
//! other file under `/assets/<build>/<path>`, where `<build>` hashes all of them, so any change
//! gives every file a new URL and each can be cached for a year; `index.html` is revalidated.
//! Bare module specifiers ("preact", ...) become their vendored files' URLs (from
//! `vendor/MANIFEST`): an import map would be an inline script, which the CSP forbids.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{LazyLock, OnceLock};

mod files {
    include!(concat!(env!("OUT_DIR"), "/console_files.rs"));
}

/// The Content Security Policy of every console answer: only this origin, no inline script or
/// style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{build}/{*path}", get(asset))
}

/// One file as served: its (rewritten) bytes, and each encoding made once, on first demand.
struct Asset {
    body: Vec<u8>,
    content_type: &'static str,
    gzip: OnceLock<Vec<u8>>,
    brotli: OnceLock<Vec<u8>>,
}

struct Console {
    build: String,
    index: Asset,
    assets: HashMap<&'static str, Asset>,
}

/// The embedded files, or with `PLINTH_CONSOLE_DIR` set (console development: edit a module,
/// restart the coordinator, no rebuild) the files of that folder as they are at start.
static CONSOLE: LazyLock<Console> = LazyLock::new(|| match std::env::var_os(CONSOLE_DIR_ENV) {
    Some(dir) => Console::load(from_disk(std::path::Path::new(&dir))),
    None => Console::load(files::FILES),
});

pub const CONSOLE_DIR_ENV: &str = "PLINTH_CONSOLE_DIR";

/// What build.rs embeds (`index.html`, `app/`, `vendor/`), read from `root` once, for the
/// process's life.
fn from_disk(root: &std::path::Path) -> &'static [(&'static str, &'static [u8])] {
    fn walk(root: &std::path::Path, rel: &str, out: &mut Vec<(&'static str, &'static [u8])>) {
        let path = root.join(rel);
        if path.is_dir() {
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for name in names {
                walk(root, &format!("{rel}/{name}"), out);
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            let rel: &'static str = Box::leak(rel.to_string().into_boxed_str());
            out.push((rel, Box::leak(bytes.into_boxed_slice())));
        } else {
            tracing::warn!(path = %path.display(), "console file not readable");
        }
    }
    let mut out = Vec::new();
    for rel in ["index.html", "app", "vendor"] {
        walk(root, rel, &mut out);
    }
    Box::leak(out.into_boxed_slice())
}

impl Console {
    fn load(files: &'static [(&'static str, &'static [u8])]) -> Console {
        let mut hash = Sha256::new();
        for (path, bytes) in files {
            hash.update((path.len() as u64).to_le_bytes());
            hash.update(path.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        let build = hex::encode(&hash.finalize()[..8]);
        let prefix = format!("/assets/{build}");
        let manifest = files
            .iter()
            .find(|(p, _)| *p == "vendor/MANIFEST")
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let specifiers: Vec<(String, String)> = manifest_entries(&manifest)
            .filter(|e| e.specifier != "-")
            .map(|e| {
                (
                    e.specifier.to_string(),
                    format!("{prefix}/vendor/{}", e.file),
                )
            })
            .collect();
        let mut assets = HashMap::new();
        let mut index = Vec::new();
        for (path, bytes) in files {
            if *path == "index.html" {
                index = String::from_utf8_lossy(bytes)
                    .replace("{{assets}}", &prefix)
                    .into_bytes();
                continue;
            }
            let content_type = content_type(path);
            let body = if content_type.starts_with("text/javascript") {
                rewrite_imports(&String::from_utf8_lossy(bytes), &specifiers).into_bytes()
            } else {
                bytes.to_vec()
            };
            assets.insert(*path, Asset::new(body, content_type));
        }
        Console {
            build,
            index: Asset::new(index, "text/html; charset=utf-8"),
            assets,
        }
    }
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str) -> Asset {
        Asset {
            body,
            content_type,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// The body in the best encoding `accept` (an Accept-Encoding value) allows.
    fn encoded(&self, accept: &str) -> (Option<&'static str>, &[u8]) {
        match pick_encoding(accept) {
            Encoding::Brotli => (Some("br"), self.brotli.get_or_init(|| brotli(&self.body))),
            Encoding::Gzip => (Some("gzip"), self.gzip.get_or_init(|| gzip(&self.body))),
            Encoding::Identity => (None, &self.body),
        }
    }

    fn respond(&self, headers: &HeaderMap, cache: &'static str, etag: Option<&str>) -> Response {
        let accept = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut out = HeaderMap::new();
        security_headers(&mut out);
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&format!("\"{t}\"")).ok()) {
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == tag.as_bytes());
            out.insert(header::ETAG, tag);
            if matches {
                return (StatusCode::NOT_MODIFIED, out).into_response();
            }
        }
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        let (encoding, body) = self.encoded(accept);
        if let Some(encoding) = encoding {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        (out, body.to_vec()).into_response()
    }
}

fn security_headers(out: &mut HeaderMap) {
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

async fn index(headers: HeaderMap) -> Response {
    let console = &*CONSOLE;
    console
        .index
        .respond(&headers, "no-cache", Some(&console.build))
}

async fn asset(Path((build, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let console = &*CONSOLE;
    match console.assets.get(path.as_str()) {
        // An older build's URL: the page that asked is stale and reloads index.html.
        Some(asset) if build == console.build => asset.respond(&headers, IMMUTABLE, None),
        _ => {
            let mut out = HeaderMap::new();
            security_headers(&mut out);
            (
                StatusCode::NOT_FOUND,
                out,
                crate::http::error::ApiError::not_found_as("console_file", "console file", &path),
            )
                .into_response()
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// Brotli when the client takes it, else gzip, else none; `;q=0` refuses a coding.
fn pick_encoding(accept: &str) -> Encoding {
    let takes = |name: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or_default().trim();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            coding.eq_ignore_ascii_case(name) && q > 0.0
        })
    };
    if takes("br") {
        Encoding::Brotli
    } else if takes("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    // Reading a slice and writing a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &body[..], &mut out, &params);
    out
}

/// `import ... from "preact"` (and `import "x"`) pointing at the vendored file's URL. Only
/// exact specifiers from the manifest change; relative imports work as they are under
/// `/assets/<build>/`.
fn rewrite_imports(source: &str, specifiers: &[(String, String)]) -> String {
    let mut out = source.to_string();
    for (spec, url) in specifiers {
        for keyword in ["from", "import"] {
            for gap in ["", " "] {
                for quote in ['"', '\''] {
                    let from = format!("{keyword}{gap}{quote}{spec}{quote}");
                    if out.contains(&from) {
                        out = out.replace(&from, &format!("{keyword}{gap}{quote}{url}{quote}"));
                    }
                }
            }
        }
    }
    out
}

/// One line of `vendor/MANIFEST`: `file version sha256 specifier source`.
struct ManifestEntry<'a> {
    file: &'a str,
    #[cfg_attr(not(test), allow(dead_code))]
    version: &'a str,
    #[cfg_attr(not(test), allow(dead_code))]
    sha256: &'a str,
    specifier: &'a str,
}

fn manifest_entries(text: &str) -> impl Iterator<Item = ManifestEntry<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(ManifestEntry {
                file: f.next()?,
                version: f.next()?,
                sha256: f.next()?,
                specifier: f.next()?,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> &'static [u8] {
        files::FILES
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| *b)
            .unwrap_or_else(|| panic!("{path} is not embedded"))
    }

    #[test]
    fn every_vendored_file_matches_its_manifest_hash() {
        let manifest = String::from_utf8_lossy(file("vendor/MANIFEST")).into_owned();
        let entries: Vec<_> = manifest_entries(&manifest).collect();
        assert!(
            entries.len() >= 6,
            "the manifest lists the vendored libraries"
        );
        for e in &entries {
            let got = hex::encode(Sha256::digest(file(&format!("vendor/{}", e.file))));
            assert_eq!(got, e.sha256, "vendor/{} ({}) changed", e.file, e.version);
        }
        for (path, _) in files::FILES {
            if let Some(name) = path.strip_prefix("vendor/")
                && name != "MANIFEST"
            {
                assert!(
                    entries.iter().any(|e| e.file == name),
                    "vendor/{name} is not in vendor/MANIFEST"
                );
            }
        }
    }

    /// The `{name}` placeholders of a catalogue string, in order of appearance.
    fn placeholders(text: &str) -> Vec<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn both_catalogues_have_every_key_with_the_same_placeholders() {
        // One language's catalogue: every screen's file under app/i18n/<lang>/, no key twice.
        let load = |lang: &str| -> serde_json::Map<String, serde_json::Value> {
            let dir = format!("app/i18n/{lang}/");
            let mut all = serde_json::Map::new();
            for (path, bytes) in files::FILES.iter().filter(|(p, _)| p.starts_with(&dir)) {
                let part: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
                for (key, text) in part {
                    assert!(!all.contains_key(&key), "{path}: {key:?} is defined twice");
                    all.insert(key, text);
                }
            }
            assert!(!all.is_empty(), "no catalogue under {dir}");
            all
        };
        let (en, zh) = (load("en"), load("zh-CN"));
        for (a, b, missing_in) in [(&en, &zh, "zh-CN"), (&zh, &en, "en")] {
            for (key, text) in a {
                let other = b.get(key).unwrap_or_else(|| {
                    panic!("key {key:?} is missing from the {missing_in} catalogue")
                });
                let (text, other) = (
                    text.as_str().unwrap_or_default(),
                    other.as_str().unwrap_or_default(),
                );
                assert!(!other.trim().is_empty(), "{missing_in} {key:?} is empty");
                let mut want = placeholders(text);
                let mut got = placeholders(other);
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(want, got, "{key:?}: placeholders differ between catalogues");
            }
        }
        // Every key the code names exists (t("...") calls with a literal key).
        for (path, bytes) in files::FILES.iter().filter(|(p, _)| p.ends_with(".js")) {
            let src = String::from_utf8_lossy(bytes);
            for (at, _) in src.match_indices("t(\"") {
                // `t(` itself, not the end of `import(` or `split(`.
                let before = src[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let Some((key, _)) = src[at + 3..].split_once('"') else {
                    continue;
                };
                assert!(
                    en.contains_key(key),
                    "{path} names {key:?}, which no catalogue has"
                );
            }
        }
    }

    #[test]
    fn encodings_follow_accept_encoding() {
        let cases = [
            ("gzip, deflate, br, zstd", Encoding::Brotli),
            ("gzip", Encoding::Gzip),
            ("br;q=0, gzip;q=0.5", Encoding::Gzip),
            ("identity", Encoding::Identity),
            ("", Encoding::Identity),
            ("BR", Encoding::Brotli),
            ("gzip;q=0", Encoding::Identity),
        ];
        for (accept, want) in cases {
            assert_eq!(pick_encoding(accept), want, "Accept-Encoding: {accept:?}");
        }
    }

    #[test]
    fn bare_specifiers_become_vendored_urls() {
        let specs = vec![
            (
                "preact".to_string(),
                "/assets/b/vendor/preact.mjs".to_string(),
            ),
            (
                "preact/hooks".to_string(),
                "/assets/b/vendor/preact-hooks.mjs".to_string(),
            ),
        ];
        let src = "import{options as n}from\"preact\";\nimport { useState } from 'preact/hooks';\nimport { x } from \"./preact.js\";";
        let got = rewrite_imports(src, &specs);
        assert_eq!(
            got,
            "import{options as n}from\"/assets/b/vendor/preact.mjs\";\nimport { useState } from '/assets/b/vendor/preact-hooks.mjs';\nimport { x } from \"./preact.js\";"
        );
    }

    #[test]
    fn served_files_name_no_bare_specifier_and_no_inline_script() {
        let console = Console::load(files::FILES);
        let index = String::from_utf8_lossy(&console.index.body).into_owned();
        assert!(index.contains(&format!("/assets/{}/app/main.js", console.build)));
        assert!(!index.contains("{{assets}}"));
        // Every <script> names a src: the CSP allows no inline script.
        for chunk in index.split("<script").skip(1) {
            let tag = chunk.split('>').next().unwrap_or_default();
            assert!(tag.contains("src="), "inline script in index.html: {chunk}");
        }
        let manifest = String::from_utf8_lossy(file("vendor/MANIFEST")).into_owned();
        for (path, asset) in &console.assets {
            if !asset.content_type.starts_with("text/javascript") {
                continue;
            }
            let text = String::from_utf8_lossy(&asset.body);
            for e in manifest_entries(&manifest).filter(|e| e.specifier != "-") {
                for q in ['"', '\''] {
                    let bare = format!("from{q}{}{q}", e.specifier);
                    let spaced = format!("from {q}{}{q}", e.specifier);
                    assert!(
                        !text.contains(&bare) && !text.contains(&spaced),
                        "{path} still imports {:?}",
                        e.specifier
                    );
                }
            }
        }
    }

    #[test]
    fn compressed_bodies_decode_to_the_file() {
        use std::io::Read as _;
        let asset = Asset::new(b"console ".repeat(500), "text/plain; charset=utf-8");
        let (enc, gz) = asset.encoded("gzip");
        assert_eq!(enc, Some("gzip"));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut plain)
            .expect("gzip decodes");
        assert_eq!(plain, asset.body);
        let (enc, br) = asset.encoded("br");
        assert_eq!(enc, Some("br"));
        let mut plain = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut plain).expect("brotli decodes");
        assert_eq!(plain, asset.body);
    }
}
