//! airlock-core: everything an air-gapped MAAS site downloads, held and served from one place.
//!
//! Goals: every byte from outside is checked against a signed index before anyone sees it;
//! every publish is atomic; a crash leaves the old state served; nothing here prints (long
//! work reports through [`report::Reporter`]).
//!
//! A tour:
//! - [`config`]: `airlock.toml`, typed and validated ([`config::Config`]).
//! - [`site`]: a config, its data folder and its signing key ([`site::Site`]); `init`.
//! - [`storage`]: the content store ([`storage::ContentStore`]), atomic writes, the site lock,
//!   published trees switched by one rename ([`storage::TreeSet`]).
//! - [`openpgp`]: the site key ([`openpgp::SiteKey`]) and signature checks ([`openpgp::Keyring`]).
//! - [`apt`]: deb822, .deb files, local repos ([`apt::repo`]), Release files, publishing.
//! - [`http`]: what every HTTP answer shares: the static file responder, JSON bodies.
//! - [`io`]: files read from start to end, with the kernel reading ahead.
//! - [`server`]: the HTTP server for everything published ([`server::router`]).
//! - [`snap`]: the offline snap store: assertions, catalog, the API snapd calls.
//! - [`proxy`]: requests for upstream names (archive.ubuntu.com ...) served from the mirrors.
//! - [`dns`]: pointing those names at this server: config snippets and a small responder.
//! - [`bundle`]: export and import across the gap: signed manifests, tar volumes.
//! - [`demo`]: a ready-made site for a first look, using every part above, made offline.

pub mod apt;
pub mod backup;
pub mod bundle;
pub mod config;
pub mod demo;
pub mod dns;
pub mod gc;
pub mod hint;
pub mod http;
pub mod io;
pub mod net;
pub mod openpgp;
pub mod proxy;
pub mod remote;
pub mod report;
pub mod server;
pub mod simplestreams;
pub mod site;
pub mod snap;
pub mod status;
pub mod storage;
pub mod tls;
pub mod util;
pub mod verify;
