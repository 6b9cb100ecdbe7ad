use std::io::Write;

use airlock_core::dns::{Format, render};
use airlock_core::site::Site;

use crate::cli::{DnsCommand, DnsFormat};
use crate::printer::Printer;

pub fn run(site: &Site, command: DnsCommand, printer: Printer) -> anyhow::Result<()> {
    let DnsCommand::Config { format, addresses } = command;
    let config = &site.config;
    let addresses = if addresses.is_empty() {
        config.dns.addresses.clone()
    } else {
        addresses
    };
    if addresses.is_empty() {
        anyhow::bail!(
            "no address to point the names at: pass --address 10.0.0.5 (this server as clients reach it) or set [dns] address in {}",
            config.path.display()
        );
    }
    let names = config.overridden_names();
    if names.is_empty() {
        anyhow::bail!(
            "no upstream names are routed: mirror an upstream by name ([[apt.mirror]] url, [images] url) or add [[proxy.route]]s"
        );
    }
    let format = match format {
        DnsFormat::Dnsmasq => Format::Dnsmasq,
        DnsFormat::Unbound => Format::Unbound,
        DnsFormat::BindRpz => Format::BindRpz,
        DnsFormat::Maas => Format::Maas,
    };
    write!(
        printer.output(),
        "{}",
        render(format, &names, &addresses, config.dns.ttl)
    )?;
    Ok(())
}
