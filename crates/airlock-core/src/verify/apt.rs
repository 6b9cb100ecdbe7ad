//! The apt part of `airlock verify`, over HTTP as apt-get does it: each published suite's
//! InRelease (or Release and Release.gpg) signed by the key clients are given, dated sanely,
//! not expired (and not about to), every index it lists served with the listed size and
//! SHA-256 under its name and its by-hash name, and the pool files its Packages indices name
//! (a random sample, or all with `--full`) served whole.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Url;

use super::{Failure, Findings, Report, Run, fetch_all};
use crate::apt::index::decompressed;
use crate::apt::release::ReleaseFile;
use crate::config::MirrorMode;
use crate::hint::Chain;
use crate::net::Checksum;
use crate::openpgp::{Keyring, cleartext_body};
use crate::site::Site;
use crate::storage::{Sha256, TreeSet};

/// Release files are small; Ubuntu's largest are under 1 MB.
const RELEASE_LIMIT: u64 = 64 << 20;

/// Whose signature clients check on a tree: the site's, an upstream's (verbatim), or none
/// (a verbatim mirror of an unsigned upstream, `allow_unsigned`).
enum Signer {
    Keyring(Keyring),
    Unsigned,
}

pub(super) async fn check(site: &Site, run: &Run<'_>, report: &mut Report) {
    let data = site.data_dir();
    // An unreadable site key is reported by the site checks; its trees cannot be checked.
    let site_keyring = site
        .signing_key()
        .ok()
        .map(|k| Keyring::new(vec![k.public_key().clone()]));
    for name in TreeSet::published_apt_names(data) {
        let area = format!("apt/{name}");
        let verbatim = site
            .config
            .apt
            .mirrors
            .iter()
            .find(|m| m.name.as_str() == name && m.mode == MirrorMode::Verbatim);
        let signer = match verbatim {
            Some(m) if m.keyring.is_empty() => Signer::Unsigned,
            Some(m) => match Keyring::load(&m.keyring) {
                Ok(k) => Signer::Keyring(k),
                Err(e) => {
                    report.broken(
                        &area,
                        "the upstream keyring",
                        "readable",
                        Chain(&e).to_string(),
                    );
                    continue;
                }
            },
            None => match &site_keyring {
                Some(k) => Signer::Keyring(k.clone()),
                None => continue,
            },
        };
        let manifest = match TreeSet::apt(data, &name).current() {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                report.broken(
                    &area,
                    "the tree's manifest",
                    "readable",
                    Chain(&e).to_string(),
                );
                continue;
            }
        };
        // Suites by their signed Release: InRelease, or Release (+ Release.gpg) alone.
        let suites: BTreeSet<String> = manifest
            .entries
            .keys()
            .filter_map(|p| {
                let rest = p.strip_prefix("dists/")?;
                rest.strip_suffix("/InRelease")
                    .or_else(|| rest.strip_suffix("/Release"))
            })
            .filter(|s| {
                !s.contains("/by-hash/") && !s.contains("/binary-") && !s.contains("/source")
            })
            .map(str::to_string)
            .collect();
        let Ok(tree) = run.base.join(&format!("apt/{name}/")) else {
            continue;
        };
        let mut suite_check = SuiteCheck {
            run,
            findings: Findings::new(&area),
        };
        for suite in suites {
            let published = |path: &str| {
                manifest
                    .entries
                    .contains_key(&format!("dists/{suite}/{path}"))
            };
            // A verbatim mirror keeps the upstream's Release, which lists components and
            // architectures it was not asked to mirror: apt fetches only what it is set up for.
            let listed_filter: &dyn Fn(&str) -> bool = if verbatim.is_some() {
                &published
            } else {
                &|_| true
            };
            suite_check
                .suite(
                    &tree,
                    &suite,
                    &signer,
                    published("InRelease"),
                    listed_filter,
                )
                .await;
        }
        suite_check.findings.report(report);
    }
}

struct SuiteCheck<'a> {
    run: &'a Run<'a>,
    findings: Findings<'a>,
}

