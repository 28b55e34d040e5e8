//! Embeds the web console (`console/index.html`, `console/app/`, `console/vendor/`) into the
//! coordinator: a generated list of `include_bytes!`, so `cargo build` alone builds it and
//! rebuilds when any of those files changes. The tests, package.json and node_modules beside
//! them are for the test suite only and stay out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // Read at run time, not compiled in (`env!`): a build script compiled for one checkout
    // and reused from a shared build cache by another must list the other's files.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("console");
    let mut files = vec![root.join("index.html")];
    for dir in ["app", "vendor"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        walk(&root.join(dir), &mut files);
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("index.html").display()
    );
    files.sort();
    let mut out =
        String::from("/// Every embedded console file: its path under `console/` and its bytes.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("walked under root");
        let rel = rel.to_str().expect("console file names are UTF-8");
        // Relative to the crate, not this run's absolute path: a build cache shared by two
        // checkouts (CI's warm target dir) may reuse this output for the other one.
        let include = format!("/console/{rel}");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {include:?}))),"
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dest.join("console_files.rs"), out).expect("writing OUT_DIR/console_files.rs");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}
