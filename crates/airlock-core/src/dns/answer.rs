//! What the responder does with one query, as a pure function of its bytes.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// The largest UDP answer we send when the client says nothing (RFC 1035), and the most we
/// ever offer (the DNS flag day 2020 size, which avoids IP fragmentation).
const CLASSIC_UDP: usize = 512;
const EDNS_UDP: u16 = 1232;

/// The names answered and what with.
#[derive(Debug, Clone)]
pub struct Zone {
    names: HashSet<String>,
    addresses: Vec<IpAddr>,
    ttl: u32,
}

impl Zone {
    pub fn new(names: &[String], addresses: &[IpAddr], ttl: u32) -> Zone {
        Zone {
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            addresses: addresses.to_vec(),
            ttl,
        }
    }

    /// A name or any name below it, as the dnsmasq, unbound and RPZ configs answer them
    /// (country mirrors like gb.archive.ubuntu.com included).
    fn covers(&self, name: &str) -> bool {
        let mut rest = name;
        loop {
            if self.names.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// Relay the query unchanged to the upstream resolver.
    Forward,
    /// Say nothing: not a query at all (answering responses invites loops).
    Drop,
}

/// `may_forward`: an upstream is configured and the client is one of the site's own.
/// `udp`: the answer must fit the client's advertised size or be marked truncated.
pub fn decide(zone: &Zone, query: &[u8], may_forward: bool, udp: bool) -> Decision {
    // Header: id (2), flags (2); the QR bit is the top bit of the flags.
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Decision::Drop;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let Ok(request) = Message::from_vec(query) else {
        return answer(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
    };
    if request.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    let mut response = Message::response(id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = may_forward;
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP);
        response.set_edns(edns);
    }
    if request.metadata.op_code != OpCode::Query {
        return answer(with_code(response, ResponseCode::NotImp));
    }
    let [question] = &request.queries[..] else {
        return answer(with_code(response, ResponseCode::FormErr));
    };
    response.add_query(question.clone());
    let name = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let kind = question.query_type();
    // ANY is the classic amplification query: refused for every name (RFC 8482 allows it).
    if kind == RecordType::ANY || question.query_class() != DNSClass::IN {
        return answer(with_code(response, ResponseCode::Refused));
    }
    if !zone.covers(&name) {
        return if may_forward {
            Decision::Forward
        } else {
            answer(with_code(response, ResponseCode::Refused))
        };
    }
    response.metadata.authoritative = true;
    for address in &zone.addresses {
        let rdata = match (kind, address) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
            // Other types, and the family not configured: no data, never the real address.
            _ => continue,
        };
        response.add_answer(Record::from_rdata(question.name().clone(), zone.ttl, rdata));
    }
    let limit = if !udp {
        usize::from(u16::MAX)
    } else {
        request.edns.as_ref().map_or(CLASSIC_UDP, |e| {
            usize::from(e.max_payload().clamp(512, EDNS_UDP))
        })
    };
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Decision::Answer(bytes),
        _ => answer(response.truncate()),
    }
}

/// The most a client takes over UDP for `query`: its EDNS size, at least 512 and at most
/// `ceiling`; 512 without EDNS (RFC 1035).
pub fn udp_limit(query: &[u8], ceiling: usize) -> usize {
    Message::from_vec(query)
        .ok()
        .and_then(|m| m.edns.map(|e| usize::from(e.max_payload())))
        .map_or(CLASSIC_UDP, |size| {
            size.clamp(CLASSIC_UDP, ceiling.max(CLASSIC_UDP))
        })
}

/// Whether a reply says it was cut short (TC).
pub fn is_truncated(reply: &[u8]) -> bool {
    reply.len() >= 12 && reply[2] & 0x02 != 0
}

/// A forwarded `reply` as it may go back over UDP to a client that takes `limit` bytes:
/// whole when it fits, else its header and question with TC set, so that the client asks
/// again over TCP. A reply that cannot be read becomes SERVFAIL.
pub fn fit_udp(reply: Vec<u8>, query: &[u8], limit: usize) -> Option<Vec<u8>> {
    if reply.len() <= limit {
        return Some(reply);
    }
    match Message::from_vec(&reply).map(|m| m.truncate().to_vec()) {
        Ok(Ok(cut)) if cut.len() <= limit => Some(cut),
        _ => server_failure(query),
    }
}

/// SERVFAIL for `query`, its id and question kept: what a client gets when the upstream
/// resolver gives no usable answer, rather than silence until its own timeout.
pub fn server_failure(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::error_msg(
        request.metadata.id,
        request.metadata.op_code,
        ResponseCode::ServFail,
    );
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries);
    response.to_vec().ok()
}

fn with_code(mut response: Message, code: ResponseCode) -> Message {
    response.metadata.response_code = code;
    response
}

