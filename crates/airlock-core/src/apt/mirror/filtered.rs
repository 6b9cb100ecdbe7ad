//! `filtered` mode: each suite republished as the selected stanzas of its upstream indices,
//! byte for byte, under a Release signed with the site key.

use std::io::BufReader;

use super::indices::ReadIndex;
use super::selection::Selected;
use super::upstream::UpstreamSuite;
use super::{MirrorError, MirrorSync, Plan};
use crate::apt::index::{IndexRecord, SourceRecord, extract_stanzas};
use crate::apt::publish::{IndexText, write_signed_suite};
use crate::apt::release::ReleaseInfo;
use crate::config::AptMirrorConfig;
use crate::openpgp::SiteKey;
use crate::storage::{Manifest, Staging, StorageError};

/// Writes suite `suite` (its index among the mirror's suites) into `manifest`: its Packages
/// and Sources indices of the selected stanzas, and its Release, signed. Clients see nothing
/// until the tree is switched.
pub(super) fn add_suite(
    sync: &MirrorSync<'_>,
    plan: &Plan,
    suite: usize,
    key: &SiteKey,
    staging: &Staging,
    manifest: &mut Manifest,
) -> Result<(), MirrorError> {
    let (indices, selection) = (&plan.indices, &plan.selection);
    let mut texts = filtered(&indices.packages, &selection.packages, suite)?;
    texts.extend(filtered(&indices.sources, &selection.sources, suite)?);
    let info = release_info(sync.config, &plan.suites[suite], key, sync.now);
    write_signed_suite(&info, &texts, key, staging, manifest)?;
    Ok(())
}

/// A record that knows where its stanza is in the plain text of its index.
trait Stanza {
    /// Offset and length.
    fn span(&self) -> (u64, u32);
}

impl Stanza for IndexRecord {
    fn span(&self) -> (u64, u32) {
        (self.offset, self.length)
    }
}

impl Stanza for SourceRecord {
    fn span(&self) -> (u64, u32) {
        (self.offset, self.length)
    }
}

/// The selected stanzas of each index of one suite, copied byte for byte from its plain
/// text.
fn filtered<R: Stanza>(
    indices: &[ReadIndex<R>],
    selected: &Selected,
    suite: usize,
) -> Result<Vec<IndexText>, MirrorError> {
    let mut out = Vec::new();
    for (index, chosen) in indices
        .iter()
        .zip(selected)
        .filter(|(x, _)| x.suite == suite)
    {
        let wanted: Vec<(u64, u32)> = chosen.iter().map(|&r| index.records[r].span()).collect();
        let plain = &index.plain.file;
        let file = plain.reopen().map_err(|source| StorageError::Read {
            path: plain.path().to_path_buf(),
            source,
        })?;
        let text = extract_stanzas(&mut BufReader::new(file), &wanted)
            .map_err(|e| MirrorError::upstream_data(&index.url, "cannot copy stanzas", e))?;
        out.push(IndexText {
            component: index.component.clone(),
            arch: index.arch.clone(),
            text,
            upstream: index.upstream.clone(),
        });
    }
    Ok(out)
}

/// The Release of a filtered suite: upstream's names, this site's dates, signer and
/// validity, the architectures and components the mirror takes.
fn release_info(
    config: &AptMirrorConfig,
    suite: &UpstreamSuite,
    key: &SiteKey,
    now: jiff::Timestamp,
) -> ReleaseInfo {
    let release = &suite.release;
    ReleaseInfo {
        suite_dir: suite.suite.clone(),
        origin: release
            .origin
            .clone()
            .unwrap_or_else(|| config.name.to_string()),
        label: release
            .label
            .clone()
            .unwrap_or_else(|| config.name.to_string()),
        suite: release.suite.clone().unwrap_or_else(|| suite.suite.clone()),
        codename: release
            .codename
            .clone()
            .unwrap_or_else(|| suite.suite.clone()),
        version: release.version.clone(),
        description: release.description.clone(),
        date: now,
        valid_until: config.valid_for.map(|p| now + p.0),
        architectures: config.architectures.iter().map(|a| a.to_string()).collect(),
        components: config.components.iter().map(|c| c.to_string()).collect(),
        signed_by: key.fingerprint(),
    }
}
