//! The snap part of `airlock verify`, as snapd asks: for every released channel the info
//! call lists it, a refresh `download` action answers it, the assertions the store serves
//! for that revision verify up to a root the site trusts and bind the advertised SHA3-384
//! and size, and the blob is served whole (a random sample, or all with `--full`).

use reqwest::Url;
use serde_json::{Value, json};

use super::{Findings, Report, Run};
use crate::hint::Chain;
use crate::net::Checksum;
use crate::site::Site;
use crate::snap::catalog::{Catalog, Release};
use crate::snap::trust::Trust;

const AREA: &str = "snaps";

/// Each released channel as snapd asks for it: info → refresh → assertions; then a sample
/// of the blobs, fetched whole.
pub(super) async fn check(site: &Site, run: &Run<'_>, report: &mut Report) {
    let Some((catalog, trust)) = load(site, report) else {
        return;
    };
    let mut findings = Findings::new(AREA);
    let mut blobs = Vec::new();
    for (name, entry) in &catalog.snaps {
        for release in &entry.releases {
            let asked = Asked::new(name, release);
            if let Some(blob) = asked.check(run, &trust, &mut findings).await {
                blobs.push(blob);
            }
        }
    }
    blobs.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    blobs.dedup_by(|a, b| a.1 == b.1);
    run.depth.sample(&mut blobs);
    findings.served_whole(run, blobs, "snaps").await;
    findings.report(report);
}

/// The catalog and the roots the assertions must verify up to; none (with the reason in
/// `report`) when either cannot be read, or the store has no snap.
fn load(site: &Site, report: &mut Report) -> Option<(Catalog, Trust)> {
    let catalog = match Catalog::load(site.data_dir()) {
        Ok(c) => c,
        Err(e) => {
            report.broken(AREA, "the snap catalog", "readable", Chain(&e).to_string());
            return None;
        }
    };
    if catalog.snaps.is_empty() {
        return None;
    }
    match crate::snap::site_trust(site) {
        Ok(trust) => Some((catalog, trust)),
        Err(e) => {
            report.broken(
                AREA,
                "[snaps] trusted_keys",
                "readable",
                Chain(&e).to_string(),
            );
            None
        }
    }
}

/// One released channel of one snap, as a device of its architecture asks for it.
struct Asked<'a> {
    name: &'a str,
    channel: String,
    /// `all` is asked for as amd64, as a device has an architecture.
    arch: &'a str,
    revision: u64,
    /// How failures name it: `NAME CHANNEL ARCH`.
    what: String,
}

/// What a refresh `download` action advertises.
struct Download {
    url: String,
    sha3: [u8; 48],
    size: u64,
    revision: Value,
}

