//! The store's state: snaps, their revisions, channel maps and the assertions that prove
//! them. One JSON file (`data/state/snaps/catalog.json`) replaced atomically; blobs (snaps,
//! icons, assertions) live in the content store and are stored before the catalog names them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SnapError;
use super::snapfile::SnapMeta;

pub const RISKS: [&str; 4] = ["stable", "candidate", "beta", "edge"];

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Catalog {
    #[serde(default)]
    pub snaps: BTreeMap<String, SnapEntry>,
    /// `type/primary/key` → the newest revision of that assertion.
    #[serde(default)]
    pub assertions: BTreeMap<String, StoredAssertion>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredAssertion {
    pub sha256: String,
    pub revision: u64,
    pub format: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapEntry {
    pub snap_id: String,
    pub publisher: Publisher,
    /// Where a channel without a track goes; `latest` when unset.
    #[serde(default)]
    pub default_track: Option<String>,
    pub revisions: BTreeMap<u64, Revision>,
    #[serde(default)]
    pub releases: Vec<Release>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publisher {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// `verified`, `starred` or `unproven`, as the store API spells it.
    pub validation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u64,
    /// Hex, as the API reports it (the assertion has the same digest in base64url).
    pub sha3_384: String,
    pub size: u64,
    /// The blob in the content store.
    pub sha256: String,
    /// RFC 3339, from the snap-revision's timestamp.
    pub created_at: String,
    pub meta: SnapMeta,
    #[serde(default)]
    pub icon: Option<Icon>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Icon {
    pub sha256: String,
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Release {
    /// A dpkg architecture, or `all`.
    pub architecture: String,
    pub track: String,
    pub risk: String,
    #[serde(default)]
    pub branch: Option<String>,
    pub revision: u64,
    pub released_at: String,
}

impl Release {
    pub fn channel(&self) -> String {
        match &self.branch {
            Some(b) => format!("{}/{}/{b}", self.track, self.risk),
            None => format!("{}/{}", self.track, self.risk),
        }
    }

    fn serves(&self, arch: &str) -> bool {
        self.architecture == arch || self.architecture == "all"
    }
}

/// One snap as `airlock snap list` shows it: its revisions and where each is released.
#[derive(Clone, Debug, Serialize)]
pub struct ListedSnap {
    pub name: String,
    pub snap_id: String,
    pub publisher: String,
    pub revisions: Vec<ListedRevision>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ListedRevision {
    pub revision: u64,
    pub version: String,
    pub size: u64,
    pub sha3_384: String,
    /// `ARCH TRACK/RISK[/BRANCH]`, one per release of this revision.
    pub channels: Vec<String>,
}

impl Catalog {
    /// Every snap with its revisions, by name, for listings.
    pub fn listing(&self) -> Vec<ListedSnap> {
        self.snaps
            .iter()
            .map(|(name, entry)| ListedSnap {
                name: name.clone(),
                snap_id: entry.snap_id.clone(),
                publisher: entry.publisher.username.clone(),
                revisions: entry
                    .revisions
                    .values()
                    .map(|revision| ListedRevision {
                        revision: revision.revision,
                        version: revision.meta.version.clone(),
                        size: revision.size,
                        sha3_384: revision.sha3_384.clone(),
                        channels: entry
                            .releases
                            .iter()
                            .filter(|r| r.revision == revision.revision)
                            .map(|r| format!("{} {}", r.architecture, r.channel()))
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A channel as users write it: `[track/]risk[/branch]` or a bare track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub track: Option<String>,
    pub risk: String,
    pub branch: Option<String>,
}

impl Channel {
    pub fn parse(text: &str) -> Result<Channel, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let is_risk = |p: &str| RISKS.contains(&p);
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        };
        if parts.iter().any(|p| !valid(p)) {
            return Err(format!("{text:?} is not a channel (track/risk/branch)"));
        }
        let channel = match parts.as_slice() {
            [one] if is_risk(one) => Channel {
                track: None,
                risk: one.to_string(),
                branch: None,
            },
            [track] => Channel {
                track: Some(track.to_string()),
                risk: "stable".into(),
                branch: None,
            },
            [risk, branch] if is_risk(risk) => Channel {
                track: None,
                risk: risk.to_string(),
                branch: Some(branch.to_string()),
            },
            [track, risk] if is_risk(risk) => Channel {
                track: Some(track.to_string()),
                risk: risk.to_string(),
                branch: None,
            },
            [track, risk, branch] if is_risk(risk) => Channel {
                track: Some(track.to_string()),
                risk: risk.to_string(),
                branch: Some(branch.to_string()),
            },
            _ => {
                return Err(format!(
                    "{text:?} is not a channel: the risk must be one of {}",
                    RISKS.join(", ")
                ));
            }
        };
        Ok(channel)
    }
}

/// What a channel request resolved to.
#[derive(Debug)]
pub struct Resolved<'a> {
    pub release: &'a Release,
    /// `track/risk[/branch]` actually served (a closed risk follows a more stable one).
    pub effective: String,
    /// Set when the request named no track and the snap's default track is not `latest`.
    pub redirect: Option<String>,
}

impl SnapEntry {
    pub fn default_track(&self) -> &str {
        self.default_track.as_deref().unwrap_or("latest")
    }

    /// The release of one channel for `arch`: a release for that architecture wins over one
    /// for `all`.
    fn release_for(
        &self,
        arch: &str,
        track: &str,
        risk: &str,
        branch: Option<&str>,
    ) -> Option<&Release> {
        let of_channel =
            |r: &&Release| r.track == track && r.risk == risk && r.branch.as_deref() == branch;
        let mut matching = self.releases.iter().filter(of_channel);
        matching
            .clone()
            .find(|r| r.architecture == arch)
            .or_else(|| matching.find(|r| r.architecture == "all"))
    }

    /// The release of exactly `channel` for `arch` (as an import for `arch` makes it; no
    /// closed risk follows another).
    pub fn released(&self, arch: &str, channel: &Channel) -> Option<&Release> {
        let track = channel.track.as_deref().unwrap_or(self.default_track());
        self.release_for(arch, track, &channel.risk, channel.branch.as_deref())
            .filter(|r| r.architecture == arch)
    }

    /// The release serving `channel` for `arch`: a closed risk follows the next more stable
    /// one on the same track; branches do not follow.
    pub fn resolve(&self, arch: &str, channel: &Channel) -> Option<Resolved<'_>> {
        let track = channel.track.as_deref().unwrap_or(self.default_track());
        let wanted = RISKS.iter().position(|r| *r == channel.risk)?;
        let release = match &channel.branch {
            Some(branch) => self.release_for(arch, track, &channel.risk, Some(branch))?,
            None => RISKS[..=wanted]
                .iter()
                .rev()
                .find_map(|risk| self.release_for(arch, track, risk, None))?,
        };
        // As the public store reports it: the channel actually served.
        let effective = release.channel();
        let redirect =
            (channel.track.is_none() && track != "latest").then(|| match &channel.branch {
                Some(b) => format!("{track}/{}/{b}", channel.risk),
                None => format!("{track}/{}", channel.risk),
            });
        Some(Resolved {
            release,
            effective,
            redirect,
        })
    }

    /// Open channels for `arch`, as `snap info` lists them: the default track first, then
    /// tracks in the order they first appeared; risks from stable to edge, branches last.
    pub fn channel_map(&self, arch: &str) -> Vec<&Release> {
        let mut tracks: Vec<&str> = vec![self.default_track()];
        for r in &self.releases {
            if !tracks.contains(&r.track.as_str()) {
                tracks.push(&r.track);
            }
        }
        let mut map = Vec::new();
        for track in tracks {
            map.extend(
                RISKS
                    .iter()
                    .filter_map(|risk| self.release_for(arch, track, risk, None)),
            );
            let mut branches: Vec<(&str, &str)> = Vec::new();
            for r in self.releases.iter().filter(|r| r.track == track) {
                if let Some(b) = &r.branch
                    && r.serves(arch)
                    && !branches.contains(&(r.risk.as_str(), b.as_str()))
                {
                    branches.push((&r.risk, b));
                }
            }
            map.extend(
                branches
                    .into_iter()
                    .filter_map(|(risk, b)| self.release_for(arch, track, risk, Some(b))),
            );
        }
        map
    }

    /// Where the snap is released, for "not available on this channel" answers.
    pub fn released_channels(&self) -> Vec<(String, String)> {
        self.releases
            .iter()
            .map(|r| (r.architecture.clone(), r.channel()))
            .collect()
    }

    /// Releases `revision` to `channel` for `arch`, replacing what that channel had.
    pub fn release(&mut self, arch: &str, channel: &Channel, revision: u64, now: &str) {
        let track = channel
            .track
            .clone()
            .unwrap_or_else(|| self.default_track().to_string());
        // A release for `all` replaces the channel's per-architecture ones too.
        self.releases.retain(|r| {
            !((r.architecture == arch || arch == "all")
                && r.track == track
                && r.risk == channel.risk
                && r.branch == channel.branch)
        });
        self.releases.push(Release {
            architecture: arch.to_string(),
            track,
            risk: channel.risk.clone(),
            branch: channel.branch.clone(),
            revision,
            released_at: now.to_string(),
        });
    }
}

impl Catalog {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state/snaps/catalog.json")
    }

    pub fn load(data_dir: &Path) -> Result<Catalog, SnapError> {
        Ok(crate::storage::load_json(&Self::path(data_dir))?)
    }

    /// Replaces the catalog in one rename: the server sees the old one or the new one.
    pub fn save(&self, data_dir: &Path) -> Result<(), SnapError> {
        Ok(crate::storage::save_json(&Self::path(data_dir), self)?)
    }

    /// Every blob the catalog names: snaps, icons, assertions (hex SHA-256).
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        let revisions = self.snaps.values().flat_map(|s| s.revisions.values());
        revisions
            .flat_map(|r| std::iter::once(&r.sha256).chain(r.icon.as_ref().map(|i| &i.sha256)))
            .chain(self.assertions.values().map(|a| &a.sha256))
            .map(String::as_str)
    }

    /// A stored snap, or the error an operator who mistyped its name needs.
    pub fn snap_mut(&mut self, name: &str) -> Result<&mut SnapEntry, SnapError> {
        self.snaps.get_mut(name).ok_or_else(|| {
            SnapError::Usage(format!(
                "the store has no snap {name:?} (see airlock snap list)"
            ))
        })
    }

    pub fn by_id(&self, snap_id: &str) -> Option<(&String, &SnapEntry)> {
        self.snaps.iter().find(|(_, s)| s.snap_id == snap_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(releases: &[(&str, &str, &str, Option<&str>, u64)]) -> SnapEntry {
        SnapEntry {
            snap_id: "id".into(),
            publisher: Publisher {
                id: "p".into(),
                username: "p".into(),
                display_name: "P".into(),
                validation: "unproven".into(),
            },
            default_track: None,
            revisions: BTreeMap::new(),
            releases: releases
                .iter()
                .map(|(arch, track, risk, branch, revision)| Release {
                    architecture: arch.to_string(),
                    track: track.to_string(),
                    risk: risk.to_string(),
                    branch: branch.map(str::to_string),
                    revision: *revision,
                    released_at: "2026-01-01T00:00:00Z".into(),
                })
                .collect(),
        }
    }

    fn resolve(e: &SnapEntry, arch: &str, channel: &str) -> Option<(u64, String, Option<String>)> {
        e.resolve(arch, &Channel::parse(channel).unwrap())
            .map(|r| (r.release.revision, r.effective, r.redirect))
    }

    #[test]
    fn channels_parse_as_snapd_writes_them() {
        let c = |t: &str| Channel::parse(t).unwrap();
        assert_eq!(
            c("stable"),
            Channel {
                track: None,
                risk: "stable".into(),
                branch: None
            }
        );
        assert_eq!(
            c("3.5"),
            Channel {
                track: Some("3.5".into()),
                risk: "stable".into(),
                branch: None
            }
        );
        assert_eq!(c("3.5/edge").track.as_deref(), Some("3.5"));
        assert_eq!(c("edge/fix").branch.as_deref(), Some("fix"));
        assert_eq!(c("3.5/beta/fix").branch.as_deref(), Some("fix"));
        for bad in [
            "",
            "3.5/rough",
            "a/b/c",
            "3.5//stable",
            "x y",
            "a/stable/b/c",
        ] {
            assert!(Channel::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn closed_risks_follow_more_stable_ones() {
        let e = entry(&[
            ("amd64", "latest", "stable", None, 1),
            ("amd64", "latest", "beta", None, 2),
            ("all", "3.5", "stable", None, 3),
            ("amd64", "latest", "edge", Some("fix"), 4),
        ]);
        assert_eq!(
            resolve(&e, "amd64", "stable"),
            Some((1, "latest/stable".into(), None))
        );
        assert_eq!(
            resolve(&e, "amd64", "candidate"),
            Some((1, "latest/stable".into(), None))
        );
        assert_eq!(
            resolve(&e, "amd64", "edge"),
            Some((2, "latest/beta".into(), None))
        );
        assert_eq!(
            resolve(&e, "arm64", "3.5/edge"),
            Some((3, "3.5/stable".into(), None))
        );
        assert_eq!(resolve(&e, "arm64", "stable"), None);
        assert_eq!(resolve(&e, "amd64", "edge/fix").map(|r| r.0), Some(4));
        assert_eq!(resolve(&e, "amd64", "beta/fix"), None);
        let map: Vec<String> = e.channel_map("amd64").iter().map(|r| r.channel()).collect();
        assert_eq!(
            map,
            [
                "latest/stable",
                "latest/beta",
                "latest/edge/fix",
                "3.5/stable"
            ]
        );
    }

    #[test]
    fn default_track_redirects() {
        let mut e = entry(&[
            ("amd64", "3.5", "stable", None, 7),
            ("amd64", "latest", "stable", None, 1),
        ]);
        e.default_track = Some("3.5".into());
        assert_eq!(
            resolve(&e, "amd64", "stable"),
            Some((7, "3.5/stable".into(), Some("3.5/stable".into())))
        );
        assert_eq!(resolve(&e, "amd64", "latest/stable").map(|r| r.0), Some(1));
        assert_eq!(e.channel_map("amd64")[0].track, "3.5");
    }

    #[test]
    fn an_architecture_wins_over_all() {
        let mut e = entry(&[("all", "latest", "stable", None, 1)]);
        e.release("amd64", &Channel::parse("stable").unwrap(), 2, "now");
        assert_eq!(resolve(&e, "amd64", "stable").map(|r| r.0), Some(2));
        assert_eq!(resolve(&e, "arm64", "stable").map(|r| r.0), Some(1));
        let map: Vec<u64> = e.channel_map("amd64").iter().map(|r| r.revision).collect();
        assert_eq!(map, [2], "one entry per channel");
        e.release("all", &Channel::parse("stable").unwrap(), 3, "now");
        assert_eq!(resolve(&e, "amd64", "stable").map(|r| r.0), Some(3));
        assert_eq!(e.releases.len(), 1);
    }

    #[test]
    fn release_replaces_the_channel() {
        let mut e = entry(&[("amd64", "latest", "stable", None, 1)]);
        e.release("amd64", &Channel::parse("stable").unwrap(), 5, "now");
        e.release("arm64", &Channel::parse("stable").unwrap(), 6, "now");
        assert_eq!(resolve(&e, "amd64", "stable").map(|r| r.0), Some(5));
        assert_eq!(resolve(&e, "arm64", "stable").map(|r| r.0), Some(6));
        assert_eq!(e.releases.len(), 2);
    }
}
