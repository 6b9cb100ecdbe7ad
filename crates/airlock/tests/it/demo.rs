//! `airlock demo`: the whole product made offline in a temp folder (a local repo, a filtered
//! mirror and an image stream synced from an upstream site, a custom image, a snap), then
//! served by the demo itself and checked with real clients: apt-get, gpgv, curl, `airlock
//! verify`, and the recipe the demo prints, run as printed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::dnsmasq::free_port;
use crate::common::stream::signed_document;
use crate::common::{AIRLOCK, Apt, Server, curl};

fn demo(dir: &Path, listen: &str) -> String {
    let out = Command::new(AIRLOCK)
        .arg("demo")
        .arg(dir)
        .args(["--no-serve", "--listen", listen])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "airlock demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The commands the demo prints for another terminal, as one shell script.
fn recipe(printed: &str) -> String {
    printed
        .lines()
        .skip_while(|l| !l.starts_with("try it from another terminal"))
        .skip(1)
        .filter(|l| l.starts_with("  ") || l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_serves_repo_mirror_images_and_snaps_to_real_clients() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("airlock-demo");
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");

    let first = demo(&site, &listen);
    for line in [
        "demo site created",
        "demo/stable: published (3 packages",
        "mirror: published 6 packages (stable 6)",
        "images: published 3 products (1 bootloaders)",
        "images: custom image custom/airlock-demo",
        "imported hello-airlock revision 1",
        "verify (offline):",
    ] {
        assert!(first.contains(line), "{line:?} missing from:\n{first}");
    }
    assert!(!first.contains("FAILED"), "{first}");
    // A second run in the same folder reuses everything: the upstream is served on the same
    // port again, so the mirrors find it unchanged.
    let second = demo(&site, &listen);
    for line in [
        "demo site reused",
        "demo: nothing changed, nothing written",
        "mirror: upstream unchanged",
        "images: upstream unchanged",
        "custom image custom/airlock-demo already there",
        "already had hello-airlock revision 1",
    ] {
        assert!(second.contains(line), "{line:?} missing from:\n{second}");
    }
    assert_eq!(recipe(&first), recipe(&second));

    // The demo itself serves the site (a third run, reusing).
    let mut command = Command::new(AIRLOCK);
    command.arg("demo").arg(&site).args(["--listen", &listen]);
    let server = Server::start(command, false);
    assert_eq!(server.url, url);
    let keyring = site.join("airlock.gpg");
    let k = keyring.display();

    // apt: the local repo and the mirror, which has the selected package and its
    // dependencies, not the package the filter leaves out.
    let apt = Apt::new(
        &format!(
            "deb [signed-by={k}] {url}/apt/demo stable main\ndeb [signed-by={k}] {url}/apt/mirror stable main"
        ),
        "amd64",
    );
    apt.ok(&["update"]);
    apt.ok(&[
        "download",
        "airlock-hello",
        "airlock-greeting",
        "upstream-tool",
        "libupstream1",
        "upstream-data",
    ]);
    assert!(
        apt.downloaded("upstream-tool_1.0_amd64.deb")
            .starts_with(b"!<arch>\n")
    );
    assert!(
        apt.downloaded("airlock-hello_1.0_amd64.deb")
            .starts_with(b"!<arch>\n")
    );
    let (ok, text) = apt.run(&["download", "upstream-extra"]);
    assert!(
        !ok,
        "the mirror's filter leaves upstream-extra out:\n{text}"
    );

    // The image stream, as MAAS reads it: signed by the site key, the selected releases on
    // amd64 only, the bootloader, the custom image.
    let index = signed_document(&format!("{url}/images/streams/v1/index.sjson"), &keyring);
    let mut products: Vec<&str> = index["index"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|entry| entry["products"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    products.sort();
    assert_eq!(
        products,
        [
            "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64",
            "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04",
            "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
            "io.airlock.custom.stable:custom-bases:airlock-demo:amd64",
        ]
    );

    // The snap store API answers for the demo's snap.
    let out = curl(&[
        "-f",
        "-H",
        "Snap-Device-Series: 16",
        &format!("{url}/v2/snaps/info/hello-airlock"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "hello-airlock");
    assert_eq!(info["snap"]["publisher"]["username"], "airlock-demo");
    let channels: Vec<(&str, &str)> = info["channel-map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"]["architecture"].as_str().unwrap(),
                c["channel"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(channels, [("amd64", "latest/stable")]);

    // airlock verify, online, against the served site.
    let config = site.join("airlock.toml");
    let out = Command::new(AIRLOCK)
        .arg("--config")
        .arg(&config)
        .args(["verify", "--full"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The recipe, run as printed.
    let out = Command::new("sh")
        .args(["-e", "-c", &recipe(&first)])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the recipe failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "airlock-hello_1.0_amd64.deb",
        "upstream-tool_1.0_amd64.deb",
        "\"com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04\"",
        "\"com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04\"",
        "\"name\":\"hello-airlock\"",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("v3:boot") && l.contains("arm64")),
        "the selection is amd64 only:\n{stdout}"
    );
    assert!(!stdout.contains("\"com.ubuntu.maas:stable"), "{stdout}");
    assert_eq!(
        stderr.matches("Good signature").count(),
        3,
        "gpgv checks the index, the products document and the InRelease:\n{stderr}"
    );
    drop(server);
}