impl SuiteCheck<'_> {
    async fn get(&mut self, url: &Url, what: &str) -> Option<bytes::Bytes> {
        match self.run.http.get_small(url, RELEASE_LIMIT).await {
            Ok(Some(d)) => Some(d),
            Ok(None) => {
                self.findings.fail(url.as_str(), what, "404 Not Found");
                None
            }
            Err(e) => {
                self.findings
                    .fail(url.as_str(), what, Chain(&e).to_string());
                None
            }
        }
    }

    /// The signed Release text of a suite, as apt reads it.
    async fn release(
        &mut self,
        dists: &Url,
        signer: &Signer,
        inrelease: bool,
    ) -> Option<(Url, ReleaseFile)> {
        self.findings.count();
        let (url, text) = if inrelease {
            let url = dists.join("InRelease").expect("a plain name joins");
            let document = self.get(&url, "a signed InRelease").await?;
            let text = String::from_utf8_lossy(&document).into_owned();
            let body = match signer {
                Signer::Keyring(k) => k.verify_cleartext(&text, url.as_str()).map(|v| v.text),
                Signer::Unsigned => cleartext_body(&text, url.as_str()),
            };
            match body {
                Ok(body) => (url, body),
                Err(e) => {
                    self.findings.fail(
                        url.as_str(),
                        "signed by the key clients are given",
                        Chain(&e).to_string(),
                    );
                    return None;
                }
            }
        } else {
            let url = dists.join("Release").expect("a plain name joins");
            let release = self.get(&url, "a Release").await?;
            if let Signer::Keyring(k) = signer {
                let gpg = dists.join("Release.gpg").expect("a plain name joins");
                let signature = self.get(&gpg, "the Release's signature").await?;
                if let Err(e) = k.verify_detached(&release, &signature, url.as_str()) {
                    self.findings.fail(
                        gpg.as_str(),
                        "signed by the key clients are given",
                        Chain(&e).to_string(),
                    );
                    return None;
                }
            }
            (url, String::from_utf8_lossy(&release).into_owned())
        };
        match ReleaseFile::parse(&text) {
            Ok(release) => Some((url, release)),
            Err(e) => {
                self.findings.fail(url.as_str(), "a Release apt reads", e);
                None
            }
        }
    }

    async fn suite(
        &mut self,
        tree: &Url,
        suite: &str,
        signer: &Signer,
        inrelease: bool,
        listed_filter: &dyn Fn(&str) -> bool,
    ) {
        let Ok(dists) = tree.join(&format!("dists/{suite}/")) else {
            return;
        };
        let Some((release_url, release)) = self.release(&dists, signer, inrelease).await else {
            return;
        };
        let now = jiff::Timestamp::now();
        if let Some(date) = release
            .date
            .filter(|d| *d > now + jiff::SignedDuration::from_mins(5))
        {
            self.findings.fail(
                release_url.as_str(),
                format!("a Date before now ({now})"),
                format!("dated {date}: apt refuses it as not valid yet; check the clocks"),
            );
        }
        if let Some(until) = release.valid_until {
            if until < now {
                self.findings.fail(
                    release_url.as_str(),
                    "Valid-Until in the future",
                    format!("expired on {until}: apt refuses this suite; publish again"),
                );
            } else if until < now + self.run.depth.horizon {
                let area = self.findings.area;
                self.findings.warnings.push(Failure::new(
                    area,
                    release_url.as_str(),
                    format!("Valid-Until beyond {}", now + self.run.depth.horizon),
                    format!("expires on {until}: publish before then, or every install stops"),
                ));
            }
        }

        // Every index the Release lists (and that clients fetch), under its name and, when
        // the Release says so, its by-hash name; Packages indices are kept to read.
        let mut pool: Vec<(String, u64, Sha256)> = Vec::new();
        let mut read_dirs: BTreeSet<&str> = BTreeSet::new();
        for (path, file) in &release.files {
            let Some(sha256) = file.sha256 else { continue };
            if !listed_filter(path) {
                continue;
            }
            let mut urls: Vec<Url> = dists.join(path).into_iter().collect();
            if release.acquire_by_hash {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let by_hash = if dir.is_empty() {
                    format!("by-hash/SHA256/{sha256}")
                } else {
                    format!("{dir}/by-hash/SHA256/{sha256}")
                };
                urls.extend(dists.join(&by_hash));
            }
            for (i, url) in urls.iter().enumerate() {
                self.findings.count();
                let local = self.run.scratch.join("index");
                if let Err(e) = self
                    .run
                    .http
                    .download_checked(url, file.size, Checksum::Sha256(sha256), &local, None)
                    .await
                {
                    self.findings.fail(
                        url.as_str(),
                        format!("{} bytes, sha256 {sha256}", file.size),
                        Chain(&e).to_string(),
                    );
                } else if i == 0
                    && is_packages(path)
                    && read_dirs.insert(path.rsplit_once('/').map_or("", |(d, _)| d))
                {
                    match read_pool(&local, path) {
                        Ok(files) => pool.extend(files),
                        Err(e) => self.findings.fail(url.as_str(), "a Packages index", e),
                    }
                }
                let _ = std::fs::remove_file(&local);
            }
        }

        // The pool files, as apt-get install fetches them.
        pool.sort();
        pool.dedup();
        let pool = self
            .run
            .seen
            .pick(pool, |(_, _, sha256)| *sha256, &self.run.depth);
        let items = pool
            .into_iter()
            .filter_map(|(filename, size, sha256)| {
                let url = tree.join(&filename).ok()?;
                Some(((size, sha256), url, size, Checksum::Sha256(sha256)))
            })
            .collect();
        for ((size, sha256), url, result) in fetch_all(
            self.run.http,
            items,
            &format!("{} pool files", self.findings.area),
            self.run.reporter,
        )
        .await
        {
            self.findings.count();
            if let Err(e) = result {
                self.run.seen.forget(&sha256);
                self.findings
                    .fail(url.as_str(), format!("{size} bytes, sha256 {sha256}"), e);
            }
        }
    }
}

/// `main/binary-amd64/Packages`, `.gz` or `.xz`: one form is enough to list the pool.
fn is_packages(path: &str) -> bool {
    path.contains("/binary-")
        && (path.ends_with("/Packages")
            || path.ends_with("/Packages.xz")
            || path.ends_with("/Packages.gz"))
}

/// The pool files a downloaded (and already checked) Packages index names.
fn read_pool(local: &Path, path: &str) -> Result<Vec<(String, u64, Sha256)>, String> {
    let file = std::fs::File::open(local).map_err(|e| Chain(&e).to_string())?;
    let mut reader = decompressed(path, file);
    let records =
        crate::apt::index::read_packages(&mut reader).map_err(|e| Chain(&e).to_string())?;
    Ok(records
        .iter()
        .map(|r| (r.filename().to_string(), r.size, r.sha256))
        .collect())
}
