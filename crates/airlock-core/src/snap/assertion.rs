//! snapd assertions: parsing, splitting `.assert` streams, and signing (for private roots).
//!
//! An encoded assertion is `HEADERS` [`\n\nBODY`] `\n\nSIGNATURE`; the signature covers every
//! byte before the last `\n\n`. Headers are `name: value` lines; lists (`  - x`), maps and
//! multi-line text nest below a bare `name:` by two spaces per level. Assertions are served
//! byte for byte as they were imported: snapd checks them itself.

use std::fmt;

use crate::hint::Hint;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha3::{Digest, Sha3_384};

#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct AssertionError {
    pub what: String,
    /// What is wrong, in airlock's words.
    pub reason: String,
    /// The error that found it, when another one did (a decoder, the signature library).
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Hint for AssertionError {
    fn hint(&self) -> Option<&'static str> {
        Some(
            "give the assertions as `snap download` wrote them; they must verify up to Canonical's root or a root listed in [snaps] trusted_keys",
        )
    }
}

fn error(what: &str, reason: impl Into<String>) -> AssertionError {
    AssertionError {
        what: what.to_string(),
        reason: reason.into(),
        source: None,
    }
}

/// `what` is refused because of `source`: `reason` says what was being read.
pub(crate) fn failed(
    what: &str,
    reason: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> AssertionError {
    AssertionError {
        what: what.to_string(),
        reason: reason.into(),
        source: Some(source.into()),
    }
}

/// A header value: text, a list or a map, nested as snapd nests them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// One assertion, with the exact bytes it arrived as.
#[derive(Clone, PartialEq, Eq)]
pub struct Assertion {
    encoded: Vec<u8>,
    headers: Vec<(String, Value)>,
    /// Length of the signed part (headers and body).
    signed_len: usize,
    body: std::ops::Range<usize>,
    /// The OpenPGP signature packet, without snapd's format byte.
    signature: Vec<u8>,
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Assertion({})", self.describe())
    }
}

/// Primary-key header names per type, in order (snapd's asserts/asserts.go).
fn primary_key_headers(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "account" => &["account-id"],
        "account-key" => &["public-key-sha3-384"],
        "snap-declaration" => &["series", "snap-id"],
        "snap-revision" => &["snap-sha3-384"],
        "snap-developer" => &["snap-id", "publisher-id"],
        "snap-build" => &["snap-sha3-384"],
        "store" => &["store"],
        "base-declaration" => &["series"],
        "validation-set" => &["series", "account-id", "name", "sequence"],
        "validation" => &[
            "series",
            "snap-id",
            "approved-snap-id",
            "approved-snap-revision",
        ],
        "model" => &["series", "brand-id", "model"],
        "serial" => &["brand-id", "model", "serial"],
        "system-user" => &["brand-id", "email"],
        "repair" => &["brand-id", "repair-id"],
        "snap-resource-revision" => &["snap-id", "resource-name", "resource-sha3-384"],
        "snap-resource-pair" => &[
            "snap-id",
            "resource-name",
            "resource-revision",
            "snap-revision",
        ],
        _ => return None,
    })
}

