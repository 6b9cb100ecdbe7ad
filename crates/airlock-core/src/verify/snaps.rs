//! The snap part of `airlock verify`, as snapd asks: for every released channel the info
//! call lists it, a refresh `download` action answers it, the assertions the store serves
//! for that revision verify up to a root the site trusts and bind the advertised SHA3-384
//! and size, and the blob is served whole (a random sample, or all with `--full`).

use reqwest::Url;
use serde_json::{Value, json};

use super::{Failure, Report, Run, fetch_all};
use crate::net::Checksum;
use crate::site::Site;
use crate::snap::catalog::Catalog;

const AREA: &str = "snaps";

fn failure(
    what: impl Into<String>,
    expected: impl Into<String>,
    got: impl Into<String>,
) -> Failure {
    Failure::new(AREA, what, expected, got)
}

pub(super) async fn check(site: &Site, run: &Run<'_>, report: &mut Report) {
    let (http, base, depth) = (run.http, run.base, run.depth);
    let catalog = match Catalog::load(site.data_dir()) {
        Ok(c) => c,
        Err(e) => {
            report.broken(AREA, "the snap catalog", "readable", e.to_string());
            return;
        }
    };
    if catalog.snaps.is_empty() {
        return;
    }
    let trust = match crate::snap::site_trust(site) {
        Ok(t) => t,
        Err(e) => {
            report.broken(AREA, "[snaps] trusted_keys", "readable", e.to_string());
            return;
        }
    };
    let (mut checked, mut failures, mut blobs) = (0, Vec::new(), Vec::new());
    for (name, entry) in &catalog.snaps {
        for release in &entry.releases {
            let arch = if release.architecture == "all" {
                "amd64"
            } else {
                &release.architecture
            };
            let channel = release.channel();
            let what = format!("{name} {channel} {arch}");
            checked += 1;
            let Ok(info_url) = base.join(&format!("v2/snaps/info/{name}?architecture={arch}"))
            else {
                continue;
            };
            let listed = match http.get_small(&info_url, 16 << 20).await {
                Ok(Some(body)) => serde_json::from_slice::<Value>(&body)
                    .ok()
                    .is_some_and(|info| {
                        info["channel-map"].as_array().is_some_and(|m| {
                            m.iter().any(|c| c["channel"]["name"] == channel.as_str())
                        })
                    }),
                _ => false,
            };
            if !listed {
                failures.push(failure(
                    info_url.as_str(),
                    format!("{channel} in the channel map"),
                    "not listed",
                ));
            }
            checked += 1;
            let Ok(refresh_url) = base.join("v2/snaps/refresh") else {
                continue;
            };
            let body = json!({"context": [], "actions": [{"action": "download", "instance-key": "verify-1", "name": name, "channel": channel, "epoch": null}]}).to_string();
            let headers = [
                ("Snap-Device-Architecture", arch),
                ("Snap-Device-Series", "16"),
            ];
            let answer = http
                .request_small(&refresh_url, &headers, Some(body.as_bytes()), 16 << 20)
                .await;
            let snap = match answer
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                Some(a) if a["results"][0]["result"] == "download" => {
                    a["results"][0]["snap"].clone()
                }
                other => {
                    failures.push(failure(
                        format!("{what}: refresh download action"),
                        "a download result",
                        other.map_or("no answer".into(), |a| a.to_string()),
                    ));
                    continue;
                }
            };
            let (Some(url), Some(hex_digest), Some(size)) = (
                snap["download"]["url"].as_str(),
                snap["download"]["sha3-384"].as_str(),
                snap["download"]["size"].as_u64(),
            ) else {
                failures.push(failure(
                    format!("{what}: refresh download action"),
                    "download url, sha3-384, size",
                    snap.to_string(),
                ));
                continue;
            };
            let mut sha3 = [0u8; 48];
            if hex::decode_to_slice(hex_digest, &mut sha3).is_err() {
                failures.push(failure(
                    format!("{what}: download"),
                    "a SHA3-384",
                    hex_digest,
                ));
                continue;
            }
            // The chain snapd checks before it installs.
            checked += 1;
            match crate::snap::fetch::fetch_assertions(http, base, &trust, &sha3).await {
                Ok(assertions) => {
                    let pool: Vec<&crate::snap::assertion::Assertion> = assertions.iter().collect();
                    let revision = assertions.iter().find(|a| a.kind() == "snap-revision");
                    let problem = match revision {
                        None => Some("no snap-revision".to_string()),
                        Some(r) if r.integer("snap-size").ok().flatten() != Some(size) => {
                            Some(format!(
                                "its snap-size is {}",
                                r.header("snap-size").unwrap_or("missing")
                            ))
                        }
                        Some(r) => trust.verify(r, &pool).err().map(|e| e.to_string()),
                    };
                    if let Some(problem) = problem {
                        failures.push(failure(
                            format!("{what}: assertions"),
                            format!(
                                "a snap-revision for {size} bytes, signed up to a trusted root"
                            ),
                            problem,
                        ));
                    }
                }
                Err(e) => failures.push(failure(
                    format!("{what}: assertions"),
                    "served",
                    e.to_string(),
                )),
            }
            if snap["revision"].as_u64() != Some(release.revision) {
                failures.push(failure(
                    format!("{what}: refresh download action"),
                    format!("revision {}", release.revision),
                    snap["revision"].to_string(),
                ));
            }
            match Url::parse(url) {
                Ok(url) => blobs.push((what, url, size, sha3)),
                Err(e) => failures.push(failure(
                    format!("{what}: download url"),
                    "a URL",
                    format!("{url:?}: {e}"),
                )),
            }
        }
    }
    blobs.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    blobs.dedup_by(|a, b| a.1 == b.1);
    depth.sample(&mut blobs);
    let items = blobs
        .into_iter()
        .map(|(what, url, size, sha3)| ((what, size, sha3), url, size, Checksum::Sha3_384(sha3)))
        .collect();
    for ((what, size, sha3), url, result) in fetch_all(http, items, "snaps", run.reporter).await {
        checked += 1;
        if let Err(e) = result {
            failures.push(failure(
                format!("{what}: {url}"),
                format!("{size} bytes, sha3-384 {}", hex::encode(sha3)),
                e,
            ));
        }
    }
    report.area(AREA, checked, failures, Vec::new());
}
