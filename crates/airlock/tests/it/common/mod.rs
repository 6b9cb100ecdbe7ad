//! Helpers for the integration tests: a site in a temp folder, the real `airlock` binary, real
//! `.deb` files built by dpkg-deb, a real server on 127.0.0.1 port 0, and apt-get in a private
//! state folder.

pub mod dnsmasq;
pub mod garage;
pub mod site;
pub mod snaps;
pub mod stream;
pub mod throttle;
pub mod upstream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use airlock_core::apt::deb822;
use airlock_core::storage::Sha256;

pub const AIRLOCK: &str = env!("CARGO_BIN_EXE_airlock");

/// The [site] settings that serve HTTPS beside HTTP, with the certificate `airlock tls init`
/// makes.
pub const TLS: &str =
    "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\ntls_listen = \"127.0.0.1:0\"\n";

pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// `airlock init` with the given key type, then `config` appended after the [site] table.
    pub fn new(key_type: &str, repos: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(AIRLOCK)
            .args(["init", "--key-type", key_type])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Site::with_config(dir, repos)
    }

    /// A site in `dir`, where `airlock init` ran: its config is the [site] table, then `repos`.
    pub fn with_config(dir: tempfile::TempDir, repos: &str) -> Site {
        let config = format!(
            "[site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n\n{repos}"
        );
        std::fs::write(dir.path().join("airlock.toml"), config).unwrap();
        Site { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("airlock.toml")
    }

    pub fn keyring(&self) -> PathBuf {
        self.path().join("airlock.gpg")
    }

    pub fn public(&self, repo: &str) -> PathBuf {
        self.path().join("data/public/apt").join(repo)
    }

    /// Runs airlock with this site's config.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(AIRLOCK)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs airlock and insists that it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "airlock {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `airlock apt include local SUITE COMPONENT PATH`, which must succeed.
    pub fn include(&self, suite: &str, component: &str, path: &Path) -> String {
        self.ok(&[
            "apt",
            "include",
            "local",
            suite,
            component,
            path.to_str().unwrap(),
        ])
    }

    /// `airlock images add --os rhel --release RELEASE TGZ`, which must succeed.
    pub fn add_rhel_image(&self, release: &str, tgz: &Path) -> String {
        let tgz = tgz.to_str().unwrap();
        self.ok(&["images", "add", "--os", "rhel", "--release", release, tgz])
    }

    /// Every file and symlink of the site (data folder, config, keys) with its content.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }

    /// Adds `lines` to the [site] table of the config, at its top.
    pub fn site_settings(&self, lines: &str) {
        let config = std::fs::read_to_string(self.config()).unwrap();
        let table = format!("[site]\n{lines}");
        std::fs::write(self.config(), config.replacen("[site]\n", &table, 1)).unwrap();
    }

    /// Sets `[site] grace` (how long dropped files are kept, and stored ones spared by gc).
    pub fn set_grace(&self, grace: &str) {
        self.site_settings(&format!("grace = \"{grace}\"\n"));
    }

    /// Appends `text` to the config as it is now (a table, or keys of the last table).
    pub fn add_config(&self, text: &str) {
        let config = std::fs::read_to_string(self.config()).unwrap();
        std::fs::write(self.config(), config + text).unwrap();
    }

    pub fn serve(&self) -> Server {
        self.serve_with(&self.config())
    }

    /// `airlock serve` with another config file (beside airlock.toml, for the same data
    /// folder): a server started with a config other than the one the site has now.
    pub fn serve_with(&self, config: &Path) -> Server {
        self.spawn_server(Command::new(AIRLOCK), config)
    }

    /// `airlock serve` logging everything it may (`-vvv`, trace level).
    pub fn serve_traced(&self) -> Server {
        let mut command = Command::new(AIRLOCK);
        command
            .env("AIRLOCK_LOG", "trace")
            .env("RUST_LOG", "trace")
            .arg("-vvv");
        self.spawn_server(command, &self.config())
    }

    fn spawn_server(&self, mut command: Command, config: &Path) -> Server {
        command.arg("--config").arg(config).arg("serve");
        let https = std::fs::read_to_string(config)
            .unwrap()
            .contains("tls_cert");
        Server::start(command, https)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            out.insert(
                name,
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        } else if kind.is_dir() {
            walk(root, &path, out);
        } else {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    /// `https://ADDRESS` when the site serves HTTPS too.
    pub https: Option<String>,
    /// What the server logged before it listened (routes, the DNS address).
    pub startup: Vec<String>,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    /// Starts `command` (an `airlock ... serve`) and waits until it listens: on HTTP, and on
    /// HTTPS too when `https`.
    pub fn start(mut command: Command, https: bool) -> Server {
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut startup = Vec::new();
        let address = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!("server exited before listening:\n{}", startup.join("\n"))
                })
                .unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split('/').next().unwrap().to_string();
            }
            startup.push(line);
        };
        let https = https.then(|| {
            loop {
                let line = lines.next().expect("server exited before HTTPS").unwrap();
                if let Some(rest) = line.split("listening on https://").nth(1) {
                    break format!("https://{}", rest.split('/').next().unwrap());
                }
            }
        });
        // Keep draining stderr (access logs) so the server never blocks on a full pipe.
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        Server {
            child,
            url: format!("http://{address}"),
            https,
            startup,
            log: Some(log),
        }
    }

    /// Sends `signal` (`HUP`, ...) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// The descriptors the server has open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }

    /// Stops the server with SIGTERM and returns its log lines.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.terminate();
        (status, self.log.take().unwrap().join().unwrap())
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.log.is_some() {
            self.terminate();
        }
    }
}

