//! The apt part of `airlock verify`, over HTTP as apt-get does it: each published suite's
//! InRelease signed by the key clients are given, not expired (and not about to), every file
//! it lists served with the listed size and SHA-256, and the pool files its Packages indices
//! name (a random sample, or all with `--full`) served whole.

use rand::seq::SliceRandom;
use reqwest::Url;

use super::{Failure, Report};
use crate::apt::release::ReleaseFile;
use crate::config::MirrorMode;
use crate::net::{Checksum, Http};
use crate::openpgp::Keyring;
use crate::site::Site;
use crate::storage::TreeSet;

/// How many pool files each suite is sampled for, unless `full`.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub full: bool,
    pub sample: usize,
    /// A Valid-Until closer than this is reported as a warning.
    pub horizon: jiff::SignedDuration,
}

fn failure(
    area: &str,
    what: impl Into<String>,
    expected: impl Into<String>,
    got: impl Into<String>,
) -> Failure {
    Failure {
        area: area.to_string(),
        what: what.into(),
        expected: expected.into(),
        got: got.into(),
    }
}

/// Checks every published apt tree of the site through `base` (the server's root URL).
pub async fn check(site: &Site, http: &Http, base: &Url, depth: Depth, report: &mut Report) {
    let data = site.data_dir();
    let mut names: Vec<String> = std::fs::read_dir(data.join("public/apt"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let site_keyring = match site.signing_key() {
        Ok(key) => Keyring::new(vec![key.public_key().clone()]),
        Err(e) => {
            report.area(
                "apt",
                1,
                vec![failure("apt", "the site key", "readable", e.to_string())],
                Vec::new(),
            );
            return;
        }
    };
    for name in names {
        let area = format!("apt/{name}");
        let verbatim = site
            .config
            .apt
            .mirrors
            .iter()
            .find(|m| m.name.as_str() == name && m.mode == MirrorMode::Verbatim);
        let keyring = match verbatim {
            Some(m) => match Keyring::load(&m.keyring) {
                Ok(k) => k,
                Err(e) => {
                    report.area(
                        &area,
                        1,
                        vec![failure(
                            &area,
                            "the upstream keyring",
                            "readable",
                            e.to_string(),
                        )],
                        Vec::new(),
                    );
                    continue;
                }
            },
            None => site_keyring.clone(),
        };
        let manifest = match TreeSet::new(data, "apt", &name).current() {
            Ok(Some(m)) => m,
            _ => continue,
        };
        let suites: Vec<String> = manifest
            .entries
            .keys()
            .filter_map(|p| p.strip_prefix("dists/")?.strip_suffix("/InRelease"))
            .map(str::to_string)
            .collect();
        let Ok(tree) = base.join(&format!("apt/{name}/")) else {
            continue;
        };
        let (mut checked, mut failures, mut warnings) = (0, Vec::new(), Vec::new());
        for suite in suites {
            check_suite(
                http,
                &tree,
                &area,
                &suite,
                &keyring,
                depth,
                &mut checked,
                &mut failures,
                &mut warnings,
            )
            .await;
        }
        report.area(&area, checked, failures, warnings);
    }
}

#[allow(clippy::too_many_arguments)]
async fn check_suite(
    http: &Http,
    tree: &Url,
    area: &str,
    suite: &str,
    keyring: &Keyring,
    depth: Depth,
    checked: &mut usize,
    failures: &mut Vec<Failure>,
    warnings: &mut Vec<Failure>,
) {
    let Ok(dists) = tree.join(&format!("dists/{suite}/")) else {
        return;
    };
    let inrelease = dists.join("InRelease").expect("a plain name joins");
    *checked += 1;
    let document = match http.get_small(&inrelease, 64 << 20).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            failures.push(failure(
                area,
                inrelease.as_str(),
                "a signed InRelease",
                "404 Not Found",
            ));
            return;
        }
        Err(e) => {
            failures.push(failure(
                area,
                inrelease.as_str(),
                "a signed InRelease",
                e.to_string(),
            ));
            return;
        }
    };
    let text = String::from_utf8_lossy(&document);
    let release = match keyring
        .verify_cleartext(&text, inrelease.as_str())
        .map_err(|e| e.to_string())
        .and_then(|v| ReleaseFile::parse(&v.text))
    {
        Ok(r) => r,
        Err(e) => {
            failures.push(failure(
                area,
                inrelease.as_str(),
                "signed by the key clients are given",
                e,
            ));
            return;
        }
    };
    let now = jiff::Timestamp::now();
    if let Some(date) = release
        .date
        .filter(|d| *d > now + jiff::SignedDuration::from_mins(5))
    {
        failures.push(failure(
            area,
            inrelease.as_str(),
            format!("a Date before now ({now})"),
            format!("dated {date}: apt refuses it as not valid yet; check the clocks"),
        ));
    }
    if let Some(until) = release.valid_until {
        if until < now {
            failures.push(failure(
                area,
                inrelease.as_str(),
                "Valid-Until in the future",
                format!("expired on {until}: apt refuses this suite; publish again"),
            ));
        } else if until < now + depth.horizon {
            warnings.push(failure(
                area,
                inrelease.as_str(),
                format!("Valid-Until beyond {}", now + depth.horizon),
                format!("expires on {until}: publish before then, or every install stops"),
            ));
        }
    }

    // Every file the Release lists, with its size and digest, as apt fetches them.
    let temp = tempfile::tempdir().expect("a temp folder");
    let mut listed = tokio::task::JoinSet::new();
    for (i, (path, file)) in release.files.iter().enumerate() {
        let Some(sha256) = file.sha256 else { continue };
        let Ok(url) = dists.join(path) else { continue };
        let (http, partial, size) = (http.clone(), temp.path().join(i.to_string()), file.size);
        listed.spawn(async move {
            let result = http
                .download_checked(&url, size, Checksum::Sha256(sha256), &partial, None)
                .await;
            let _ = std::fs::remove_file(&partial);
            (url, size, sha256, result)
        });
    }
    while let Some(Ok((url, size, sha256, result))) = listed.join_next().await {
        *checked += 1;
        if let Err(e) = result {
            failures.push(failure(
                area,
                url.as_str(),
                format!("{size} bytes, sha256 {sha256}"),
                e.to_string(),
            ));
        }
    }

    // The pool files the Packages indices name.
    let mut pool: Vec<(String, u64, crate::storage::Sha256)> = Vec::new();
    for (path, file) in &release.files {
        let plain = path.ends_with("/Packages") && path.contains("/binary-");
        let Some(sha256) = file.sha256.filter(|_| plain) else {
            continue;
        };
        let Ok(url) = dists.join(path) else { continue };
        let local = temp.path().join("Packages");
        if http
            .download_checked(&url, file.size, Checksum::Sha256(sha256), &local, None)
            .await
            .is_err()
        {
            continue; // already reported above
        }
        match std::fs::File::open(&local)
            .map(std::io::BufReader::new)
            .map_err(|e| e.to_string())
            .and_then(|mut r| crate::apt::index::read_packages(&mut r).map_err(|e| e.to_string()))
        {
            Ok(records) => pool.extend(
                records
                    .iter()
                    .map(|r| (r.filename().to_string(), r.size, r.sha256)),
            ),
            Err(e) => failures.push(failure(area, url.as_str(), "a Packages index", e)),
        }
    }
    pool.sort();
    pool.dedup();
    if !depth.full {
        pool.shuffle(&mut rand::thread_rng());
        pool.truncate(depth.sample);
    }
    let mut downloads = tokio::task::JoinSet::new();
    for (i, (filename, size, sha256)) in pool.into_iter().enumerate() {
        let Ok(url) = tree.join(&filename) else {
            continue;
        };
        let (http, partial) = (http.clone(), temp.path().join(format!("pool-{i}")));
        downloads.spawn(async move {
            let result = http
                .download_checked(&url, size, Checksum::Sha256(sha256), &partial, None)
                .await;
            let _ = std::fs::remove_file(&partial);
            (url, size, sha256, result)
        });
    }
    while let Some(Ok((url, size, sha256, result))) = downloads.join_next().await {
        *checked += 1;
        if let Err(e) = result {
            failures.push(failure(
                area,
                url.as_str(),
                format!("{size} bytes, sha256 {sha256}"),
                e.to_string(),
            ));
        }
    }
}
