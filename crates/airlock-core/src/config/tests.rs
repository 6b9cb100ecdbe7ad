use super::*;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/etc/airlock/airlock.toml")).map_err(|e| e.to_string())
}

const GOOD: &str = r#"
[site]
data_dir = "/srv/airlock"
listen = "127.0.0.1:9000"

[[apt.repo]]
name = "local"
suites = ["stable", "testing"]
components = ["main"]
architectures = ["amd64", "arm64"]
valid_for = "7d"
"#;

#[test]
fn parses_and_resolves_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.site.data_dir, PathBuf::from("/srv/airlock"));
    assert_eq!(
        c.site.signing_key,
        PathBuf::from("/etc/airlock/airlock.key")
    );
    assert_eq!(c.site.public_url, "http://127.0.0.1:9000");
    let repo = c.repo("local").unwrap();
    assert_eq!(
        repo.valid_for,
        Some(Period(Duration::from_secs(7 * 86_400)))
    );
    assert_eq!(repo.keep_versions, 1);
    assert!(repo.has_suite("testing") && !repo.has_suite("unstable"));
}

#[test]
fn errors_point_at_the_line() {
    let cases = [
        (
            GOOD.replace("valid_for", "valid_four"),
            "line 11",
            "unknown field",
        ),
        (
            GOOD.replace("\"7d\"", "\"7x\""),
            "line 11",
            "not a duration",
        ),
        (
            GOOD.replace("\"arm64\"", "\"ARM 64\""),
            "line 10",
            "not a valid Debian architecture",
        ),
        (
            GOOD.replace("\"local\"", "\"../etc\""),
            "line 7",
            "not a valid name",
        ),
        (
            GOOD.replace("127.0.0.1:9000", "nowhere"),
            "line 4",
            "invalid socket address",
        ),
        (
            GOOD.replace("[\"main\"]", "[]"),
            "line 9",
            "must not be empty",
        ),
        (
            format!(
                "{GOOD}\n[[apt.repo]]\nname = \"local\"\nsuites = [\"a\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n"
            ),
            "line 14",
            "already defined",
        ),
        (
            GOOD.replace("\"testing\"", "\"stable\""),
            "line 8",
            "listed twice",
        ),
    ];
    for (text, line, reason) in cases {
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains(line) && err.contains(reason),
            "expected {line} and {reason:?} in: {err}"
        );
        assert!(err.contains("/etc/airlock/airlock.toml"), "{err}");
    }
}

#[test]
fn publish_combines_configured_suites() {
    let mirror = "\n[[apt.mirror]]\nname = \"debian\"\nurl = \"http://deb.example/debian\"\nsuites = [\"bookworm\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nallow_unsigned = true\n";
    let publish = "\n[[apt.publish]]\nname = \"site\"\nsuites = { bookworm = [\"local/stable\", \"debian/bookworm\"] }\n";
    let c = parse(&format!("{GOOD}{mirror}{publish}")).unwrap();
    let p = &c.apt.publish[0];
    assert_eq!(p.suites[0].0.as_str(), "bookworm");
    let sources: Vec<String> = p.suites[0].1.iter().map(|s| s.to_string()).collect();
    assert_eq!(sources, ["local/stable", "debian/bookworm"]);

    for (bad, reason) in [
        ("bookworm", "\"bookworm\" must name a repo or mirror"),
        (
            "local/stable\", \"nowhere/x",
            "no repo or mirror named \"nowhere\"",
        ),
        (
            "local/stable\", \"debian/sid",
            "debian has no suite \"sid\"",
        ),
    ] {
        let text =
            format!("{GOOD}{mirror}{publish}").replace("local/stable\", \"debian/bookworm", bad);
        let err = parse(&text).unwrap_err();
        assert!(err.contains(reason), "expected {reason:?} in: {err}");
    }
    let text = format!("{GOOD}{mirror}{publish}").replace("\"site\"", "\"debian\"");
    assert!(parse(&text).unwrap_err().contains("already defined"));
}

#[test]
fn mirror_alternatives() {
    let mirror = "\n[[apt.mirror]]\nname = \"debian\"\nurl = \"http://deb.example/debian\"\nsuites = [\"bookworm\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nallow_unsigned = true\npackages = [\"squid\"]\n";
    let c = parse(&format!("{GOOD}{mirror}")).unwrap();
    assert_eq!(c.apt.mirrors[0].alternatives, Alternatives::Apt);
    let c = parse(&format!("{GOOD}{mirror}alternatives = \"all\"\n")).unwrap();
    assert_eq!(c.apt.mirrors[0].alternatives, Alternatives::All);
    let err = parse(&format!("{GOOD}{mirror}alternatives = \"first\"\n")).unwrap_err();
    assert!(
        err.contains("unknown variant `first`, expected `apt` or `all`") && err.contains("line "),
        "{err}"
    );
}

