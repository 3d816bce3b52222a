//! Building the servers the bench runs, and finding their executables: this
//! project's example servers in the parent workspace, the peers in this one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Executables by binary name (`server-axum`, `peer-tower-sessions`, …).
pub type Executables = HashMap<String, PathBuf>;

/// The bench crate's directory, which holds `Cargo.toml`.
pub fn bench_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds, in release, the example servers of the workspace above the
/// bench (`cargo build --release -p examples --bins`) and this crate's own
/// binaries, and returns where cargo put each executable.
pub fn build() -> anyhow::Result<Executables> {
    let parent = bench_dir()
        .parent()
        .context("the bench crate has no parent directory")?;
    let mut executables = cargo_build(&parent.join("Cargo.toml"), &["-p", "examples"])?;
    executables.extend(cargo_build(&bench_dir().join("Cargo.toml"), &[])?);
    Ok(executables)
}

/// `cargo build --release --bins` for one manifest; cargo's progress goes to
/// the terminal, its JSON messages name the executables. cargo's own
/// `CARGO` (set by `cargo run`) is used, so the same toolchain builds all.
fn cargo_build(manifest: &Path, extra: &[&str]) -> anyhow::Result<Executables> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building {} (release)", manifest.display());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .args(extra)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not run {}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!("building {} failed ({})", manifest.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_string();
            let path = PathBuf::from(message["executable"].as_str()?);
            Some((name, path))
        })
        .collect())
}
