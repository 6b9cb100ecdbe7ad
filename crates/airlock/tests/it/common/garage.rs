//! Garage, a real S3-compatible object store, as a one-node cluster on loopback ports with one
//! bucket and one key: the object store the S3 tests run against. Garage is AGPL: run as a
//! separate program (installed by `.ci/run` with `cargo install garage`), never linked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::dnsmasq::free_port;

pub const REGION: &str = "garage";
pub const BUCKET: &str = "airlock";

pub struct Garage {
    dir: tempfile::TempDir,
    server: Child,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

/// The garage binary: `$GARAGE`, else `garage` on the PATH, else cargo's bin folder.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GARAGE") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("garage"))
        .find(|p| p.is_file());
    let cargo_bin = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin/garage"));
    on_path
        .or(cargo_bin.filter(|p| p.is_file()))
        .expect("garage not found: .ci/run installs it (cargo install garage --locked --no-default-features --features bundled-libs,lmdb,sqlite)")
}

impl Garage {
    /// Starts the server, gives it a layout, makes the bucket and a key allowed to use it.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let config = format!(
            "metadata_dir = \"{root}/meta\"\n\
             data_dir = \"{root}/data\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\
             [s3_api]\n\
             s3_region = \"{REGION}\"\n\
             api_bind_addr = \"127.0.0.1:{s3}\"\n\
             [admin]\n\
             api_bind_addr = \"127.0.0.1:{admin}\"\n",
            root = dir.path().display(),
            secret = hex::encode(random_bytes()),
        );
        std::fs::write(dir.path().join("garage.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let server = Command::new(binary())
            .arg("-c")
            .arg(dir.path().join("garage.toml"))
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage starts");
        let mut garage = Garage {
            dir,
            server,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.wait_until_up();
        let id = garage.cli(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap().to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.cli(&["bucket", "create", BUCKET]);
        let key = garage.cli(&["key", "create", "airlock-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in `garage key create`:\n{key}"))
                .trim()
                .to_string()
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        garage.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "airlock-test",
        ]);
        garage
    }

    fn command(&self) -> Command {
        let mut command = Command::new(binary());
        command.arg("-c").arg(self.dir.path().join("garage.toml"));
        command
    }

    /// Runs the garage CLI against this server; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out: Output = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self
                .command()
                .arg("status")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return;
            }
            if let Some(exit) = self.server.try_wait().unwrap() {
                panic!("garage exited ({exit}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "garage did not answer within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server: from now on the bucket answers nothing.
    pub fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// A `[storage]` table for this bucket through `endpoint` (this server's, or a relay's) under
    /// `prefix`, with `extra` lines; the credentials in files beside the server's data, so
    /// that every command of a site (and a frontend) finds them without the environment.
    pub fn storage(&self, endpoint: &str, prefix: &str, extra: &str) -> String {
        let (id, secret) = (
            self.dir.path().join("access_key"),
            self.dir.path().join("secret_key"),
        );
        std::fs::write(&id, &self.key_id).unwrap();
        std::fs::write(&secret, &self.secret).unwrap();
        format!(
            "[storage]\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{BUCKET}\"\nregion = \"{REGION}\"\nprefix = \"{prefix}\"\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\n{extra}",
            id.display(),
            secret.display()
        )
    }

    /// The `[storage]` table of a site on this bucket, under `prefix` (ending in `/`).
    pub fn storage_config(&self, prefix: &str, poll: &str) -> String {
        self.storage(&self.endpoint, prefix, &format!("poll = \"{poll}\"\n"))
    }

    /// `airlock serve` as a frontend of this bucket under `prefix`: its config in `dir` (no
    /// data folder), `site` lines in `[site]` (HTTPS too with `tls_cert`), `storage` lines in
    /// `[storage]` (and any table after it).
    pub fn serve_frontend(
        &self,
        dir: &Path,
        prefix: &str,
        poll: &str,
        site: &str,
        storage: &str,
    ) -> super::Server {
        let config = dir.join("airlock.toml");
        std::fs::write(
            &config,
            format!(
                "[site]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\nsigning_key = \"airlock.key\"\n{site}\n{}{storage}",
                self.storage_config(prefix, poll)
            ),
        )
        .unwrap();
        let mut command = Command::new(super::AIRLOCK);
        command.arg("--config").arg(&config).arg("serve");
        super::Server::start(command, site.contains("tls_cert"))
    }

    /// [`Garage::serve_frontend`] in a folder of its own, with nothing added.
    pub fn start_frontend(&self, prefix: &str, poll: &str) -> (tempfile::TempDir, super::Server) {
        let dir = tempfile::tempdir().unwrap();
        let server = self.serve_frontend(dir.path(), prefix, poll, "", "");
        (dir, server)
    }

    /// The bucket's settings as the library takes them, under `prefix`.
    pub fn settings(&self, prefix: &str) -> airlock_core::storage::bucket::BucketSettings {
        airlock_core::storage::bucket::BucketSettings {
            endpoint: self.endpoint.clone(),
            bucket: BUCKET.into(),
            region: REGION.into(),
            prefix: prefix.into(),
            access_key_id: self.key_id.clone(),
            secret_access_key: airlock_core::storage::bucket::Secret::new(self.secret.clone()),
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

fn random_bytes() -> [u8; 32] {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A runtime for the library's async bucket calls in a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every key under `prefix` in `bucket`.
pub fn keys(
    bucket: &airlock_core::storage::bucket::Bucket,
    prefix: &str,
) -> std::collections::BTreeSet<String> {
    runtime()
        .block_on(bucket.list(prefix))
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect()
}

/// The pointer as `bucket` has it now.
pub fn pointer(bucket: &airlock_core::storage::bucket::Bucket) -> airlock_core::remote::Published {
    runtime()
        .block_on(airlock_core::remote::read_pointer(bucket))
        .unwrap()
        .expect("a pointer")
        .0
}
