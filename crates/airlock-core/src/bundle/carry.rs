//! airlock itself in every bundle: the air-gapped side's first install needs nothing else.
//!
//! `export` carries its own .deb when it was installed from one (dpkg keeps no copy: apt's
//! cache `/var/cache/apt/archives/` usually does, or the operator names it), else its own
//! binary. The copy is a plain file beside the volumes, listed in the signed manifest with its
//! SHA-256, so that `gpgv` and `sha256sum` can check it where no airlock runs yet; `import`
//! checks it like every other file and keeps it in the data folder's `carried/`.

use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::BundleError;
use super::manifest::{CarriedAirlock, CarriedKind};
use crate::storage::{CopyError, Sha256, StorageError, open_regular, sync_dir};

/// This airlock's version, as `airlock --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where `/usr/bin/airlock` comes from when a package installed it.
const PACKAGED_BINARY: &str = "/usr/bin/airlock";
const APT_CACHE: &str = "/var/cache/apt/archives";
/// Where import keeps carried copies, in the data folder.
pub const KEPT: &str = "carried";

/// What `export` is told to carry.
#[derive(Debug, Clone)]
pub enum Carry {
    /// The .deb this airlock was installed from, when apt's cache has it; else the binary.
    Auto,
    /// This .deb (`--airlock-deb`).
    Deb(PathBuf),
    /// Nothing (`--no-airlock`).
    Nothing,
}

/// The file chosen, and why (the export says which was carried).
#[derive(Debug, Clone)]
pub struct Chosen {
    pub path: PathBuf,
    pub kind: CarriedKind,
    pub version: String,
    pub package_version: Option<String>,
    pub architecture: String,
    pub why: String,
}

/// Picks the file to carry.
pub fn choose(carry: &Carry) -> Result<Option<Chosen>, BundleError> {
    match carry {
        Carry::Nothing => Ok(None),
        Carry::Deb(path) => deb(path, "given with --airlock-deb".into()).map(Some),
        Carry::Auto => {
            let exe = std::env::current_exe().map_err(|source| StorageError::Read {
                path: "/proc/self/exe".into(),
                source,
            })?;
            Ok(Some(auto(&exe, installed_package(), Path::new(APT_CACHE))))
        }
    }
}

/// The package's .deb from apt's cache when `exe` is the packaged binary and dpkg says the
/// package is installed (`installed`: its version and architecture), else `exe` itself.
fn auto(exe: &Path, installed: Option<(String, String)>, cache: &Path) -> Chosen {
    let binary = |why: String| Chosen {
        path: exe.to_path_buf(),
        kind: CarriedKind::Binary,
        version: VERSION.into(),
        package_version: None,
        architecture: dpkg_architecture().into(),
        why,
    };
    let Some((version, arch)) = installed.filter(|_| exe == Path::new(PACKAGED_BINARY)) else {
        return binary(format!(
            "this binary ({}): not installed from a package",
            exe.display()
        ));
    };
    // apt names cached files as dpkg-name does, with the epoch's colon escaped.
    let cached = cache.join(format!(
        "airlock_{}_{arch}.deb",
        version.replace(':', "%3a")
    ));
    match deb(
        &cached,
        format!("the installed package's .deb, from {}", cache.display()),
    ) {
        Ok(chosen) if chosen.package_version.as_deref() == Some(version.as_str()) => chosen,
        _ => binary(format!(
            "this binary ({}): package airlock {version} is installed but {} is not in apt's cache (--airlock-deb PATH carries the .deb)",
            exe.display(),
            cached.display()
        )),
    }
}

/// A .deb of airlock: its control file names the package and its version.
fn deb(path: &Path, why: String) -> Result<Chosen, BundleError> {
    let bad = |reason: String| BundleError::Export(format!("{}: {reason}", path.display()));
    let control =
        crate::apt::deb::read_control(path).map_err(|source| BundleError::CarriedDeb {
            path: path.to_path_buf(),
            source,
        })?;
    let paragraph = crate::apt::deb822::paragraphs(&control)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| bad("its control file is not readable".into()))?;
    let field = |name: &str| paragraph.get(name).map(str::trim).unwrap_or_default();
    if field("Package") != "airlock" {
        return Err(bad(format!(
            "is package {:?}, not airlock",
            field("Package")
        )));
    }
    let package_version = field("Version").to_string();
    Ok(Chosen {
        path: path.to_path_buf(),
        kind: CarriedKind::Deb,
        version: upstream_version(&package_version).into(),
        architecture: field("Architecture").into(),
        package_version: Some(package_version),
        why,
    })
}

