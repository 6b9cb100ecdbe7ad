//! Pointing the upstream names (archive.ubuntu.com, images.maas.io ...) at this server.
//!
//! Most sites already run DNS (MAAS runs bind9), so the main path is [`render`]: ready-to-use
//! snippets for dnsmasq, unbound, BIND response policy zones and MAAS. For an appliance with no
//! DNS, [`responder`] answers the overridden names itself and, for the site's own networks
//! only, relays everything else to a resolver.

mod answer;
pub mod responder;

use std::fmt::Write;
use std::net::IpAddr;

pub use answer::{Decision, Zone, decide, fit_udp, server_failure, udp_limit};

/// The formats `airlock dns config` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dnsmasq,
    Unbound,
    BindRpz,
    Maas,
}

/// The config snippet that makes a resolver answer `names` with `addresses`.
pub fn render(format: Format, names: &[String], addresses: &[IpAddr], ttl: u32) -> String {
    let mut out = String::new();
    let records = || {
        names.iter().flat_map(move |name| {
            addresses.iter().map(move |a| {
                let kind = if a.is_ipv4() { "A" } else { "AAAA" };
                (name, kind, a)
            })
        })
    };
    let has_v6 = addresses.iter().any(IpAddr::is_ipv6);
    match format {
        Format::Dnsmasq => {
            out.push_str(
                "# airlock: the upstream names this site mirrors resolve to airlock.\n\
                 # Put in /etc/dnsmasq.d/airlock.conf; each line also covers the name's subdomains.\n\
                 # Without a server= line for the rest, add no-resolv to keep a full air gap.\n",
            );
            for (name, _, address) in records() {
                let _ = writeln!(out, "address=/{name}/{address}");
            }
            if !has_v6 {
                // Clients try AAAA first. Without this dnsmasq forwards AAAA queries and clients
                // reach the real host over IPv6 (and `address=/NAME/::` answers "::", which is
                // this machine): local= gives the empty answer (dnsmasq 2.90, tried).
                for name in names {
                    let _ = writeln!(out, "local=/{name}/");
                }
            }
        }
        Format::Unbound => {
            out.push_str(
                "# airlock: the upstream names this site mirrors resolve to airlock.\n\
                 # Put in /etc/unbound/unbound.conf.d/airlock.conf. A redirect zone answers the name and its\n\
                 # subdomains; an address family not listed gets an empty answer, never the real one.\n\
                 server:\n",
            );
            for name in names {
                let _ = writeln!(out, "    local-zone: \"{name}.\" redirect");
            }
            for (name, kind, address) in records() {
                let _ = writeln!(out, "    local-data: \"{name}. {ttl} IN {kind} {address}\"");
            }
        }
        Format::BindRpz => {
            // A name with an A record only gets an empty AAAA answer from the policy, never
            // the real one.
            let _ = write!(
                out,
                "; airlock: a response policy zone pointing the mirrored upstream names at airlock.\n\
                 ; In named.conf (BIND 9.8.1 or later):\n\
                 ;   options {{ response-policy {{ zone \"airlock.rpz\"; }}; }};\n\
                 ;   zone \"airlock.rpz\" {{ type primary; file \"/etc/bind/db.airlock.rpz\"; allow-query {{ none; }}; }};\n\
                 ; and this file as /etc/bind/db.airlock.rpz.\n\
                 $TTL {ttl}\n\
                 @ IN SOA localhost. hostmaster.localhost. (1 3600 600 86400 {ttl})\n\
                 @ IN NS localhost.\n"
            );
            for (name, kind, address) in records() {
                let _ = writeln!(out, "{name} IN {kind} {address}");
                let _ = writeln!(out, "*.{name} IN {kind} {address}");
            }
        }
        Format::Maas => {
            out.push_str(
                "# airlock: MAAS answers DNS for its machines with bind9; these commands add the\n\
                 # mirrored upstream names to it. Replace $PROFILE with your MAAS CLI profile.\n\
                 # Each name becomes a domain of its own with its address at the apex (@), so\n\
                 # that MAAS answers for that name only: creating the domain ubuntu.com instead\n\
                 # would make MAAS authoritative for every ubuntu.com name and break the ones not\n\
                 # mirrored. (Checked against MAAS's source, which also takes @ for the apex\n\
                 # and splits ip_addresses on spaces; not run against a MAAS.)\n",
            );
            let joined: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            for name in names {
                let _ = writeln!(
                    out,
                    "maas $PROFILE domains create name={name} authoritative=true\n\
                     maas $PROFILE dnsresources create name=@ domain={name} ip_addresses=\"{}\"",
                    joined.join(" ")
                );
            }
        }
    }
    out
}