impl<'a> Asked<'a> {
    fn new(name: &'a str, release: &'a Release) -> Asked<'a> {
        let arch = if release.architecture == "all" {
            "amd64"
        } else {
            &release.architecture
        };
        let channel = release.channel();
        Asked {
            what: format!("{name} {channel} {arch}"),
            name,
            channel,
            arch,
            revision: release.revision,
        }
    }

    /// Runs the checks snapd's calls make; returns the blob to fetch (how failures name
    /// it, its URL, size and digest) when the store advertises one.
    async fn check(
        &self,
        run: &Run<'_>,
        trust: &Trust,
        findings: &mut Findings<'_>,
    ) -> Option<(String, Url, u64, Checksum)> {
        self.listed(run, findings).await?;
        let download = self.download(run, findings).await?;
        findings.count();
        self.assertions(run, trust, &download, findings).await;
        if download.revision.as_u64() != Some(self.revision) {
            findings.fail(
                format!("{}: refresh download action", self.what),
                format!("revision {}", self.revision),
                download.revision.to_string(),
            );
        }
        match Url::parse(&download.url) {
            Ok(url) => Some((
                format!("{}: {url}", self.what),
                url,
                download.size,
                Checksum::Sha3_384(download.sha3),
            )),
            Err(e) => {
                findings.fail(
                    format!("{}: download url", self.what),
                    "a URL",
                    format!("{:?}: {e}", download.url),
                );
                None
            }
        }
    }

    /// The info call lists the channel in its channel map. None when the call cannot be
    /// made at all (the checks of this channel stop).
    async fn listed(&self, run: &Run<'_>, findings: &mut Findings<'_>) -> Option<()> {
        findings.count();
        let info_url = run
            .base
            .join(&format!(
                "v2/snaps/info/{}?architecture={}",
                self.name, self.arch
            ))
            .ok()?;
        let listed = match run.http.get_small(&info_url, 16 << 20).await {
            Ok(Some(body)) => serde_json::from_slice::<Value>(&body)
                .ok()
                .is_some_and(|info| {
                    info["channel-map"].as_array().is_some_and(|m| {
                        m.iter()
                            .any(|c| c["channel"]["name"] == self.channel.as_str())
                    })
                }),
            _ => false,
        };
        if !listed {
            findings.fail(
                info_url.as_str(),
                format!("{} in the channel map", self.channel),
                "not listed",
            );
        }
        Some(())
    }

    /// A refresh `download` action for the channel answers with a URL, a SHA3-384 and a
    /// size; none (a failure told) otherwise.
    async fn download(&self, run: &Run<'_>, findings: &mut Findings<'_>) -> Option<Download> {
        findings.count();
        let refresh_url = run.base.join("v2/snaps/refresh").ok()?;
        let body = json!({"context": [], "actions": [{"action": "download", "instance-key": "verify-1", "name": self.name, "channel": self.channel, "epoch": null}]}).to_string();
        let headers = [
            ("Snap-Device-Architecture", self.arch),
            ("Snap-Device-Series", "16"),
        ];
        let answer = run
            .http
            .request_small(&refresh_url, &headers, Some(body.as_bytes()), 16 << 20)
            .await;
        let action = format!("{}: refresh download action", self.what);
        let snap = match answer
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(a) if a["results"][0]["result"] == "download" => a["results"][0]["snap"].clone(),
            other => {
                findings.fail(
                    action,
                    "a download result",
                    other.map_or("no answer".into(), |a| a.to_string()),
                );
                return None;
            }
        };
        let (Some(url), Some(hex_digest), Some(size)) = (
            snap["download"]["url"].as_str(),
            snap["download"]["sha3-384"].as_str(),
            snap["download"]["size"].as_u64(),
        ) else {
            findings.fail(action, "download url, sha3-384, size", snap.to_string());
            return None;
        };
        let mut sha3 = [0u8; 48];
        if hex::decode_to_slice(hex_digest, &mut sha3).is_err() {
            findings.fail(format!("{}: download", self.what), "a SHA3-384", hex_digest);
            return None;
        }
        Some(Download {
            url: url.to_string(),
            sha3,
            size,
            revision: snap["revision"].clone(),
        })
    }

    /// The chain snapd checks before it installs: the store serves a snap-revision for the
    /// advertised digest and size, signed up to a root the site trusts.
    async fn assertions(
        &self,
        run: &Run<'_>,
        trust: &Trust,
        download: &Download,
        findings: &mut Findings<'_>,
    ) {
        let what = format!("{}: assertions", self.what);
        let size = download.size;
        let fetched =
            crate::snap::fetch::fetch_assertions(run.http, run.base, trust, &download.sha3).await;
        let assertions = match fetched {
            Ok(assertions) => assertions,
            Err(e) => return findings.fail(what, "served", Chain(&e).to_string()),
        };
        let pool: Vec<&crate::snap::assertion::Assertion> = assertions.iter().collect();
        let revision = assertions.iter().find(|a| a.kind() == "snap-revision");
        let problem = match revision {
            None => Some("no snap-revision".to_string()),
            Some(r) if r.integer("snap-size").ok().flatten() != Some(size) => Some(format!(
                "its snap-size is {}",
                r.header("snap-size").unwrap_or("missing")
            )),
            Some(r) => trust.verify(r, &pool).err().map(|e| Chain(&e).to_string()),
        };
        if let Some(problem) = problem {
            findings.fail(
                what,
                format!("a snap-revision for {size} bytes, signed up to a trusted root"),
                problem,
            );
        }
    }
}
