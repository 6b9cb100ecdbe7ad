//! The integration tests, one binary (`it`) with a module per topic: one link step for all of
//! them instead of one per file, and the helpers in `common` compiled once, with dead-code
//! warnings that mean something (a helper no module uses is reported, not allowed).
//!
//! Each test runs the real `airlock` binary against real clients and tools on 127.0.0.1.

mod common;

mod apt_mirror;
mod apt_repo;
mod backup;
mod bad_input;
mod bucket;
mod bucket_gc;
mod bundle;
mod cli;
mod closure;
mod crash;
mod demo;
mod dns;
mod dns_limits;
mod frontend;
mod images;
mod input_limits;
mod json;
mod mirror_bad_input;
mod package;
mod proxy;
mod publish_during_update;
mod quiet;
mod remote_writer;
mod secrets;
mod server_edges;
mod server_limits;
mod server_reload;
mod snaps;
mod status;
mod verify;
mod writer_cache;
