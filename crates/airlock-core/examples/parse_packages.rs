//! Times reading a Packages index the way `airlock sync` does (streaming, one compact record
//! per package): `cargo run --release --example parse_packages FILE`.
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_packages FILE");
    let started = Instant::now();
    let mut file = std::io::BufReader::new(std::fs::File::open(&path).expect("readable file"));
    let records = airlock_core::apt::index::read_packages(&mut file).expect("a Packages index");
    let with_depends = records.iter().filter(|r| r.depends().is_some()).count();
    println!(
        "{} packages ({with_depends} with Depends) in {:.3} s",
        records.len(),
        started.elapsed().as_secs_f64()
    );
}