/// `1:0.2.0-1` → `0.2.0`: the version airlock itself reports.
fn upstream_version(version: &str) -> &str {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    version.rsplit_once('-').map_or(version, |(v, _)| v)
}

/// dpkg's name for this machine's architecture.
fn dpkg_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "powerpc64" => "ppc64el",
        other => other,
    }
}

/// dpkg's record of the airlock package: its version and architecture, when installed.
fn installed_package() -> Option<(String, String)> {
    let out = std::process::Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Status} ${Version} ${Architecture}",
            "airlock",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["installed", version, arch] if out.status.success() => {
            Some((version.to_string(), arch.to_string()))
        }
        _ => None,
    }
}

/// The base bundle's entry for the chosen file when it lists the same bytes: an incremental
/// bundle lists it again (the signed manifest still says which airlock goes with the bundle)
/// with the id of the bundle whose folder holds it, and does not repeat the file.
/// `base` is the base bundle's id and its carried airlock.
pub fn already_carried(
    chosen: &Chosen,
    base: Option<(&str, &CarriedAirlock)>,
) -> Result<Option<CarriedAirlock>, BundleError> {
    let Some((base_id, earlier)) = base else {
        return Ok(None);
    };
    let (mut file, metadata) = open_regular(&chosen.path)?;
    if metadata.len() != earlier.size {
        return Ok(None);
    }
    let sha256 = digest(&mut file, &chosen.path, earlier.size)?;
    Ok((sha256 == earlier.sha256).then(|| CarriedAirlock {
        carried_in: Some(
            earlier
                .carried_in
                .clone()
                .unwrap_or_else(|| base_id.to_string()),
        ),
        ..earlier.clone()
    }))
}

/// Copies the chosen file into the bundle folder, hashing it on the way.
pub fn write(chosen: &Chosen, dir: &Path) -> Result<CarriedAirlock, BundleError> {
    let name = match chosen.kind {
        CarriedKind::Deb => format!(
            "airlock_{}_{}.deb",
            deb_version(chosen),
            chosen.architecture
        ),
        CarriedKind::Binary => format!("airlock_{}_{}", chosen.version, chosen.architecture),
    };
    let (mut file, _) = open_regular(&chosen.path)?;
    let (sha256, size) = copy_atomic(
        &mut file,
        &chosen.path,
        &dir.join(&name),
        u64::MAX,
        |_, _| Ok(()),
    )?;
    Ok(CarriedAirlock {
        sha256sum: format!("{sha256}  {name}"),
        file: name,
        kind: chosen.kind,
        version: chosen.version.clone(),
        package_version: chosen.package_version.clone(),
        architecture: chosen.architecture.clone(),
        sha256,
        size,
        carried_in: None,
    })
}

/// A .deb is named as Debian names it: the package version without its epoch.
fn deb_version(chosen: &Chosen) -> &str {
    let version = chosen.package_version.as_deref().unwrap_or(&chosen.version);
    version.split_once(':').map_or(version, |(_, v)| v)
}

/// The carried copy in bundle folder `dir`, checked against the manifest: its path, or none
/// when it is not there (a volume set copied without it imports all the same).
pub fn check(dir: &Path, carried: &CarriedAirlock) -> Result<Option<PathBuf>, BundleError> {
    let path = dir.join(&carried.file);
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    let mismatch = |got: String| BundleError::CarriedMismatch {
        path: path.clone(),
        expected: format!("{} bytes, SHA-256 {}", carried.size, carried.sha256),
        got,
    };
    let unreadable = |source| BundleError::CarriedUnreadable {
        path: path.clone(),
        source,
    };
    let (mut file, metadata) = open_regular(&path).map_err(unreadable)?;
    if metadata.len() != carried.size {
        return Err(mismatch(format!("{} bytes", metadata.len())));
    }
    let sha256 = digest(&mut file, &path, carried.size).map_err(unreadable)?;
    if sha256 != carried.sha256 {
        return Err(mismatch(format!("SHA-256 {sha256}")));
    }
    Ok(Some(path))
}