/// Builds a real .deb with dpkg-deb; `extra` adds control fields.
pub fn dpkg_deb(
    dir: &Path,
    name: &str,
    version: &str,
    arch: &str,
    extra: &str,
    compression: &str,
) -> PathBuf {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.path().join(format!("usr/share/doc/{name}"))).unwrap();
    std::fs::write(
        root.path().join(format!("usr/share/doc/{name}/README")),
        format!("{name} {version} {arch}\n"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <test@example.invalid>\n{extra}Description: test package {name}\n built for airlock's tests\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(format!("{name}_{version}_{arch}.deb"));
    build_deb(root.path(), &out, compression);
    out
}

/// A .deb `name` 1.0 holding `size` bytes of noise made from `seed`, stored uncompressed (for
/// large files that take a while to move and never shrink).
pub fn noise_deb(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let root = tempfile::tempdir().unwrap();
    let share = root.path().join("usr/share").join(name);
    std::fs::create_dir_all(root.path().join("DEBIAN")).unwrap();
    std::fs::create_dir_all(&share).unwrap();
    let mut state = seed;
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(share.join("noise"), noise).unwrap();
    std::fs::write(
        root.path().join("DEBIAN/control"),
        format!("Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Test <test@example.invalid>\nDescription: noise\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(format!("{name}_1.0_amd64.deb"));
    build_deb(root.path(), &out, "none");
    out
}

/// A custom image for `images add`: a tgz of a tiny root.
pub fn rhel_tgz(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/redhat-release"),
        "Red Hat Enterprise Linux 9\n",
    )
    .unwrap();
    let tgz = dir.join("rhel9.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    tgz
}

/// `dpkg-deb --build` of the package tree `root` into `out`, compressed with `compression`.
pub fn build_deb(root: &Path, out: &Path, compression: &str) {
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compression}"), "--build"])
        .arg(root)
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "dpkg-deb failed");
}

/// apt-get with a private state folder, for one architecture.
pub struct Apt {
    pub dir: tempfile::TempDir,
    arch: String,
}

impl Apt {
    pub fn new(source_line: &str, arch: &str) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "parts",
            "prefs",
            "download",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("sources.list"), format!("{source_line}\n")).unwrap();
        Apt {
            dir,
            arch: arch.to_string(),
        }
    }

    fn options(&self) -> Vec<String> {
        let d = self.dir.path().display();
        [
            format!("Dir::Etc::SourceList={d}/sources.list"),
            format!("Dir::Etc::SourceParts={d}/parts"),
            format!("Dir::Etc::PreferencesParts={d}/prefs"),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            "Dir::State::status=/dev/null".into(),
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            "APT::Sandbox::User=root".into(),
            "Debug::NoLocking=1".into(),
            // This host's apt config turns these checks off; the tests want them on.
            "Acquire::Check-Valid-Until=true".into(),
            "Acquire::Check-Date=true".into(),
            "Acquire::Languages=none".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    /// Runs apt-get; returns success and the combined output.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("apt-get")
            .args(self.options())
            .args(args)
            .current_dir(self.dir.path().join("download"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // apt exits 0 on some failures it only warns about: count any W:/E: line as failure.
        let clean = out.status.success()
            && !text
                .lines()
                .any(|l| l.starts_with("W:") || l.starts_with("E:"));
        (clean, text)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (clean, text) = self.run(args);
        assert!(clean, "apt-get {args:?} failed:\n{text}");
        text
    }

    pub fn downloaded(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("download").join(file)).unwrap()
    }
}

/// GET with curl (a real client, separate from the server's code).
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS"])
        .args(args)
        .output()
        .unwrap()
}