#[test]
fn tls_and_snaps_settings() {
    let text = GOOD.replace(
        "listen = \"127.0.0.1:9000\"",
        "listen = \"127.0.0.1:9000\"\npublic_url = \"http://mirror.lan:8080/airlock\"\ntls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"",
    );
    let c = parse(&format!(
        "{text}\n[snaps]\nupstream = \"https://store.lan\"\n\n[[snaps.snap]]\nname = \"maas\"\n"
    ))
    .unwrap();
    let tls = c.site.tls.unwrap();
    assert_eq!(tls.public_url, "https://mirror.lan:8443");
    assert_eq!(tls.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(tls.cert, PathBuf::from("/etc/airlock/tls/server.pem"));
    assert_eq!(c.snaps.upstream, "https://store.lan/");
    assert_eq!(c.snaps.snaps[0].channels, ["stable"]);
    assert_eq!(c.snaps.snaps[0].architectures, ["amd64"]);
    let e =
        parse(&GOOD.replace("listen = \"127.0.0.1:9000\"", "tls_cert = \"x.pem\"")).unwrap_err();
    assert!(
        e.to_string().contains("tls_cert and tls_key go together"),
        "{e}"
    );
}

#[test]
fn images_section() {
    let images = "\n[images]\nurl = \"http://images.example/stable\"\nkeyring = \"k.gpg\"\nfilters = [\"arch=amd64\"]\n\n[[images.select]]\nos = \"ubuntu\"\nrelease = \"noble\"\n";
    let c = parse(&format!("{GOOD}{images}")).unwrap();
    let i = c.images.unwrap();
    assert_eq!(i.url, "http://images.example/stable/");
    assert_eq!(i.keyring, [PathBuf::from("/etc/airlock/k.gpg")]);
    assert_eq!(i.select[0].release, ["noble"]);
    assert_eq!(i.select[0].arches, ["*"]);
    for (from, to, reason) in [
        ("\"arch=amd64\"", "\"arch\"", "is not a filter"),
        (
            "keyring = \"k.gpg\"",
            "keyring = \"k.gpg\"\nmode = \"copy\"",
            "unknown variant `copy`",
        ),
    ] {
        let text = format!("{GOOD}{images}").replace(from, to);
        let err = parse(&text).unwrap_err();
        assert!(err.contains(reason) && err.contains("line 1"), "{err}");
    }
}

proptest::proptest! {
    /// Garbled configs are errors, never panics.
    #[test]
    fn garbled_configs_never_panic(cut in 0usize..400, junk in "[ -~\n]{0,20}") {
        let text = format!("{}{junk}", &GOOD[..cut.min(GOOD.len())]);
        let _ = parse(&text);
    }
}

const MIRRORS: &str = r#"
[site]
public_url = "http://airlock.example:8080"

[[apt.mirror]]
name = "ubuntu"
url = "http://gb.archive.ubuntu.com/ubuntu/"
suites = ["noble"]
components = ["main"]
architectures = ["amd64"]
keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"

[[apt.mirror]]
name = "inhouse"
url = "http://10.0.0.1/debian"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
allow_unsigned = true

[images]
url = "http://images.maas.io/ephemeral-v3/stable/"
keyring = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg"
"#;

#[test]
fn proxy_routes_come_from_the_mirrors_and_the_config() {
    let c = parse(&format!(
        "{MIRRORS}\n[[proxy.route]]\nhost = \"Ports.Ubuntu.com.\"\npath = \"/ubuntu-ports/\"\nto = \"apt/ubuntu\"\n"
    ))
    .unwrap();
    let routes: Vec<(String, String)> = c
        .proxy
        .routes
        .iter()
        .map(|r| {
            (
                format!("{}{}", r.host, r.path),
                format!("{} {}", r.to, r.upstream),
            )
        })
        .collect();
    let expect =
        |host: &str, to: &str, upstream: &str| (host.to_string(), format!("{to} {upstream}"));
    assert_eq!(
        routes,
        [
            expect(
                "ports.ubuntu.com/ubuntu-ports",
                "/apt/ubuntu",
                "http://ports.ubuntu.com/ubuntu-ports/"
            ),
            expect(
                "gb.archive.ubuntu.com/ubuntu",
                "/apt/ubuntu",
                "http://gb.archive.ubuntu.com/ubuntu/"
            ),
            expect(
                "archive.ubuntu.com/ubuntu",
                "/apt/ubuntu",
                "http://archive.ubuntu.com/ubuntu/"
            ),
            expect(
                "security.ubuntu.com/ubuntu",
                "/apt/ubuntu",
                "http://security.ubuntu.com/ubuntu/"
            ),
            // An address cannot be pointed here by DNS: no route for the in-house mirror.
            expect(
                "images.maas.io/ephemeral-v3/stable",
                "/images",
                "http://images.maas.io/ephemeral-v3/stable/"
            ),
        ]
    );
    assert_eq!(
        c.overridden_names(),
        [
            "archive.ubuntu.com",
            "gb.archive.ubuntu.com",
            "images.maas.io",
            "ports.ubuntu.com",
            "security.ubuntu.com"
        ]
    );
    let none = parse(&format!("{MIRRORS}\n[proxy]\ndefaults = false\n")).unwrap();
    assert!(none.proxy.routes.is_empty());
}

#[test]
fn proxy_and_dns_mistakes_are_named() {
    for (extra, message) in [
        (
            "[[proxy.route]]\nhost = \"a.example\"\nto = \"apt/nope\"\n",
            "no repo, mirror or publish is named \"nope\"",
        ),
        (
            "[[proxy.route]]\nhost = \"a.example\"\nto = \"srv\"\n",
            "must name a published tree",
        ),
        (
            "[[proxy.route]]\nhost = \"a example\"\nto = \"images\"\n",
            "is not a host name",
        ),
        (
            "[[proxy.route]]\nhost = \"a.example\"\npath = \"/x/../y\"\nto = \"images\"\n",
            "must look like",
        ),
        (
            "[[proxy.route]]\nhost = \"a.example\"\nto = \"images\"\n[[proxy.route]]\nhost = \"A.example\"\npath = \"/\"\nto = \"apt/ubuntu\"\n",
            "a.example is routed twice",
        ),
        (
            "[proxy]\npassthrough = [\"esm.ubuntu.com\"]\n",
            "must be HOST:PORT",
        ),
        ("[dns]\nlisten = \"127.0.0.1:53\"\n", "set [dns] address"),
        ("[dns]\nnames = [\"not a name\"]\n", "is not a host name"),
    ] {
        let text = format!(
            "{}{extra}",
            MIRRORS.replace("airlock.example:8080", "127.0.0.1:8080")
        );
        let error = parse(&text).unwrap_err();
        assert!(error.contains(message), "{extra}: {error}");
    }
    // An address in public_url is what DNS answers with unless told.
    let c = parse(&MIRRORS.replace("airlock.example", "10.0.0.5")).unwrap();
    assert_eq!(
        c.dns.addresses,
        ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn storage_is_local_unless_s3_is_configured() {
    assert_eq!(parse(GOOD).unwrap().storage, StorageConfig::Local);
    let s3 = format!(
        "{GOOD}\n[storage]\nkind = \"s3\"\nendpoint = \"http://10.0.0.9:3900/\"\nbucket = \"airlock\"\nregion = \"garage\"\nprefix = \"site-a\"\naccess_key_file = \"s3.id\"\nsecret_key_file = \"/etc/airlock/s3.secret\"\ncache_dir = \"/var/cache/airlock\"\ncache_size = \"50GB\"\nkeep_pushed = \"20GB\"\n"
    );
    let StorageConfig::S3(s) = parse(&s3).unwrap().storage else {
        panic!("not s3");
    };
    assert_eq!(s.endpoint, "http://10.0.0.9:3900");
    assert_eq!(
        (s.bucket.as_str(), s.region.as_str()),
        ("airlock", "garage")
    );
    assert_eq!(s.prefix, "site-a/");
    assert_eq!(s.access_key_file, Some(PathBuf::from("/etc/airlock/s3.id")));
    assert_eq!(s.cache_size, 50_000_000_000);
    assert_eq!(s.poll, Duration::from_secs(5));
    assert_eq!(s.keep_pushed, Some(20_000_000_000));

    for (storage, expected) in [
        ("bucket = \"airlock\"\n", "bucket is for kind = \"s3\""),
        (
            "keep_pushed = \"1GB\"\n",
            "keep_pushed is for kind = \"s3\"",
        ),
        ("kind = \"s3\"\nbucket = \"airlock\"\n", "needs endpoint"),
        ("kind = \"s3\"\nendpoint = \"http://h:1\"\n", "needs bucket"),
        (
            "kind = \"s3\"\nendpoint = \"ftp://h\"\nbucket = \"airlock\"\n",
            "must be http:// or https://",
        ),
        (
            "kind = \"s3\"\nendpoint = \"http://id:secret@h:1\"\nbucket = \"airlock\"\n",
            "not the URL",
        ),
        (
            "kind = \"s3\"\nendpoint = \"http://h:1\"\nbucket = \"Air_Lock\"\n",
            "not an S3 bucket name",
        ),
        (
            "kind = \"s3\"\nendpoint = \"http://h:1\"\nbucket = \"airlock\"\nprefix = \"../x\"\n",
            "without . or ..",
        ),
        (
            "kind = \"s3\"\nendpoint = \"http://h:1\"\nbucket = \"airlock\"\naccess_key_file = \"a\"\n",
            "go together",
        ),
        (
            "kind = \"s3\"\nendpoint = \"http://h:1\"\nbucket = \"airlock\"\ncache_size = \"lots\"\n",
            "not a size",
        ),
        ("kind = \"ceph\"\n", "unknown variant"),
    ] {
        let err = parse(&format!("{GOOD}\n[storage]\n{storage}")).unwrap_err();
        assert!(err.contains(expected), "{storage}: {err}");
    }
}
