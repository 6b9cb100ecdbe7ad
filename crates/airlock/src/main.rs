//! The `airlock` command: parses arguments, runs one library entry point, renders the outcome.

mod cli;
mod commands;
mod printer;
mod reporters;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// glibc's per-thread arenas fragment under airlock's pattern (many files, each with a few
/// short-lived buffers and one long-lived record): 48-61 MB resident to include 2,000 small
/// packages, against 17 MB with mimalloc (its transparent huge pages off: with them, 35 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            render_error(&error);
            ExitCode::FAILURE
        }
    }
}

/// The crates whose records pass at whatever level the operator asks for. Every other target
/// is capped at WARN, whatever `-v`, `AIRLOCK_LOG` or `RUST_LOG` says: rPGP logs each key
/// packet it parses at DEBUG, secret half included, and a dependency added later must not be
/// able to do the same without someone deciding to let it through here.
const VERBOSE_CRATES: &[&str] = &["airlock", "airlock_core", "reqwest", "hickory_proto"];

fn init_logging(cli: &Cli) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "info,airlock=debug,airlock_core=debug",
        _ => "debug",
    };
    let asked = EnvFilter::try_from_env("AIRLOCK_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let capped = filter_fn(|metadata| {
        *metadata.level() <= tracing::Level::WARN || {
            let krate = metadata.target().split("::").next().unwrap_or_default();
            VERBOSE_CRATES.contains(&krate)
        }
    });
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(asked.and(capped));
    tracing_subscriber::registry().with(output).init();
}

/// `error: …`, then each cause, then a hint where we know the fix. Each error of the chain
/// says only its own part, so nothing repeats.
fn render_error(error: &anyhow::Error) {
    for (i, cause) in error.chain().enumerate() {
        if i == 0 {
            eprintln!("error: {cause}");
        } else {
            eprintln!("  caused by: {cause}");
        }
    }
    if let Some(hint) = error.chain().find_map(hint_of) {
        eprintln!("  hint: {hint}");
    }
}

/// The hint of one error of the chain, when it is one of the library's: the outermost such
/// error answers for the ones it wraps.
fn hint_of(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use airlock_core::hint::Hint;
    use airlock_core::{apt, backup, bundle, config, demo, dns, gc, net, openpgp, server};
    use airlock_core::{remote, simplestreams, site, snap, storage, tls};
    macro_rules! ask {
        ($($error:ty),* $(,)?) => {
            $(
                if let Some(e) = error.downcast_ref::<$error>() {
                    return e.hint();
                }
            )*
        };
    }
    ask!(
        apt::AptError,
        apt::deb::DebError,
        apt::index::IndexError,
        apt::mirror::MirrorError,
        backup::BackupError,
        bundle::BundleError,
        config::ConfigError,
        demo::DemoError,
        dns::responder::DnsError,
        gc::GcError,
        net::NetError,
        openpgp::OpenPgpError,
        remote::RemoteError,
        server::ServerError,
        simplestreams::SimplestreamsError,
        site::SiteError,
        snap::SnapError,
        snap::assertion::AssertionError,
        snap::snapfile::SnapFileError,
        storage::StorageError,
        storage::bucket::BucketError,
        storage::bucket::LeaseError,
        tls::TlsError,
    );
    None
}