/// GET `url` with curl (`extra` its further arguments): the status and the body.
pub fn get(url: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = curl(
        &[
            extra,
            &["-o", body.to_str().unwrap(), "-w", "%{http_code}", url],
        ]
        .concat(),
    );
    // No answer at all (a server not listening yet): status 0, for callers that wait.
    let status = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
    (status, std::fs::read(&body).unwrap_or_default())
}

/// Waits (30 s at most) until `url` answers 200 with `expected`: a frontend serving a push,
/// which it looks for every second.
pub fn wait_for(url: &str, expected: &[u8]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = get(url, &[]);
        if status == 200 && body == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} still answers {status}: {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// gpgv with `keyring` on `files` (a clearsigned file, or a detached signature then its data):
/// whether the signature verified, and what gpgv said.
pub fn gpgv(keyring: &Path, files: &[&Path]) -> (bool, String) {
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What [`assert_suite_whole`] checked in one suite.
pub struct WholeSuite {
    /// Each index the Release lists: its path under `dists/SUITE` and its SHA-256 (hex).
    pub indices: Vec<(String, String)>,
    /// The packages its Packages indices list, as "NAME VERSION".
    pub packages: BTreeSet<String>,
}

/// Checks that `dists/SUITE` of the repo `repo` the site serves is whole: InRelease verifies
/// with the site's key (gpgv), every index the Release lists has its listed SHA-256, and every
/// pool file a Packages index lists has its stanza's SHA-256.
pub fn assert_suite_whole(site: &Site, repo: &str, suite: &str) -> WholeSuite {
    let root = site.public(repo);
    let dists = root.join("dists").join(suite);
    let (ok, text) = gpgv(&site.keyring(), &[&dists.join("InRelease")]);
    assert!(
        ok,
        "{}: InRelease does not verify with the site key\n{text}",
        dists.display()
    );
    let release = std::fs::read_to_string(dists.join("Release")).unwrap();
    let paragraph = deb822::paragraphs(&release).next().unwrap().unwrap();
    let mut whole = WholeSuite {
        indices: Vec::new(),
        packages: BTreeSet::new(),
    };
    for line in paragraph
        .get("SHA256")
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (digest, _, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let bytes = std::fs::read(dists.join(path))
            .unwrap_or_else(|e| panic!("{}/{path}: {e}", dists.display()));
        assert_eq!(Sha256::of(&bytes).to_hex(), digest, "{suite}/{path}");
        if path.ends_with("/Packages") {
            let text = String::from_utf8(bytes).unwrap();
            for stanza in deb822::paragraphs(&text) {
                let stanza = stanza.unwrap();
                let file = root.join(stanza.get("Filename").unwrap());
                let content =
                    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert_eq!(
                    Sha256::of(&content).to_hex(),
                    stanza.get("SHA256").unwrap(),
                    "{}",
                    file.display()
                );
                whole.packages.insert(format!(
                    "{} {}",
                    stanza.get("Package").unwrap(),
                    stanza.get("Version").unwrap()
                ));
            }
        }
        whole.indices.push((path.to_string(), digest.to_string()));
    }
    whole
}

/// Writes `bytes` to `path` dated `age` ago, as a file stored back then.
pub fn write_aged(path: &Path, bytes: &[u8], age: std::time::Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

/// Every file below `dir`, at any depth (symlinks to folders followed, as a server would);
/// none when `dir` does not exist.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Every blob of the site's store, with its size.
pub fn store_blobs(site: &Site) -> BTreeMap<String, u64> {
    let mut blobs = BTreeMap::new();
    let Ok(shards) = std::fs::read_dir(site.path().join("data/store/sha256")) else {
        return blobs;
    };
    for shard in shards {
        for blob in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let blob = blob.unwrap();
            let name = blob.file_name().to_string_lossy().into_owned();
            blobs.insert(name, blob.metadata().unwrap().len());
        }
    }
    blobs
}

/// The site's sync history: (source, kind, bytes) of every run on record, oldest first.
pub fn sync_history(site: &Site) -> Vec<(String, String, u64)> {
    let path = site.path().join("data/state/history.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            (
                run["source"].as_str().unwrap().to_string(),
                run["kind"].as_str().unwrap().to_string(),
                run["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every blob of the site's store holds the content its name says.
pub fn assert_store_sound(site: &Site) {
    let store = site.path().join("data/store/sha256");
    for name in store_blobs(site).keys() {
        let blob = store.join(&name[..2]).join(name);
        assert_eq!(
            Sha256::of(&std::fs::read(&blob).unwrap()).to_hex(),
            *name,
            "blob {name}"
        );
    }
}
