//! A test upstream archive: .debs built by dpkg-deb, indices and Release files written by
//! apt-ftparchive, signed by gpg with a fresh key, served on 127.0.0.1 by a small HTTP server
//! that can misbehave on purpose (truncate, stall, corrupt, replace, hide a file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::dpkg_deb;

/// One package of the test archive.
#[derive(Clone)]
pub struct Pkg {
    pub suite: &'static str,
    pub component: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    pub arch: &'static str,
    /// Extra control fields, each ending in a newline (`Depends: a\n`).
    pub fields: &'static str,
}

pub const fn pkg(
    suite: &'static str,
    component: &'static str,
    name: &'static str,
    version: &'static str,
    arch: &'static str,
    fields: &'static str,
) -> Pkg {
    Pkg {
        suite,
        component,
        name,
        version,
        arch,
        fields,
    }
}

pub struct Archive {
    pub dir: tempfile::TempDir,
    gnupg: tempfile::TempDir,
    pub keyring: PathBuf,
    pub suites: Vec<&'static str>,
    pub components: Vec<&'static str>,
    pub architectures: Vec<&'static str>,
    /// Extra apt-ftparchive Release options, e.g. a Valid-Until.
    pub release_options: Vec<String>,
}

impl Archive {
    /// Builds and signs an archive holding `packages`; `key` is "rsa3072" or "ed25519".
    pub fn new(
        key: &str,
        suites: &[&'static str],
        components: &[&'static str],
        architectures: &[&'static str],
        packages: &[Pkg],
    ) -> Archive {
        let dir = tempfile::tempdir().unwrap();
        let gnupg = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            gnupg.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .env("GNUPGHOME", gnupg.path())
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        gpg(&[
            "--quick-gen-key",
            "Test Archive <archive@example.invalid>",
            key,
            "sign",
            "never",
        ]);
        let keyring = dir.path().join("archive-keyring.gpg");
        std::fs::write(&keyring, gpg(&["--export"])).unwrap();
        for p in packages {
            let pool = dir.path().join("pool").join(p.suite).join(p.component);
            dpkg_deb(&pool, p.name, p.version, p.arch, p.fields, "xz");
        }
        let archive = Archive {
            dir,
            gnupg,
            keyring,
            suites: suites.to_vec(),
            components: components.to_vec(),
            architectures: architectures.to_vec(),
            release_options: Vec::new(),
        };
        archive.publish();
        archive
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a package built elsewhere (any size, any content) and republishes.
    pub fn add_deb(&self, suite: &str, component: &str, file_name: &str, deb: &[u8]) {
        let pool = self.path().join("pool").join(suite).join(component);
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::write(pool.join(file_name), deb).unwrap();
        self.publish();
    }

    /// Adds a package and republishes (an upstream update).
    pub fn add(&self, p: &Pkg) {
        let pool = self.path().join("pool").join(p.suite).join(p.component);
        dpkg_deb(&pool, p.name, p.version, p.arch, p.fields, "xz");
        self.publish();
    }

    /// Adds a source package (a .dsc and its native tarball) to the pool; `publish` lists it.
    pub fn add_source(&self, suite: &str, component: &str, name: &str, version: &str) {
        use sha2::Digest;
        let pool = self.path().join("pool").join(suite).join(component);
        std::fs::create_dir_all(&pool).unwrap();
        let tarball = format!("{name}_{version}.tar.xz");
        let content = format!("{name} {version}: the source\n").repeat(50);
        let mut xz = Command::new("xz")
            .args(["-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        xz.stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        let bytes = xz.wait_with_output().unwrap().stdout;
        std::fs::write(pool.join(&tarball), &bytes).unwrap();
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        let md5 = hex::encode(md5::Md5::digest(&bytes));
        let size = bytes.len();
        let dsc = format!(
            "Format: 3.0 (native)\nSource: {name}\nBinary: {name}\nArchitecture: any\nVersion: {version}\nMaintainer: T <t@example.invalid>\nChecksums-Sha256:\n {sha256} {size} {tarball}\nFiles:\n {md5} {size} {tarball}\n"
        );
        std::fs::write(pool.join(format!("{name}_{version}.dsc")), dsc).unwrap();
    }

    /// (Re)writes every index, Release, InRelease and Release.gpg.
    pub fn publish(&self) {
        let root = self.path();
        for suite in &self.suites {
            let dists = root.join("dists").join(suite);
            let _ = std::fs::remove_dir_all(&dists);
            for component in &self.components {
                let pool = format!("pool/{suite}/{component}");
                std::fs::create_dir_all(root.join(&pool)).unwrap();
                let out = Command::new("apt-ftparchive")
                    .current_dir(root)
                    .args(["sources", &pool])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "apt-ftparchive sources");
                let dir = dists.join(component).join("source");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("Sources"), &out.stdout).unwrap();
                assert!(
                    Command::new("xz")
                        .args(["-k", "-f"])
                        .arg(dir.join("Sources"))
                        .status()
                        .unwrap()
                        .success()
                );
                for arch in &self.architectures {
                    let dir = dists.join(component).join(format!("binary-{arch}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    let pool = format!("pool/{suite}/{component}");
                    std::fs::create_dir_all(root.join(&pool)).unwrap();
                    let out = Command::new("apt-ftparchive")
                        .current_dir(root)
                        .args(["--arch", arch, "packages", &pool])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "apt-ftparchive packages: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::fs::write(dir.join("Packages"), &out.stdout).unwrap();
                    for (tool, flag) in [("xz", "-k"), ("gzip", "-k")] {
                        let status = Command::new(tool)
                            .args([flag, "-f", "-9"])
                            .arg(dir.join("Packages"))
                            .status()
                            .unwrap();
                        assert!(status.success());
                    }
                }
            }
            let mut options = vec![
                "-o".to_string(),
                "APT::FTPArchive::Release::Origin=Test".into(),
                "-o".into(),
                "APT::FTPArchive::Release::Label=Test Archive".into(),
                "-o".into(),
                format!("APT::FTPArchive::Release::Suite={suite}"),
                "-o".into(),
                format!("APT::FTPArchive::Release::Codename={suite}"),
                "-o".into(),
                format!(
                    "APT::FTPArchive::Release::Architectures={}",
                    self.architectures.join(" ")
                ),
                "-o".into(),
                format!(
                    "APT::FTPArchive::Release::Components={}",
                    self.components.join(" ")
                ),
                "-o".into(),
                "APT::FTPArchive::DoByHash=true".into(),
            ];
            for option in &self.release_options {
                options.push("-o".into());
                options.push(option.clone());
            }
            let out = Command::new("apt-ftparchive")
                .current_dir(root)
                .args(&options)
                .args(["release", &format!("dists/{suite}")])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "apt-ftparchive release: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(dists.join("Release"), &out.stdout).unwrap();
            self.sign(&dists);
        }
    }

    /// Edits a suite's Release and signs it again (the upstream's key, a forged content).
    pub fn rewrite_release(&self, suite: &str, edit: impl Fn(String) -> String) {
        let dists = self.path().join("dists").join(suite);
        let release = std::fs::read_to_string(dists.join("Release")).unwrap();
        std::fs::write(dists.join("Release"), edit(release)).unwrap();
        self.sign(&dists);
    }

    /// Edits one Packages index, then recompresses, re-lists and re-signs it (a hostile but
    /// properly signed upstream).
    pub fn rewrite_packages(
        &self,
        suite: &str,
        component: &str,
        arch: &str,
        edit: impl Fn(String) -> String,
    ) {
        let dir = self
            .path()
            .join("dists")
            .join(suite)
            .join(component)
            .join(format!("binary-{arch}"));
        let text = std::fs::read_to_string(dir.join("Packages")).unwrap();
        std::fs::write(dir.join("Packages"), edit(text)).unwrap();
        for (tool, flag) in [("xz", "-k"), ("gzip", "-k")] {
            assert!(
                Command::new(tool)
                    .args([flag, "-f", "-9"])
                    .arg(dir.join("Packages"))
                    .status()
                    .unwrap()
                    .success()
            );
        }
        self.relist(suite);
    }

    /// Writes the Release of `suite` again from the files on disk, and signs it.
    pub fn relist(&self, suite: &str) {
        let dists = self.path().join("dists").join(suite);
        let _ = std::fs::remove_dir_all(dists.join("Release"));
        let out = Command::new("apt-ftparchive")
            .current_dir(self.path())
            .args([
                "-o",
                "APT::FTPArchive::Release::Origin=Test",
                "-o",
                &format!("APT::FTPArchive::Release::Suite={suite}"),
                "-o",
                &format!("APT::FTPArchive::Release::Codename={suite}"),
                "-o",
                &format!(
                    "APT::FTPArchive::Release::Architectures={}",
                    self.architectures.join(" ")
                ),
                "-o",
                &format!(
                    "APT::FTPArchive::Release::Components={}",
                    self.components.join(" ")
                ),
                "release",
                &format!("dists/{suite}"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        for signed in ["InRelease", "Release.gpg", "Release"] {
            let _ = std::fs::remove_file(dists.join(signed));
        }
        std::fs::write(dists.join("Release"), &out.stdout).unwrap();
        self.sign(&dists);
    }

    fn sign(&self, dists: &Path) {
        for (args, output) in [
            (&["--clearsign"][..], "InRelease"),
            (&["--detach-sign", "--armor"][..], "Release.gpg"),
        ] {
            let target = dists.join(output);
            let _ = std::fs::remove_file(&target);
            let out = Command::new("gpg")
                .env("GNUPGHOME", self.gnupg.path())
                .args([
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                    "--digest-algo",
                    "SHA512",
                ])
                .args(args)
                .arg("--output")
                .arg(&target)
                .arg(dists.join("Release"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "gpg sign: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The config section for a mirror of this archive served at `url`.
    pub fn mirror_config(&self, name: &str, url: &str, extra: &str) -> String {
        let list = |items: &[&str]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[[apt.mirror]]\nname = \"{name}\"\nurl = \"{url}\"\nsuites = [{}]\ncomponents = [{}]\narchitectures = [{}]\nkeyring = \"{}\"\n{extra}\n",
            list(&self.suites),
            list(&self.components),
            list(&self.architectures),
            self.keyring.display()
        )
    }
}

/// How the server misbehaves for one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Sends only the first bytes of the file, as a server holding a partly copied file does.
    Truncate(usize),
    /// Sends the headers and this many bytes, then says nothing more.
    Stall(usize),
    /// Sends the file with one byte changed (same size).
    Corrupt,
    /// Sends these bytes instead.
    Replace(Vec<u8>),
    /// Answers 404.
    Hide,
}

#[derive(Default)]
struct Shared {
    faults: HashMap<String, Fault>,
    requests: Vec<String>,
    /// Pool files go out in chunks of this many bytes, one per this pause.
    throttle: Option<(usize, Duration)>,
    /// What a pool path that is not on disk answers (an archive of synthetic files).
    any_pool_file: Option<Vec<u8>>,
}

/// Serves a folder on 127.0.0.1 (port 0), with byte ranges and injectable faults.
pub struct Upstream {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn serve(root: &Path) -> Upstream {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        let state = (root.to_path_buf(), shared.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(serve_file).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let address = address.recv().unwrap();
        Upstream {
            url: format!("http://{address}/"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn fault(&self, path: &str, fault: Fault) {
        self.shared
            .lock()
            .unwrap()
            .faults
            .insert(path.trim_start_matches('/').to_string(), fault);
    }

    pub fn clear_faults(&self) {
        let mut shared = self.shared.lock().unwrap();
        shared.faults.clear();
        shared.throttle = None;
    }

    /// Answers every pool path that is not on disk with `bytes`: an archive of tens of
    /// thousands of synthetic pool files without as many files to write and delete.
    pub fn any_pool_file(&self, bytes: &[u8]) {
        self.shared.lock().unwrap().any_pool_file = Some(bytes.to_vec());
    }

    /// Slows every pool file down to `chunk` bytes per `pause`.
    pub fn throttle(&self, chunk: usize, pause: Duration) {
        self.shared.lock().unwrap().throttle = Some((chunk, pause));
    }

    /// Paths requested so far (with ` range=...` when ranged), then forgets them.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.lock().unwrap().requests)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_file(
    State((root, shared)): State<(PathBuf, Arc<Mutex<Shared>>)>,
    request: Request,
) -> Response {
    let path = request.uri().path().trim_start_matches('/').to_string();
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (fault, throttle, any_pool_file) = {
        let mut shared = shared.lock().unwrap();
        shared.requests.push(match &range {
            Some(r) => format!("{path} range={r}"),
            None => path.clone(),
        });
        (
            shared.faults.get(&path).cloned(),
            shared.throttle.filter(|_| path.starts_with("pool/")),
            shared
                .any_pool_file
                .clone()
                .filter(|_| path.starts_with("pool/")),
        )
    };
    if path.split('/').any(|p| p == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Some(mut content) = std::fs::read(root.join(&path)).ok().or(any_pool_file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match fault {
        Some(Fault::Hide) => return StatusCode::NOT_FOUND.into_response(),
        Some(Fault::Replace(bytes)) => content = bytes,
        Some(Fault::Corrupt) => {
            let middle = content.len() / 2;
            content[middle] ^= 0x55;
        }
        Some(Fault::Truncate(n)) => content.truncate(n),
        Some(Fault::Stall(n)) => {
            let total = content.len();
            let head = bytes::Bytes::from(content[..n.min(total)].to_vec());
            // The head, then silence for longer than any client waits.
            let stream = futures_util::stream::unfold(Some(head), |state| async move {
                match state {
                    Some(head) => Some((Ok::<_, std::io::Error>(head), None)),
                    None => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        None
                    }
                }
            });
            return Response::builder()
                .header(header::CONTENT_LENGTH, total)
                .body(Body::from_stream(stream))
                .unwrap();
        }
        None => {}
    }
    let total = content.len();
    let body = move |bytes: Vec<u8>| match throttle {
        None => Body::from(bytes),
        Some((chunk, pause)) => {
            let chunks: Vec<bytes::Bytes> = bytes
                .chunks(chunk)
                .map(bytes::Bytes::copy_from_slice)
                .collect();
            Body::from_stream(
                futures_util::stream::iter(chunks).then(move |c| async move {
                    tokio::time::sleep(pause).await;
                    Ok::<_, std::io::Error>(c)
                }),
            )
        }
    };
    if let Some(start) = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|s| *s < total)
    {
        return Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", total - 1),
            )
            .header(header::CONTENT_LENGTH, total - start)
            .body(body(content[start..].to_vec()))
            .unwrap();
    }
    Response::builder()
        .header(header::CONTENT_LENGTH, total)
        .body(body(content))
        .unwrap()
}
