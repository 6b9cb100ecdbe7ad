//! Verbatim mirrors: the upstream's own signed files, and every file they list that a client
//! of the mirrored components and architectures can ask for, each checked against the list.

use std::sync::Arc;

use super::upstream::{self, Context, UpstreamSuite, fetch_listed};
use super::{Index, MirrorError};
use crate::config::AptMirrorConfig;
use crate::net::NetError;
use crate::storage::{Manifest, Sha256, Staging};

/// Adds one suite of a verbatim mirror to `manifest`: InRelease (and Release, Release.gpg
/// when they verify too), the listed files and their by-hash names.
pub async fn add_suite(
    context: &Arc<Context>,
    config: &AptMirrorConfig,
    suite: &UpstreamSuite,
    suite_index: usize,
    indices: &[Index],
    staging: &Staging,
    manifest: &mut Manifest,
) -> Result<(), MirrorError> {
    let dists = format!("dists/{}", suite.suite);
    for (name, bytes) in [
        ("InRelease", &suite.inrelease),
        ("Release", &suite.release_file),
        ("Release.gpg", &suite.release_gpg),
    ] {
        if let Some(bytes) = bytes {
            manifest.add(
                &format!("{dists}/{name}"),
                staging.add_bytes(bytes)?,
                bytes.len() as u64,
            );
        }
    }
    let mine: Vec<&Index> = indices.iter().filter(|i| i.suite == suite_index).collect();
    for (path, listed) in suite
        .release
        .files
        .iter()
        .filter(|(p, _)| wanted(config, p))
    {
        let Some(sha256) = listed.sha256 else {
            continue;
        };
        // Indices: their bytes are read again, so a copy dropped to the bucket does not count.
        let have = context.store.has_bytes(&sha256) || staging.contains(&sha256);
        if !have && !staged_from_index(&mine, path, sha256, staging)? {
            match fetch_listed(&context.http, &context.store, &context.base, suite, path).await {
                Ok((partial, _)) => staging.adopt(partial, sha256),
                Err(MirrorError::Net(NetError::Status { status, url }))
                    if status == reqwest::StatusCode::NOT_FOUND =>
                {
                    derive_plain(context, suite, path, sha256, staging)
                        .await
                        .map_err(|_| MirrorError::Upstream {
                            url,
                            reason:
                                "listed in the signed Release, but the upstream does not serve it"
                                    .into(),
                        })?;
                }
                Err(e) => return Err(e),
            }
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let in_dir = |kind: &str, digest: &str| {
            if dir.is_empty() {
                format!("{dists}/by-hash/{kind}/{digest}")
            } else {
                format!("{dists}/{dir}/by-hash/{kind}/{digest}")
            }
        };
        manifest.add(&format!("{dists}/{path}"), sha256, listed.size);
        manifest.add(&in_dir("SHA256", &sha256.to_hex()), sha256, listed.size);
        if let Some(sha512) = listed.sha512 {
            manifest.add(&in_dir("SHA512", &hex::encode(sha512)), sha256, listed.size);
        }
    }
    Ok(())
}

/// The uncompressed Packages of an index read during this sync: already checked, staged from
/// its temp copy instead of fetched again.
fn staged_from_index(
    indices: &[&Index],
    path: &str,
    sha256: Sha256,
    staging: &Staging,
) -> Result<bool, MirrorError> {
    let Some(index) = indices
        .iter()
        .find(|i| i.plain.sha256 == Some(sha256) && path.ends_with("/Packages"))
    else {
        return Ok(false);
    };
    let mut file =
        index
            .plain
            .file
            .reopen()
            .map_err(|source| crate::storage::StorageError::Read {
                path: index.plain.file.path().to_path_buf(),
                source,
            })?;
    staging.add_reader(index.plain.file.path(), &mut file)?;
    Ok(true)
}

/// Upstreams list uncompressed indices they do not serve (Ubuntu does): make one from a listed
/// compressed sibling, checked against the digest the Release gives.
async fn derive_plain(
    context: &Arc<Context>,
    suite: &UpstreamSuite,
    path: &str,
    sha256: Sha256,
    staging: &Staging,
) -> Result<(), MirrorError> {
    let sibling = [".xz", ".gz"]
        .iter()
        .map(|ext| format!("{path}{ext}"))
        .find(|p| {
            suite
                .release
                .files
                .get(p)
                .is_some_and(|f| f.sha256.is_some())
        })
        .ok_or_else(|| MirrorError::upstream(&context.base, "no compressed sibling"))?;
    let (compressed, _) = fetch_listed(
        &context.http,
        &context.store,
        &context.base,
        suite,
        &sibling,
    )
    .await?;
    let listed = suite.release.files.get(path).cloned();
    let url = upstream::url(&context.base, &format!("dists/{}/{sibling}", suite.suite));
    let tmp = context.store.temp_dir();
    let plain = tokio::task::spawn_blocking(move || {
        upstream::decompress(
            &compressed,
            &sibling,
            listed.as_ref(),
            true,
            &tmp,
            &url,
            |text| std::io::copy(text, &mut std::io::sink()),
        )
    })
    .await
    .map_err(|e| MirrorError::task(&context.base, e))??;
    let (plain, _) = plain;
    debug_assert_eq!(plain.sha256, Some(sha256));
    let mut file = plain
        .file
        .reopen()
        .map_err(|source| crate::storage::StorageError::Read {
            path: plain.file.path().to_path_buf(),
            source,
        })?;
    staging.add_reader(plain.file.path(), &mut file)?;
    Ok(())
}

/// Whether a client of the mirrored components and architectures may ask for a listed file.
/// Installer indices (udebs) and diffs (pdiffs, whose patches the Release does not list) are
/// left out: apt asks for neither unless told to, and falls back to whole indices.
fn wanted(config: &AptMirrorConfig, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| *p == "debian-installer" || p.ends_with(".diff"))
    {
        return false;
    }
    if parts.contains(&"source") && !config.sources {
        return false;
    }
    if parts.len() > 1 && !config.components.iter().any(|c| c.as_str() == parts[0]) {
        return false;
    }
    match architecture_of(path) {
        Some(arch) => arch == "all" || config.architectures.iter().any(|a| a.as_str() == arch),
        None => true,
    }
}

/// The architecture a listed file is for, from Debian's naming: `binary-ARCH/`,
/// `Contents-[udeb-]ARCH`, `Components-ARCH` (DEP-11), `Commands-ARCH` (command-not-found).
fn architecture_of(path: &str) -> Option<&str> {
    for part in path.split('/') {
        if let Some(arch) = part.strip_prefix("binary-") {
            return Some(arch);
        }
        for prefix in ["Contents-udeb-", "Contents-", "Components-", "Commands-"] {
            if let Some(rest) = part.strip_prefix(prefix) {
                return Some(rest.split('.').next().unwrap_or(rest));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_of_listed_files() {
        for (path, arch) in [
            ("main/binary-amd64/Packages.xz", Some("amd64")),
            ("Contents-arm64.gz", Some("arm64")),
            ("main/Contents-udeb-amd64.gz", Some("amd64")),
            ("main/dep11/Components-amd64.yml.gz", Some("amd64")),
            ("main/cnf/Commands-riscv64.xz", Some("riscv64")),
            ("main/i18n/Translation-en.bz2", None),
            ("main/dep11/icons-64x64.tar.gz", None),
        ] {
            assert_eq!(architecture_of(path), arch, "{path}");
        }
    }
}