fn answer(message: Message) -> Decision {
    match message.to_vec() {
        Ok(bytes) => Decision::Answer(bytes),
        Err(_) => Decision::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn zone() -> Zone {
        Zone::new(
            &["archive.ubuntu.com".to_string()],
            &["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
            300,
        )
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    fn parsed(decision: Decision) -> Message {
        match decision {
            Decision::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn routed_names_answer_the_configured_addresses() {
        let a = parsed(decide(
            &zone(),
            &query("Archive.Ubuntu.com.", RecordType::A),
            false,
            true,
        ));
        assert_eq!(a.metadata.id, 0x1234);
        assert!(a.metadata.authoritative);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        let addresses: Vec<String> = a.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(addresses, ["10.0.0.5"]);
        let aaaa = parsed(decide(
            &zone(),
            &query("archive.ubuntu.com.", RecordType::AAAA),
            false,
            true,
        ));
        assert_eq!(aaaa.answers.len(), 1);
        // A type with nothing configured: an empty answer, not a forward.
        let mx = parsed(decide(
            &zone(),
            &query("archive.ubuntu.com.", RecordType::MX),
            true,
            true,
        ));
        assert_eq!(mx.metadata.response_code, ResponseCode::NoError);
        assert!(mx.answers.is_empty());
    }

    #[test]
    fn other_names_are_refused_or_forwarded() {
        let below = parsed(decide(
            &zone(),
            &query("gb.archive.ubuntu.com.", RecordType::A),
            false,
            true,
        ));
        assert_eq!(
            below.answers.len(),
            1,
            "names below a routed one are answered too"
        );
        let beside = parsed(decide(
            &zone(),
            &query("xarchive.ubuntu.com.", RecordType::A),
            false,
            true,
        ));
        assert_eq!(beside.metadata.response_code, ResponseCode::Refused);
        let q = query("example.com.", RecordType::A);
        let refused = parsed(decide(&zone(), &q, false, true));
        assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
        assert!(!refused.metadata.recursion_available);
        assert_eq!(decide(&zone(), &q, true, true), Decision::Forward);
    }

    #[test]
    fn any_and_malformed_queries_are_refused_cheaply() {
        let q = query("archive.ubuntu.com.", RecordType::ANY);
        let any = parsed(decide(&zone(), &q, true, true));
        assert_eq!(any.metadata.response_code, ResponseCode::Refused);
        assert!(any.answers.is_empty());

        let mut truncated = query("archive.ubuntu.com.", RecordType::A);
        truncated.truncate(20);
        let bytes = match decide(&zone(), &truncated, true, true) {
            Decision::Answer(b) => b,
            other => panic!("{other:?}"),
        };
        assert!(
            bytes.len() <= truncated.len(),
            "never larger than the query"
        );
        assert_eq!(
            Message::from_vec(&bytes).unwrap().metadata.response_code,
            ResponseCode::FormErr
        );

        // Too short for a header, or a response: silence.
        assert_eq!(decide(&zone(), &[0u8; 5], true, true), Decision::Drop);
        let mut response = query("archive.ubuntu.com.", RecordType::A);
        response[2] |= 0x80;
        assert_eq!(decide(&zone(), &response, true, true), Decision::Drop);
    }

    /// An upstream answer of `records` TXT records of 200 bytes each, to `query`.
    fn big_reply(query: &[u8], records: usize) -> Vec<u8> {
        use hickory_proto::rr::rdata::TXT;
        let request = Message::from_vec(query).unwrap();
        let mut reply = Message::response(request.metadata.id, OpCode::Query);
        reply.add_queries(request.queries.clone());
        for i in 0..records {
            let text = format!("{i:03}{}", "x".repeat(197));
            reply.add_answer(Record::from_rdata(
                request.queries[0].name().clone(),
                60,
                RData::TXT(TXT::new(vec![text])),
            ));
        }
        reply.to_vec().unwrap()
    }

    #[test]
    fn forwarded_answers_fit_the_client_or_say_truncated() {
        let plain = query("big.example.", RecordType::TXT);
        assert_eq!(udp_limit(&plain, 4096), 512, "no EDNS: 512");
        let mut with_edns = Message::from_vec(&plain).unwrap();
        let mut edns = Edns::new();
        edns.set_max_payload(65000);
        with_edns.set_edns(edns);
        let with_edns = with_edns.to_vec().unwrap();
        assert_eq!(udp_limit(&with_edns, 4096), 4096, "at most the ceiling");

        let reply = big_reply(&plain, 30);
        assert!(reply.len() > 4096);
        let cut = fit_udp(reply.clone(), &plain, 512).unwrap();
        assert!(cut.len() <= 512 && is_truncated(&cut));
        let cut = Message::from_vec(&cut).unwrap();
        assert_eq!(cut.metadata.id, 0x1234);
        assert_eq!(cut.queries.len(), 1);
        assert!(cut.answers.is_empty());
        // Small enough: unchanged.
        let small = big_reply(&plain, 1);
        assert_eq!(fit_udp(small.clone(), &plain, 512), Some(small));
        // Garbage that does not fit: SERVFAIL, not the garbage cut short.
        let failed = fit_udp(vec![0xff; 600], &plain, 512).unwrap();
        let failed = Message::from_vec(&failed).unwrap();
        assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(failed.metadata.id, 0x1234);
    }

    #[test]
    fn two_questions_are_a_format_error() {
        let mut m = Message::query();
        for name in ["a.example.", "b.example."] {
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        }
        let r = parsed(decide(&zone(), &m.to_vec().unwrap(), true, true));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    }
}
