//! A whole site: every kind of content a site publishes and serves, made from the test
//! upstreams. A local repo holding one package, a filtered mirror of a test archive, the
//! noble/amd64 images of a test stream (curated, re-signed by the site) and a snap released to
//! stable.

use std::path::PathBuf;

use super::snaps::{Authority, build_snap, snap_yaml};
use super::stream::Stream;
use super::upstream::{Archive, Upstream, pkg};
use super::{Site, dpkg_deb};

/// The local repo of a whole site, and of most tests: one suite, one component, amd64, its
/// Releases valid for 7 days as on a real site.
pub const LOCAL: &str = r#"
[[apt.repo]]
name = "local"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
valid_for = "7d"
"#;

/// [`LOCAL`] with its Releases valid for `valid_for` instead, or with no Valid-Until at all.
pub fn local_repo(valid_for: Option<&str>) -> String {
    let line = valid_for.map_or(String::new(), |v| format!("valid_for = \"{v}\"\n"));
    LOCAL.replace("valid_for = \"7d\"\n", &line)
}

/// The GA kernel product of the images a whole site publishes, and the path of its newest
/// kernel (one file of one item, used by no other item).
pub const GA: &str = "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04";
pub const GA_KERNEL: &str = "noble/amd64/20250201/ga-24.04/generic/boot-kernel";

/// A site with all its content published, and what made it. The upstreams must stay alive
/// while the site syncs again (and keep serving what a test compares with).
pub struct WholeSite {
    /// Scratch space: the local package and the snap were built in it.
    pub work: tempfile::TempDir,
    /// The test archive the mirror follows (app 1.0 depending on libfoo; unrelated, left out).
    pub archive: Archive,
    pub archive_upstream: Upstream,
    /// The test image stream.
    pub stream: Stream,
    pub stream_upstream: Upstream,
    /// The content sections (without the caller's extra config), for another site that is to
    /// carry the same content.
    pub config: String,
    /// hello_1.0_amd64.deb, included in the local repo.
    pub hello: PathBuf,
    /// hello-airlock revision 1, imported and released to stable.
    pub snap: PathBuf,
    /// The site, every content published.
    pub site: Site,
}

/// The content sections of a whole site: the local repo, a filtered mirror of `archive`, the
/// noble/amd64 images of `stream`, the snaps (trusting the test root in root.assert).
fn content_config(
    archive: &Archive,
    archive_url: &str,
    stream: &Stream,
    stream_url: &str,
) -> String {
    format!(
        "{LOCAL}\n{}\n[images]\nurl = \"{stream_url}\"\nkeyring = \"{}\"\n\n[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\narches = [\"amd64\"]\n\n[snaps]\ntrusted_keys = \"root.assert\"\n\n[sync]\ntimeout = \"2s\"\nretries = 1\n",
        archive.mirror_config("mirror", archive_url, "packages = [\"app\"]"),
        stream.keyring.display()
    )
}

/// The upstream names of the whole site: archive.ubuntu.com/ubuntu is its mirror,
/// images.maas.io/ephemeral-v3/stable its image stream (the test upstreams are on 127.0.0.1,
/// which derives no route).
pub const ROUTES: &str = r#"
[[proxy.route]]
host = "archive.ubuntu.com"
path = "/ubuntu"
to = "apt/mirror"

[[proxy.route]]
host = "images.maas.io"
path = "/ephemeral-v3/stable"
to = "images"
"#;

/// Builds the upstreams and a site (its config: the content sections, then `extra`), and
/// publishes everything: the local repo, a sync (mirror and images), the snap.
pub fn whole_site(extra: &str) -> WholeSite {
    // Two RSA keys take a few seconds: made while the upstreams are built.
    let authority = std::thread::spawn(Authority::new);
    let work = tempfile::tempdir().unwrap();
    let archive = Archive::new(
        "ed25519",
        &["stable"],
        &["main"],
        &["amd64"],
        &[
            pkg("stable", "main", "app", "1.0", "amd64", "Depends: libfoo\n"),
            pkg("stable", "main", "libfoo", "1.0", "amd64", ""),
            pkg("stable", "main", "unrelated", "1.0", "amd64", ""),
        ],
    );
    let archive_upstream = Upstream::serve(archive.path());
    let stream = Stream::new();
    let stream_upstream = Upstream::serve(stream.path());
    let authority = authority.join().unwrap();
    let config = content_config(
        &archive,
        &archive_upstream.url,
        &stream,
        &stream_upstream.url,
    );

    let site = Site::new("ed25519", &format!("{config}{extra}"));
    authority.root_file(site.path());
    let hello = dpkg_deb(&work.path().join("debs"), "hello", "1.0", "amd64", "", "xz");
    site.include("stable", "main", &hello);
    site.ok(&["publish"]);
    let out = site.ok(&["sync"]);
    assert!(
        out.contains("mirror: published") && out.contains("images: published"),
        "{out}"
    );
    let snap = build_snap(work.path(), "hello-airlock_1.snap", &snap_yaml("1.0"), "xz");
    authority.assert_file(&snap, 1);
    let out = site.ok(&[
        "snap",
        "import",
        snap.to_str().unwrap(),
        "--channel",
        "stable",
    ]);
    assert!(out.contains("imported hello-airlock revision 1"), "{out}");
    WholeSite {
        work,
        archive,
        archive_upstream,
        stream,
        stream_upstream,
        config,
        hello,
        snap,
        site,
    }
}