impl Assertion {
    /// Parses one encoded assertion (no trailing blank line).
    pub fn parse(encoded: &[u8]) -> Result<Assertion, AssertionError> {
        let what = "assertion";
        let text = std::str::from_utf8(encoded).map_err(|_| error(what, "not UTF-8 text"))?;
        let header_end = text
            .find("\n\n")
            .ok_or_else(|| error(what, "no blank line before the signature"))?;
        let headers = parse_headers(&text[..header_end]).map_err(|r| error(what, r))?;
        let mut assertion = Assertion {
            encoded: encoded.to_vec(),
            headers,
            signed_len: header_end,
            body: header_end..header_end,
            signature: Vec::new(),
        };
        let what = assertion.describe();
        for required in ["type", "authority-id", "sign-key-sha3-384"] {
            if assertion.header(required).is_none() {
                return Err(error(&what, format!("the {required} header is missing")));
            }
        }
        let body_length = assertion.integer("body-length")?.unwrap_or(0) as usize;
        let mut signature_start = header_end + 2;
        if body_length > 0 {
            // Bytes, not str slices: body-length may end inside a character, or be absurd.
            let body_end = signature_start
                .checked_add(body_length)
                .filter(|end| encoded.get(*end..).is_some_and(|r| r.starts_with(b"\n\n")))
                .ok_or_else(|| {
                    error(
                        &what,
                        "the body is not body-length bytes followed by a blank line",
                    )
                })?;
            assertion.body = signature_start..body_end;
            assertion.signed_len = body_end;
            signature_start = body_end + 2;
        }
        let signature_text = &text[signature_start..];
        if signature_text.contains("\n\n") {
            return Err(error(&what, "text after the signature"));
        }
        let packed: String = signature_text.split_whitespace().collect();
        let decoded = STANDARD
            .decode(packed)
            .map_err(|e| failed(&what, "the signature is not base64", e))?;
        match decoded.split_first() {
            Some((1, packet)) if !packet.is_empty() => assertion.signature = packet.to_vec(),
            _ => return Err(error(&what, "the signature is not in snapd's format 1")),
        }
        primary_key_headers(assertion.kind())
            .ok_or_else(|| error(&what, "this assertion type is not one airlock knows"))?;
        for name in assertion.primary_key_names() {
            match assertion.header(name) {
                Some(v) if !v.is_empty() && !v.contains('/') => {}
                _ => {
                    return Err(error(
                        &what,
                        format!("primary key header {name} is missing or holds '/'"),
                    ));
                }
            }
        }
        Ok(assertion)
    }

    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    pub fn signed_content(&self) -> &[u8] {
        &self.encoded[..self.signed_len]
    }

    pub fn signature_packet(&self) -> &[u8] {
        &self.signature
    }

    pub fn body(&self) -> &[u8] {
        &self.encoded[self.body.clone()]
    }

    pub fn kind(&self) -> &str {
        self.header("type").unwrap_or("")
    }

    /// A text header; `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_text())
    }

    pub fn value(&self, name: &str) -> Option<&Value> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// An integer header, checked.
    pub fn integer(&self, name: &str) -> Result<Option<u64>, AssertionError> {
        match self.header(name) {
            None => Ok(None),
            Some(v)
                if !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && !(v.len() > 1 && v.starts_with('0')) =>
            {
                v.parse()
                    .map(Some)
                    .map_err(|_| error(&self.describe(), format!("{name} is out of range")))
            }
            Some(v) => Err(error(
                &self.describe(),
                format!("{name} is not an integer: {v:?}"),
            )),
        }
    }

    pub fn revision(&self) -> u64 {
        self.integer("revision").ok().flatten().unwrap_or(0)
    }

    pub fn format(&self) -> u64 {
        self.integer("format").ok().flatten().unwrap_or(0)
    }

    pub fn authority(&self) -> &str {
        self.header("authority-id").unwrap_or("")
    }

    pub fn sign_key(&self) -> &str {
        self.header("sign-key-sha3-384").unwrap_or("")
    }

    fn primary_key_names(&self) -> &'static [&'static str] {
        primary_key_headers(self.kind()).unwrap_or(&[])
    }

    /// The primary key as snapd puts it in URLs (`/v2/assertions/TYPE/KEY...`).
    pub fn primary_key(&self) -> Vec<&str> {
        let mut key: Vec<&str> = self
            .primary_key_names()
            .iter()
            .map(|n| self.header(n).unwrap_or(""))
            .collect();
        // A non-default provenance is part of a snap-revision's key (snapd drops the default).
        if let Some(p) = self.header("provenance").filter(|p| *p != "global-upload")
            && self.kind() == "snap-revision"
        {
            key.push(p);
        }
        key
    }

    /// `type/key/...`: how the catalog and the API address this assertion.
    pub fn reference(&self) -> String {
        let mut reference = self.kind().to_string();
        for part in self.primary_key() {
            reference.push('/');
            reference.push_str(part);
        }
        reference
    }

    /// For messages: the type and primary key.
    pub fn describe(&self) -> String {
        if self.kind().is_empty() {
            "assertion".into()
        } else {
            format!("{} assertion {}", self.kind(), self.primary_key().join("/"))
        }
    }

    /// A timestamp header, as RFC 3339.
    pub fn time(&self, name: &str) -> Result<Option<jiff::Timestamp>, AssertionError> {
        self.header(name)
            .map(|v| {
                v.parse::<jiff::Timestamp>().map_err(|e| {
                    failed(
                        &self.describe(),
                        format!("{name} is not an RFC 3339 time"),
                        e,
                    )
                })
            })
            .transpose()
    }
}

