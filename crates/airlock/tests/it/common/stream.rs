//! A test simplestreams feed shaped like images.maas.io: Ubuntu products (two releases, two
//! architectures, a second kernel sharing its release's squashfs), bootloader products, two
//! versions of each; documents clearsigned by gpg with a fresh key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::Digest;

use super::{curl, gpgv};

pub const UBUNTU: &str = "com.ubuntu.maas:stable:v3:download";
pub const BOOTLOADERS: &str = "com.ubuntu.maas:stable:1:bootloader-download";
pub const SERIALS: [&str; 2] = ["20250101", "20250201"];

pub struct Stream {
    pub dir: tempfile::TempDir,
    gnupg: tempfile::TempDir,
    pub keyring: PathBuf,
}

impl Stream {
    pub fn new() -> Stream {
        let dir = tempfile::tempdir().unwrap();
        let gnupg = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            gnupg.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let stream = Stream {
            keyring: dir.path().join("stream-keyring.gpg"),
            dir,
            gnupg,
        };
        stream.gpg(&[
            "--quick-gen-key",
            "Test Images <images@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        std::fs::write(&stream.keyring, stream.gpg(&["--export"])).unwrap();
        stream.build();
        stream
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.gnupg.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Writes a file of the stream and returns its item entry.
    fn item(&self, ftype: &str, path: &str, seed: &str) -> Value {
        let file = self.path().join(path);
        let content = if file.exists() {
            std::fs::read(&file).unwrap()
        } else {
            let content = format!("{seed}\n").repeat(2000).into_bytes();
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &content).unwrap();
            content
        };
        json!({"ftype": ftype, "path": path, "size": content.len(),
               "sha256": hex::encode(sha2::Sha256::digest(&content))})
    }

    fn build(&self) {
        let mut ubuntu = serde_json::Map::new();
        for (release, version) in [("jammy", "22.04"), ("noble", "24.04")] {
            for arch in ["amd64", "arm64"] {
                for kernel in [format!("ga-{version}"), format!("hwe-{version}")] {
                    let mut versions = serde_json::Map::new();
                    for serial in SERIALS {
                        let base = format!("{release}/{arch}/{serial}");
                        versions.insert(serial.into(), json!({"items": {
                            "boot-kernel": self.item("boot-kernel", &format!("{base}/{kernel}/generic/boot-kernel"), &format!("kernel {base} {kernel}")),
                            "boot-initrd": self.item("boot-initrd", &format!("{base}/{kernel}/generic/boot-initrd"), &format!("initrd {base} {kernel}")),
                            // One squashfs per release, arch and serial, shared by its kernels.
                            "squashfs": self.item("squashfs", &format!("{base}/squashfs"), &format!("squashfs {base}")),
                            "manifest": self.item("manifest", &format!("{base}/squashfs.manifest"), &format!("manifest {base}")),
                        }}));
                    }
                    ubuntu.insert(
                        format!("com.ubuntu.maas.stable:v3:boot:{version}:{arch}:{kernel}"),
                        json!({"arch": arch, "os": "ubuntu", "release": release, "version": version,
                               "release_title": format!("{version} LTS"), "release_codename": release,
                               "subarch": kernel, "subarches": "generic", "kflavor": "generic",
                               "krel": release, "label": "stable", "support_eol": "2034-04-25",
                               "versions": versions}),
                    );
                }
            }
        }
        let mut bootloaders = serde_json::Map::new();
        for (os, kind, arch, items) in [
            (
                "grub-efi-signed",
                "uefi",
                "amd64",
                &["grub2-signed", "shim-signed"][..],
            ),
            ("pxelinux", "pxe", "i386", &["syslinux"][..]),
        ] {
            let mut versions = serde_json::Map::new();
            for serial in SERIALS {
                let mut entries = serde_json::Map::new();
                for item in items {
                    let path = format!("bootloaders/{kind}/{arch}/{serial}.0/{item}.tar.xz");
                    let mut entry = self.item("archive.tar.xz", &path, &path);
                    entry["src_package"] = json!(item);
                    entries.insert(item.to_string(), entry);
                }
                versions.insert(format!("{serial}.0"), json!({ "items": entries }));
            }
            bootloaders.insert(
                format!("com.ubuntu.maas.stable:1:{os}:{kind}:{arch}"),
                json!({"arch": arch, "arches": arch, "bootloader-type": kind, "label": "stable",
                       "os": os, "versions": versions}),
            );
        }
        self.write_products(UBUNTU, Value::Object(ubuntu));
        self.write_products(BOOTLOADERS, Value::Object(bootloaders));
        self.write_index();
    }

    fn products_path(content_id: &str) -> String {
        format!("streams/v1/{content_id}.json")
    }

    fn write_products(&self, content_id: &str, products: Value) {
        let document = json!({"content_id": content_id, "datatype": "image-ids",
            "format": "products:1.0", "updated": "Thu, 24 Jul 2025 09:01:42 +0000",
            "products": products});
        self.write_signed(&Self::products_path(content_id), &document);
    }

    fn write_index(&self) {
        let mut index = serde_json::Map::new();
        for content_id in [UBUNTU, BOOTLOADERS] {
            let document: Value = serde_json::from_slice(
                &std::fs::read(self.path().join(Self::products_path(content_id))).unwrap(),
            )
            .unwrap();
            let products: Vec<&String> = document["products"].as_object().unwrap().keys().collect();
            index.insert(
                content_id.into(),
                json!({"datatype": "image-ids", "format": "products:1.0",
                       "path": Self::products_path(content_id).replace(".json", ".sjson"),
                       "products": products, "updated": "Thu, 24 Jul 2025 09:01:42 +0000"}),
            );
        }
        self.write_signed(
            "streams/v1/index.json",
            &json!({"format": "index:1.0", "updated": "Thu, 24 Jul 2025 09:01:42 +0000",
                    "index": index}),
        );
    }

    fn write_signed(&self, path: &str, document: &Value) {
        let file = self.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_string_pretty(document).unwrap()).unwrap();
        let signed = file.with_extension("sjson");
        self.gpg(&[
            "--clearsign",
            "-o",
            signed.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
    }

    /// Edits the Ubuntu products document, then signs it and the index again (a hostile but
    /// properly signed upstream).
    pub fn edit_ubuntu(&self, edit: impl Fn(&mut Value)) {
        let path = self.path().join(Self::products_path(UBUNTU));
        let mut document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut document);
        self.write_signed(&Self::products_path(UBUNTU), &document);
        self.write_index();
    }
}

/// GETs a clearsigned document and checks its signature with gpgv and `keyring`; returns its
/// text.
pub fn get_clearsigned(url: &str, keyring: &Path) -> String {
    let out = curl(&["-fs", url]);
    assert!(out.status.success(), "GET {url}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("document.sjson");
    std::fs::write(&file, &out.stdout).unwrap();
    let (ok, text) = gpgv(keyring, &[&file]);
    assert!(ok, "gpgv {url}: {text}");
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON of a clearsigned document, read as MAAS 3.8 reads it: from the first '{' to the
/// signature.
pub fn clearsigned_json(text: &str) -> Value {
    let body = &text[text.find('{').unwrap()..text.find("-----BEGIN PGP SIGNATURE").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// GETs a clearsigned document, checks it with gpgv and `keyring` and that it has no
/// dash-escaped line (MAAS reads the JSON between the headers as is), returns its JSON.
pub fn signed_document(url: &str, keyring: &Path) -> Value {
    let text = get_clearsigned(url, keyring);
    assert!(
        !text.lines().any(|l| l.starts_with("- ")),
        "dash-escaped lines in {url}"
    );
    clearsigned_json(&text)
}