/// SHA-256 of the first `limit` bytes of `file`, read from `path`.
fn digest(file: &mut std::fs::File, path: &Path, limit: u64) -> Result<Sha256, StorageError> {
    crate::storage::copy_sha256(
        file,
        &mut std::io::sink(),
        &mut vec![0; 1 << 20],
        limit,
        &mut |_| {},
    )
    .map(|(sha256, _)| sha256)
    .map_err(|e| StorageError::Read {
        path: path.to_path_buf(),
        source: match e {
            CopyError::Read(source) | CopyError::Write(source) => source,
        },
    })
}

/// The copy an earlier import kept in `data/carried/`, when it is the one `carried` lists.
pub fn already_kept(data_dir: &Path, carried: &CarriedAirlock) -> Option<PathBuf> {
    check(&data_dir.join(KEPT), carried).ok().flatten()
}

/// Keeps the checked copy in `data/carried/`, where the operator finds it; returns its path.
pub fn keep(
    data_dir: &Path,
    from: &Path,
    carried: &CarriedAirlock,
) -> Result<PathBuf, BundleError> {
    let to = data_dir.join(KEPT).join(&carried.file);
    let (mut file, _) = open_regular(from)?;
    // One byte more than listed tells a file that grew since it was checked; the copy is
    // compared before it is renamed into place, so a changed file is never kept.
    copy_atomic(
        &mut file,
        from,
        &to,
        carried.size.saturating_add(1),
        |sha256, size| {
            if size == carried.size && sha256 == carried.sha256 {
                return Ok(());
            }
            Err(BundleError::CarriedMismatch {
                path: from.to_path_buf(),
                expected: format!("{} bytes, SHA-256 {}", carried.size, carried.sha256),
                got: format!("{size} bytes, SHA-256 {sha256} while it was copied"),
            })
        },
    )?;
    Ok(to)
}

/// Whether the carried airlock is newer than this one (Debian version order).
pub fn newer_than_running(carried: &CarriedAirlock) -> bool {
    crate::apt::package::compare_versions(&carried.version, VERSION) == Ordering::Greater
}