/// Splits a `.assert` file or an assertion stream into assertions.
pub fn split_stream(bytes: &[u8], what: &str) -> Result<Vec<Assertion>, AssertionError> {
    let mut assertions = Vec::new();
    let mut rest = bytes;
    loop {
        while let Some(stripped) = rest.strip_prefix(b"\n") {
            rest = stripped;
        }
        if rest.is_empty() {
            return Ok(assertions);
        }
        let index = assertions.len() + 1;
        let at = |reason: String| error(what, format!("assertion {index}: {reason}"));
        let header_end = memchr::memmem::find(rest, b"\n\n")
            .ok_or_else(|| at("no blank line before the signature".into()))?;
        let body_length = body_length(&rest[..header_end]).map_err(at)?;
        let mut signature_start = header_end + 2;
        if body_length > 0 {
            signature_start = signature_start
                .checked_add(body_length)
                .and_then(|s| s.checked_add(2))
                .filter(|s| *s <= rest.len())
                .ok_or_else(|| at("the body is shorter than body-length".into()))?;
        }
        let end = memchr::memmem::find(&rest[signature_start..], b"\n\n")
            .map_or(rest.len(), |e| signature_start + e);
        let encoded = rest[..end].strip_suffix(b"\n").unwrap_or(&rest[..end]);
        assertions.push(
            Assertion::parse(encoded).map_err(|e| failed(what, format!("assertion {index}"), e))?,
        );
        rest = &rest[end..];
    }
}

fn body_length(headers: &[u8]) -> Result<usize, String> {
    for line in headers.split(|b| *b == b'\n') {
        if let Some(value) = line.strip_prefix(b"body-length: ") {
            // As Assertion::integer reads it: digits, no sign, no leading zero.
            let digits = !value.is_empty()
                && value.iter().all(u8::is_ascii_digit)
                && !(value.len() > 1 && value[0] == b'0');
            return std::str::from_utf8(value)
                .ok()
                .filter(|_| digits)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| "body-length is not an integer".to_string());
        }
    }
    Ok(0)
}

fn is_header_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && !name.contains("--")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn parse_headers(text: &str) -> Result<Vec<(String, Value)>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut pos = 0;
    let headers = parse_map(&lines, &mut pos, 0)?;
    if pos != lines.len() {
        return Err(format!("header line {} is not `name: value`", pos + 1));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &headers {
        if !seen.insert(name.as_str()) {
            return Err(format!("header {name} appears twice"));
        }
    }
    Ok(headers)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Lines after `pos` indented deeper than `indent`: the block of a bare `name:` or `-`.
fn block_end(lines: &[&str], pos: usize, indent: usize) -> usize {
    let mut end = pos;
    while end < lines.len() && indent_of(lines[end]) > indent {
        end += 1;
    }
    end
}

fn parse_map(
    lines: &[&str],
    pos: &mut usize,
    indent: usize,
) -> Result<Vec<(String, Value)>, String> {
    let mut entries = Vec::new();
    while *pos < lines.len() && indent_of(lines[*pos]) == indent {
        let line = &lines[*pos][indent..];
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("header line {} is not `name: value`", *pos + 1))?;
        if !is_header_name(name) {
            return Err(format!(
                "header line {}: {name:?} is not a header name",
                *pos + 1
            ));
        }
        *pos += 1;
        let value = if let Some(text) = rest.strip_prefix(' ') {
            if text.is_empty() {
                return Err(format!("header {name} has an empty value"));
            }
            Value::Text(text.to_string())
        } else if rest.is_empty() {
            let end = block_end(lines, *pos, indent);
            if end == *pos {
                return Err(format!("header {name} has no value"));
            }
            let value = parse_block(&lines[..end], pos, indent + 2)?;
            if *pos != end {
                return Err(format!("header {name}: line {} is misindented", *pos + 1));
            }
            value
        } else {
            return Err(format!("header line {} is not `name: value`", *pos));
        };
        entries.push((name.to_string(), value));
    }
    Ok(entries)
}

