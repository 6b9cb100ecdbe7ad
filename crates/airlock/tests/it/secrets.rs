//! No secret key material in any output, at any verbosity: every command that touches a key
//! (init, publish, sync, tls init, serve over HTTPS, export, import, snap import, verify, key,
//! demo)
//! runs at the most verbose level (`-vvv`, `AIRLOCK_LOG=trace`, `RUST_LOG=trace`), and all it
//! writes is searched for the secret bytes of the site keys and the TLS keys: hex in either
//! case with or without separators, decimal byte lists, and base64.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::site::whole_site;
use crate::common::upstream::pkg;
use crate::common::{AIRLOCK, Site, TLS, curl, dpkg_deb};
use base64::Engine;

/// Everything a command wrote, with what ran, for the scan.
struct Transcript(Vec<(String, Vec<u8>)>);

impl Transcript {
    /// Runs `airlock -vvv ARGS` at trace level with `config`; the command must succeed.
    fn run(&mut self, config: Option<&Path>, args: &[&str]) -> String {
        let mut command = Command::new(AIRLOCK);
        command
            .env("AIRLOCK_LOG", "trace")
            .env("RUST_LOG", "trace")
            .arg("-vvv");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let out: Output = command.args(args).output().unwrap();
        let mut all = out.stdout.clone();
        all.extend_from_slice(&out.stderr);
        assert!(
            out.status.success(),
            "airlock {args:?} failed:\n{}",
            String::from_utf8_lossy(&all)
        );
        self.0.push((args.join(" "), all));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn no_command_writes_secret_key_material_at_any_verbosity() {
    // The upstreams stay alive in `whole`: the sync below asks them again.
    let whole = whole_site("");
    let (a, work, archive) = (&whole.site, &whole.work, &whole.archive);
    let mut said = Transcript(Vec::new());

    // init, both key types.
    let fresh = tempfile::tempdir().unwrap();
    said.run(None, &["init", fresh.path().to_str().unwrap()]);
    let b_dir = tempfile::tempdir().unwrap();
    said.run(
        None,
        &[
            "init",
            "--key-type",
            "rsa4096",
            b_dir.path().to_str().unwrap(),
        ],
    );

    // publish and sync, each with something to sign.
    let debs = work.path().join("more");
    let deb = dpkg_deb(&debs, "extra", "1.0", "amd64", "", "xz");
    a.include("stable", "main", &deb);
    said.run(Some(&a.config()), &["publish"]);
    archive.add(&pkg(
        "stable",
        "main",
        "app",
        "1.1",
        "amd64",
        "Depends: libfoo\n",
    ));
    archive.publish();
    let out = said.run(Some(&a.config()), &["sync"]);
    assert!(out.contains("mirror: published"), "{out}");
    said.run(
        Some(&a.config()),
        &[
            "snap",
            "import",
            whole.snap.to_str().unwrap(),
            "--channel",
            "stable",
        ],
    );
    said.run(Some(&a.config()), &["key", "show"]);
    said.run(Some(&a.config()), &["key", "export", "--armor"]);

    // tls init, then serve over HTTPS with one request, and verify against the server.
    said.run(Some(&a.config()), &["tls", "init"]);
    a.site_settings(TLS);
    let server = a.serve_traced();
    let https = server.https.clone().expect("HTTPS is configured");
    let ca = a.path().join("tls/ca.pem");
    let got = curl(&[
        "-fsS",
        "--cacert",
        ca.to_str().unwrap(),
        &format!("{https}/"),
    ]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    said.run(Some(&a.config()), &["verify", "--url", &server.url]);
    let (_, log) = server.stop();
    said.0.push(("serve".into(), log.join("\n").into_bytes()));

    // export from A, import into B (which signs again with its RSA key), verify B.
    let bundle = work.path().join("bundle");
    said.run(
        Some(&a.config()),
        &["export", "--to", bundle.to_str().unwrap()],
    );
    let b = Site::with_config(
        b_dir,
        &format!(
            "{}\n[import]\ntrusted_keys = [\"{}\"]\n",
            whole.config,
            a.keyring().display()
        ),
    );
    std::fs::copy(a.path().join("root.assert"), b.path().join("root.assert")).unwrap();
    said.run(Some(&b.config()), &["import", bundle.to_str().unwrap()]);
    said.run(Some(&b.config()), &["verify", "--offline"]);

    // demo, with keys of its own: the demo site's, its upstream's, its snap root's.
    let demo = work.path().join("demo");
    let demo_arg = demo.to_str().unwrap();
    said.run(
        None,
        &["demo", demo_arg, "--no-serve", "--listen", "127.0.0.1:1"],
    );

    // The scan: the site keys' secret numbers, the TLS keys' private scalars.
    let mut secrets = Vec::new();
    for site in [a, &b] {
        let armored = std::fs::read_to_string(site.path().join("airlock.key")).unwrap();
        for secret in openpgp_secret_numbers(&armored) {
            assert_eq!(Seen::of(&armored).find(&secret), Some("base64"));
            secrets.push(secret);
        }
    }
    for name in ["ca.key", "server.key"] {
        let pem = std::fs::read_to_string(a.path().join("tls").join(name)).unwrap();
        let secret = ec_private_scalar(&pem);
        assert_eq!(Seen::of(&pem).find(&secret), Some("base64"));
        secrets.push(secret);
    }
    assert_eq!(secrets.len(), 7, "ed25519; RSA d, p, q, u; two TLS keys");
    for key in ["airlock.key", "upstream/airlock.key", "snaps/demo-root.key"] {
        let armored = std::fs::read_to_string(demo.join(key)).unwrap();
        secrets.extend(openpgp_secret_numbers(&armored));
    }
    assert_eq!(
        secrets.len(),
        13,
        "and the demo's: two ed25519, RSA d, p, q, u"
    );
    // The scan finds the forms a dump takes.
    for secret in &secrets {
        let upper = hex::encode_upper(secret);
        assert_eq!(
            Seen::of(&format!("rest: {upper}")).find(secret),
            Some("hex")
        );
        assert_eq!(
            Seen::of(&format!("{secret:02x?}")).find(secret),
            Some("hex")
        );
        assert_eq!(
            Seen::of(&format!("{secret:?}")).find(secret),
            Some("decimal bytes")
        );
    }
    let mut leaks = Vec::new();
    for (what, output) in &said.0 {
        let text = String::from_utf8_lossy(output);
        assert!(!text.is_empty(), "{what}: no output at trace level");
        let seen = Seen::of(&text);
        for secret in &secrets {
            if let Some(how) = seen.find(secret) {
                leaks.push(format!("`airlock {what}` wrote a secret key ({how})"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// An output in the forms a secret could take in it.
struct Seen {
    /// Every hex digit, lower case, `0x` prefixes dropped: hex with or without separators.
    hex: String,
    /// Every number up to 255, in order; a larger number or a word between breaks nothing but
    /// is kept as a marker, so a byte list matches only as printed.
    decimal: Vec<u16>,
    /// The text without white space (wrapped base64).
    compact: String,
}

impl Seen {
    fn of(text: &str) -> Seen {
        let lower = text.to_lowercase().replace("0x", "");
        let hex = lower.chars().filter(char::is_ascii_hexdigit).collect();
        let mut decimal = Vec::new();
        for run in text.split(|c: char| !c.is_ascii_digit()) {
            if !run.is_empty() {
                decimal.push(run.parse::<u16>().ok().filter(|n| *n < 256).unwrap_or(999));
            }
        }
        let compact = text.chars().filter(|c| !c.is_whitespace()).collect();
        Seen {
            hex,
            decimal,
            compact,
        }
    }

    /// How any 12-byte window of `secret` appears, if it does.
    fn find(&self, secret: &[u8]) -> Option<&'static str> {
        for window in secret.windows(12).step_by(4) {
            if self.hex.contains(&hex::encode(window)) {
                return Some("hex");
            }
            let numbers: Vec<u16> = window.iter().map(|b| u16::from(*b)).collect();
            if self.decimal.windows(12).any(|w| w == numbers) {
                return Some("decimal bytes");
            }
        }
        // A base64 text lines up with the secret at one of three offsets; its first 16
        // characters from there depend on the secret alone.
        for shift in 0..3 {
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
            ] {
                let encoded = engine.encode(&secret[shift..]);
                for start in (0..encoded.len().saturating_sub(20)).step_by(4) {
                    if self.compact.contains(&encoded[start..start + 16]) {
                        return Some("base64");
                    }
                }
            }
        }
        None
    }
}

/// The secret numbers (MPI values) of an unencrypted OpenPGP v4 secret key packet.
fn openpgp_secret_numbers(armored: &str) -> Vec<Vec<u8>> {
    let body: String = armored
        .lines()
        .skip_while(|l| !l.is_empty())
        .take_while(|l| !l.starts_with('=') && !l.starts_with("-----"))
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    // The first packet: its header, new or old format.
    let (tag, start, len) = if bytes[0] & 0x40 != 0 {
        let o = usize::from(bytes[1]);
        match o {
            0..192 => (bytes[0] & 0x3f, 2, o),
            192..224 => (
                bytes[0] & 0x3f,
                3,
                ((o - 192) << 8) + usize::from(bytes[2]) + 192,
            ),
            255 => (
                bytes[0] & 0x3f,
                6,
                u32::from_be_bytes(bytes[2..6].try_into().unwrap()) as usize,
            ),
            _ => panic!("partial length in a key packet"),
        }
    } else {
        let size = 1 << (bytes[0] & 3);
        let mut len = 0;
        for b in &bytes[1..1 + size] {
            len = (len << 8) | usize::from(*b);
        }
        ((bytes[0] >> 2) & 0xf, 1 + size, len)
    };
    assert_eq!(tag, 5, "a secret key packet first");
    let packet = &bytes[start..start + len];
    assert_eq!(packet[0], 4, "a v4 key");
    let mpi = |at: &mut usize| {
        let bits = usize::from(u16::from_be_bytes([packet[*at], packet[*at + 1]]));
        let value = packet[*at + 2..*at + 2 + bits.div_ceil(8)].to_vec();
        *at += 2 + value.len();
        value
    };
    let mut at = 6;
    let secret_count = match packet[5] {
        1 => {
            mpi(&mut at);
            mpi(&mut at);
            4
        }
        22 | 19 => {
            at += 1 + usize::from(packet[at]);
            mpi(&mut at);
            1
        }
        other => panic!("key algorithm {other}"),
    };
    assert_eq!(packet[at], 0, "not encrypted");
    at += 1;
    (0..secret_count).map(|_| mpi(&mut at)).collect()
}

/// The private scalar of a PKCS#8 P-256 key (rcgen's default): `02 01 01 04 20` then 32 bytes.
fn ec_private_scalar(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = der
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("an EC private key");
    der[at + marker.len()..at + marker.len() + 32].to_vec()
}