/// Copies at most `limit` bytes of `from` into a temp file beside `to`, hashing; when `accept`
/// takes the digest and size, renames the temp file to `to` (else it is removed).
fn copy_atomic(
    from: &mut std::fs::File,
    from_path: &Path,
    to: &Path,
    limit: u64,
    accept: impl FnOnce(Sha256, u64) -> Result<(), BundleError>,
) -> Result<(Sha256, u64), BundleError> {
    let parent = to.parent().unwrap_or(Path::new("."));
    let write_err = |source| StorageError::Write {
        path: to.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(parent).map_err(write_err)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempfile_in(parent)
        .map_err(write_err)?;
    let copied = crate::storage::copy_sha256(
        from,
        temp.as_file_mut(),
        &mut vec![0; 1 << 20],
        limit,
        &mut |_| {},
    )
    .map_err(|e| match e {
        CopyError::Read(source) => StorageError::Read {
            path: from_path.to_path_buf(),
            source,
        },
        CopyError::Write(source) => write_err(source),
    })?;
    accept(copied.0, copied.1)?;
    temp.as_file_mut().flush().map_err(write_err)?;
    temp.as_file().sync_all().map_err(write_err)?;
    temp.persist(to).map_err(|e| write_err(e.error))?;
    sync_dir(parent)?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::deb::DebBuilder;

    fn airlock_deb(dir: &Path, version: &str) -> PathBuf {
        let deb = DebBuilder::new(format!(
            "Package: airlock\nVersion: {version}\nArchitecture: amd64\nMaintainer: a <a@example.org>\nDescription: test\n"
        ))
        .file("usr/bin/airlock", b"binary".to_vec())
        .build()
        .unwrap();
        let path = dir.join(format!("airlock_{}_amd64.deb", version.replace(':', "%3a")));
        std::fs::write(&path, deb).unwrap();
        path
    }

    #[test]
    fn the_packaged_binary_carries_its_cached_deb() {
        let cache = tempfile::tempdir().unwrap();
        let deb = airlock_deb(cache.path(), "1:0.3.0-2");
        let installed = Some(("1:0.3.0-2".to_string(), "amd64".to_string()));
        let chosen = auto(Path::new(PACKAGED_BINARY), installed.clone(), cache.path());
        assert_eq!(chosen.kind, CarriedKind::Deb);
        assert_eq!(chosen.path, deb);
        assert_eq!(chosen.version, "0.3.0");
        assert_eq!(chosen.package_version.as_deref(), Some("1:0.3.0-2"));

        // Another version installed than the cache holds, a binary elsewhere, no package.
        let other = Some(("1:0.4.0-1".to_string(), "amd64".to_string()));
        let chosen = auto(Path::new(PACKAGED_BINARY), other, cache.path());
        assert_eq!(chosen.kind, CarriedKind::Binary);
        assert!(chosen.why.contains("not in apt's cache"), "{}", chosen.why);
        let elsewhere = auto(Path::new("/opt/airlock"), installed, cache.path());
        assert_eq!(
            (elsewhere.kind, elsewhere.path),
            (CarriedKind::Binary, PathBuf::from("/opt/airlock"))
        );
        let none = auto(Path::new(PACKAGED_BINARY), None, cache.path());
        assert_eq!(none.kind, CarriedKind::Binary);
    }

    #[test]
    fn a_deb_of_another_package_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.deb");
        let deb = DebBuilder::new(
            "Package: hello\nVersion: 1.0\nArchitecture: amd64\nMaintainer: a <a@example.org>\nDescription: t\n",
        )
        .build()
        .unwrap();
        std::fs::write(&path, deb).unwrap();
        let e = choose(&Carry::Deb(path)).unwrap_err().to_string();
        assert!(e.contains("hello.deb") && e.contains("not airlock"), "{e}");
    }

    #[test]
    fn versions_compare_as_debian_does() {
        assert_eq!(upstream_version("1:0.2.0-1"), "0.2.0");
        assert_eq!(upstream_version("0.2.0"), "0.2.0");
        let carried = |version: &str| CarriedAirlock {
            file: "f".into(),
            kind: CarriedKind::Binary,
            version: version.into(),
            package_version: None,
            architecture: "amd64".into(),
            sha256: Sha256::of(b""),
            size: 0,
            sha256sum: String::new(),
            carried_in: None,
        };
        assert!(newer_than_running(&carried("999.0.0")));
        assert!(!newer_than_running(&carried(VERSION)));
        assert!(!newer_than_running(&carried("0.0.1~rc1")));
    }

    #[test]
    fn the_same_bytes_are_listed_with_the_bundle_that_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let chosen = choose(&Carry::Deb(airlock_deb(dir.path(), "1:0.3.0-2"))).unwrap();
        let chosen = chosen.unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let first = write(&chosen, bundle.path()).unwrap();
        assert_eq!(already_carried(&chosen, None).unwrap(), None);

        // The base carried it: listed as the base's, the file not written.
        let second = already_carried(&chosen, Some(("one", &first)))
            .unwrap()
            .unwrap();
        assert_eq!(second.carried_in.as_deref(), Some("one"));
        assert_eq!((&second.file, second.sha256), (&first.file, first.sha256));
        // A chain of incremental bundles names the one that holds the file.
        let third = already_carried(&chosen, Some(("two", &second)))
            .unwrap()
            .unwrap();
        assert_eq!(third.carried_in.as_deref(), Some("one"));

        // Other bytes are carried again.
        let other = choose(&Carry::Deb(airlock_deb(dir.path(), "1:0.4.0-1")))
            .unwrap()
            .unwrap();
        assert_eq!(
            already_carried(&other, Some(("one", &first))).unwrap(),
            None
        );
    }

    #[test]
    fn a_copy_that_changed_or_grew_is_not_kept() {
        let bundle = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let from = bundle.path().join("airlock_1_amd64");
        std::fs::write(&from, b"binary").unwrap();
        let carried = CarriedAirlock {
            file: "airlock_1_amd64".into(),
            kind: CarriedKind::Binary,
            version: "1".into(),
            package_version: None,
            architecture: "amd64".into(),
            sha256: Sha256::of(b"binary"),
            size: 6,
            sha256sum: String::new(),
            carried_in: None,
        };
        let kept = keep(data.path(), &from, &carried).unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), b"binary");
        std::fs::remove_file(&kept).unwrap();

        // Changed or grown since the check: refused, and nothing lands in carried/.
        for changed in [&b"BINARY"[..], b"binary and more"] {
            std::fs::write(&from, changed).unwrap();
            let e = keep(data.path(), &from, &carried).unwrap_err().to_string();
            assert!(e.contains("while it was copied"), "{e}");
            let left: Vec<_> = std::fs::read_dir(data.path().join("carried"))
                .unwrap()
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