/// snapd's assertions nest a few levels (a list of maps of lists); each level rescans the
/// lines below it, so an absurd depth would cost time cubic in the size of the headers.
const MAX_DEPTH: usize = 16;

fn parse_block(lines: &[&str], pos: &mut usize, indent: usize) -> Result<Value, String> {
    if indent > 2 * MAX_DEPTH {
        return Err(format!(
            "line {} nests deeper than {MAX_DEPTH} levels",
            *pos + 1
        ));
    }
    let first = lines[*pos].get(indent..).unwrap_or("");
    if indent_of(lines[*pos]) != indent {
        return Err(format!("line {} is misindented", *pos + 1));
    }
    if first == "-" || first.starts_with("- ") {
        let mut items = Vec::new();
        while *pos < lines.len() && indent_of(lines[*pos]) == indent {
            let line = &lines[*pos][indent..];
            *pos += 1;
            if let Some(text) = line.strip_prefix("- ") {
                items.push(Value::Text(text.to_string()));
            } else if line == "-" {
                let end = block_end(lines, *pos, indent);
                if end == *pos {
                    return Err(format!("empty list item at line {}", *pos));
                }
                items.push(parse_block(&lines[..end], pos, indent + 2)?);
            } else {
                return Err(format!("line {} mixes a list with other values", *pos));
            }
        }
        Ok(Value::List(items))
    } else if first.split_once(':').is_some_and(|(name, rest)| {
        is_header_name(name) && (rest.is_empty() || rest.starts_with(' '))
    }) {
        Ok(Value::Map(parse_map(lines, pos, indent)?))
    } else {
        let mut text = Vec::new();
        while *pos < lines.len() && indent_of(lines[*pos]) >= indent {
            text.push(&lines[*pos][indent..]);
            *pos += 1;
        }
        Ok(Value::Text(text.join("\n")))
    }
}

/// `sign-key-sha3-384` / `public-key-sha3-384` of a public key given as an account-key body
/// (base64 of the format byte and the new-format public-key packet).
pub fn key_id(packet_with_format: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha3_384::digest(packet_with_format))
}

/// The base64url (unpadded) SHA3-384 of a snap, as snap-revision assertions name it.
pub fn snap_digest_b64(digest: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest)
}

/// Signs headers (and body) as snapd does, with an RSA or EdDSA OpenPGP key. For private
/// roots (brand stores) and tests; Canonical-signed assertions are never re-signed.
pub fn sign(
    headers: &[(&str, &str)],
    body: &[u8],
    key: &pgp::composed::SignedSecretKey,
) -> Result<Assertion, AssertionError> {
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
    use pgp::types::{KeyDetails, Password, Timestamp};

    let what = headers
        .iter()
        .find(|(n, _)| *n == "type")
        .map_or("assertion", |(_, v)| v);
    let mut content = String::new();
    for (name, value) in headers {
        content.push_str(name);
        content.push(':');
        if value.contains('\n') {
            for line in value.split('\n') {
                content.push_str("\n  ");
                content.push_str(line);
            }
        } else {
            content.push(' ');
            content.push_str(value);
        }
        content.push('\n');
    }
    if !body.is_empty() {
        content.push_str(&format!("body-length: {}\n", body.len()));
    }
    content.push_str("sign-key-sha3-384: ");
    content.push_str(&key_id(&public_key_packet(key)));
    let mut signed = content.into_bytes();
    if !body.is_empty() {
        signed.extend_from_slice(b"\n\n");
        signed.extend_from_slice(body);
    }
    let mut config = SignatureConfig::v4(
        SignatureType::Binary,
        key.primary_key.algorithm(),
        HashAlgorithm::Sha512,
    );
    let sign_error = |e: pgp::errors::Error| failed(what, "cannot sign", e);
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))
            .map_err(sign_error)?,
    ];
    let signature = config
        .sign(&key.primary_key, &Password::empty(), &signed[..])
        .map_err(sign_error)?;
    let mut packet = vec![1u8];
    pgp::packet::PacketTrait::to_writer_with_header(&signature, &mut packet).map_err(sign_error)?;
    let mut encoded = signed;
    encoded.extend_from_slice(b"\n\n");
    encoded.extend_from_slice(wrapped_base64(&packet).as_bytes());
    Assertion::parse(&encoded)
}

/// Base64 in lines of 76, as snapd writes signatures and key bodies.
fn wrapped_base64(bytes: &[u8]) -> String {
    let text = STANDARD.encode(bytes);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    lines.join("\n")
}

/// The body of an account-key assertion for `key`.
pub fn account_key_body(key: &pgp::composed::SignedSecretKey) -> String {
    wrapped_base64(&public_key_packet(key))
}

/// 0x01 followed by the key's public-key packet: an account-key body before base64.
pub fn public_key_packet(key: &pgp::composed::SignedSecretKey) -> Vec<u8> {
    use pgp::ser::Serialize;
    let mut body = Vec::new();
    key.primary_key
        .public_key()
        .to_writer(&mut body)
        .expect("writing to memory succeeds");
    snapd_key_packet(&body)
}

/// snapd's creation time for every assertion key (asserts: v1FixedTimestamp, 2016-01-01).
const SNAPD_KEY_TIME: u32 = 1_451_606_400;

/// A public-key packet as snapd re-serialises it before hashing it into a key id: the
/// creation time replaced by its fixed timestamp, a new-format header of the shortest length
/// (Go's openpgp), prefixed with snapd's format byte.
pub fn snapd_key_packet(packet_body: &[u8]) -> Vec<u8> {
    let mut body = packet_body.to_vec();
    if body.first() == Some(&4) && body.len() > 5 {
        body[1..5].copy_from_slice(&SNAPD_KEY_TIME.to_be_bytes());
    }
    let len = body.len();
    let mut bytes = vec![1u8, 0xc0 | 6];
    if len < 192 {
        bytes.push(len as u8);
    } else if len < 8384 {
        bytes.push((((len - 192) >> 8) + 192) as u8);
        bytes.push(((len - 192) & 0xff) as u8);
    } else {
        bytes.push(0xff);
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
    }
    bytes.extend_from_slice(&body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::Chain;

    const STORE: &[u8] = include_bytes!("testdata/snapd-enterprise-store.assert");
    const WORD_SALAD: &[u8] = include_bytes!("testdata/word-salad.assert");
    const GO: &[u8] = include_bytes!("testdata/go-declaration.assert");

    #[test]
    fn splits_real_streams_and_reads_headers() {
        let store = split_stream(STORE, "store").unwrap();
        assert_eq!(
            store.iter().map(|a| a.kind()).collect::<Vec<_>>(),
            ["account-key", "account", "store"]
        );
        assert_eq!(
            store[0].reference(),
            "account-key/BWDEoaqyr25nF5SNCvEv2v7QnM9QsfCc0PBMYD_i2NGSQ32EF2d4D0hqUel3m8ul"
        );
        assert_eq!(store[0].body().len(), 717);
        // The key id is the SHA3-384 of the body (format byte and key packet).
        let body = STANDARD
            .decode(
                store[0]
                    .body()
                    .split(|b| *b == b'\n')
                    .collect::<Vec<_>>()
                    .concat(),
            )
            .unwrap();
        assert_eq!(
            key_id(&body),
            store[0].header("public-key-sha3-384").unwrap()
        );

        let salad = split_stream(WORD_SALAD, "word-salad").unwrap();
        assert_eq!(salad.len(), 3);
        let revision = &salad[2];
        assert_eq!(revision.kind(), "snap-revision");
        assert_eq!(revision.integer("snap-size").unwrap(), Some(8192));
        assert_eq!(revision.integer("snap-revision").unwrap(), Some(7));
        assert_eq!(salad[0].revision(), 2118);
        assert_eq!(
            salad[1].primary_key(),
            ["16", "UQEdRgY5gr1dI2fwIDOgUQidMZauRqt7"]
        );
        // Each assertion keeps its exact bytes, so a stream can be rebuilt from them.
        let rebuilt: Vec<u8> = salad
            .iter()
            .flat_map(|a| [a.encoded(), b"\n\n"].concat())
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&rebuilt).trim_end(),
            String::from_utf8_lossy(WORD_SALAD).trim_end()
        );
    }

    #[test]
    fn nested_headers() {
        let go = &split_stream(GO, "go").unwrap()[0];
        assert_eq!(go.header("snap-name"), Some("go"));
        assert_eq!(
            go.value("aliases"),
            Some(&Value::List(vec![Value::Map(vec![
                ("name".into(), Value::Text("gofmt".into())),
                ("target".into(), Value::Text("gofmt".into())),
            ])]))
        );
        assert_eq!(
            go.value("auto-aliases"),
            Some(&Value::List(vec![Value::Text("gofmt".into())]))
        );
    }

    /// Found by fuzz/ (snap_assertions): 340 nested lists took about a second (unoptimised), the
    /// time growing with the cube of the depth.
    #[test]
    fn deep_nesting_is_refused_at_once() {
        let mut text = String::from(
            "type: account\nauthority-id: x\naccount-id: a\nsign-key-sha3-384: k\nnested:\n",
        );
        for depth in 1..=600 {
            text.push_str(&" ".repeat(2 * depth));
            text.push_str("-\n");
        }
        text.push_str("\nAQE=");
        let started = std::time::Instant::now();
        let e = split_stream(text.as_bytes(), "deep.assert").unwrap_err();
        let e = Chain(&e).to_string();
        assert!(e.contains("deeper than 16 levels"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let mut shallow = String::from(
            "type: account\nauthority-id: x\naccount-id: a\nsign-key-sha3-384: k\nnested:\n",
        );
        for depth in 1..MAX_DEPTH {
            shallow.push_str(&" ".repeat(2 * depth));
            shallow.push_str("-\n");
        }
        shallow.push_str(&" ".repeat(2 * MAX_DEPTH));
        shallow.push_str("- leaf\n\nAQE=");
        assert!(split_stream(shallow.as_bytes(), "shallow.assert").is_ok());
    }

    #[test]
    fn malformed_assertions_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"type: account\nauthority-id: x\n", "no blank line"),
            (b"type: account\nauthority-id: x\naccount-id: a\n\nAQ==", "sign-key-sha3-384 header is missing"),
            (b"type: account\nauthority-id: x\naccount-id: a\nsign-key-sha3-384: k\n\n!!", "not base64"),
            (b"type: account\nauthority-id: x\naccount-id: a\nsign-key-sha3-384: k\n\nAgE=", "format 1"),
            (b"type: nonsense\nauthority-id: x\nsign-key-sha3-384: k\n\nAQE=", "not one airlock knows"),
            (b"type: account\nauthority-id: x\naccount-id: a/b\nsign-key-sha3-384: k\n\nAQE=", "holds '/'"),
            (b"type: account\nauthority-id: x\nauthority-id: y\naccount-id: a\nsign-key-sha3-384: k\n\nAQE=", "twice"),
            (b"type: account\nBad: x\n\nAQE=", "not a header name"),
            (b"type: account\nauthority-id: x\naccount-id: a\nbody-length: 50\nsign-key-sha3-384: k\n\nshort\n\nAQE=", "body"),
            ("type: account\nauthority-id: x\naccount-id: a\nbody-length: 3\nsign-key-sha3-384: k\n\n\u{e9}\u{e9}\n\nAQE=".as_bytes(), "body"),
            (b"type: account\nauthority-id: x\naccount-id: a\nbody-length: 18446744073709551615\nsign-key-sha3-384: k\n\nx\n\nAQE=", "body"),
            (b"type: account\nauthority-id: x\naccount-id: a\nbody-length: +1\nsign-key-sha3-384: k\n\nx\n\nAQE=", "body-length"),
            (b"type: account\nauthority-id: x\naccount-id: a\nrevision: 01\nsign-key-sha3-384: k\n\nAQE=", ""),
        ];
        for (bytes, expected) in cases {
            match split_stream(bytes, "test.assert") {
                Err(e) => {
                    let e = Chain(&e).to_string();
                    assert!(e.contains(expected), "{e} lacks {expected}")
                }
                Ok(a) => {
                    // A leading zero is only caught when the integer is read.
                    assert!(
                        a[0].integer("revision").is_err(),
                        "{:?} parsed",
                        String::from_utf8_lossy(bytes)
                    );
                }
            }
        }
    }
}
