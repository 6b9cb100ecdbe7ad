//! Upstream Packages indices, read as a stream: memory holds one chunk of text and a compact
//! record per package, never the whole index (Debian's main/amd64 is 50 MB of text).

use std::io::{self, Read};

use super::deb822::{self, Paragraph};
use crate::hint::Hint;
use crate::io::read_full;
use crate::storage::Sha256;

/// What mirroring needs to know of one package of an index, in one allocation: an index
/// of Debian's size holds 63,000 of these, and memory must not follow the archive's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecord {
    /// The fields below, one after the other.
    text: Box<str>,
    ends: [u32; FIELDS],
    pub size: u64,
    pub sha256: Sha256,
    /// Where the stanza is in the uncompressed index, to copy it out verbatim later.
    pub offset: u64,
    pub length: u32,
}

const FIELDS: usize = 14;
const NAMES: [&str; FIELDS] = [
    "Package",
    "Version",
    "Architecture",
    "Filename",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Provides",
    "Source",
    "Conflicts",
    "Breaks",
    "Priority",
    "Essential",
    "Protected",
];

impl IndexRecord {
    /// `fields` in the order of `NAMES`; an empty relationship means none.
    pub fn new(
        fields: [&str; FIELDS],
        size: u64,
        sha256: Sha256,
        offset: u64,
        length: u32,
    ) -> IndexRecord {
        let mut text = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; FIELDS];
        for (i, field) in fields.iter().enumerate() {
            text.push_str(field);
            ends[i] = text.len() as u32;
        }
        IndexRecord {
            text: text.into_boxed_str(),
            ends,
            size,
            sha256,
            offset,
            length,
        }
    }

    fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn optional(&self, i: usize) -> Option<&str> {
        Some(self.field(i)).filter(|f| !f.is_empty())
    }

    pub fn name(&self) -> &str {
        self.field(0)
    }
    pub fn version(&self) -> &str {
        self.field(1)
    }
    pub fn architecture(&self) -> &str {
        self.field(2)
    }
    pub fn filename(&self) -> &str {
        self.field(3)
    }
    pub fn depends(&self) -> Option<&str> {
        self.optional(4)
    }
    pub fn pre_depends(&self) -> Option<&str> {
        self.optional(5)
    }
    pub fn recommends(&self) -> Option<&str> {
        self.optional(6)
    }
    pub fn provides(&self) -> Option<&str> {
        self.optional(7)
    }
    pub fn conflicts(&self) -> Option<&str> {
        self.optional(9)
    }
    pub fn breaks(&self) -> Option<&str> {
        self.optional(10)
    }
    /// `Priority:` (required, important, standard, optional, extra), if any.
    pub fn priority(&self) -> Option<&str> {
        self.optional(11)
    }
    /// `Essential: yes`.
    pub fn essential(&self) -> bool {
        self.field(12).eq_ignore_ascii_case("yes")
    }
    /// `Protected: yes` (apt's "important" flag).
    pub fn protected(&self) -> bool {
        self.field(13).eq_ignore_ascii_case("yes")
    }
    /// The source package this was built from: `Source: name (version)` when the versions
    /// differ (binNMUs), `Source: name`, or none when both are the binary's own.
    pub fn source(&self) -> (&str, &str) {
        match self.optional(8) {
            None => (self.name(), self.version()),
            Some(field) => match field.split_once('(') {
                Some((name, version)) => (name.trim(), version.trim_end_matches(')').trim()),
                None => (field.trim(), self.version()),
            },
        }
    }
}

/// One source package of a Sources index: its files, and where its stanza is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub name: String,
    pub version: String,
    /// Pool path (Directory/name), size and SHA-256 of each file (.dsc, tarballs).
    pub files: Vec<(String, u64, Sha256)>,
    pub offset: u64,
    pub length: u32,
}

/// Reads every source package of a Sources index.
pub fn read_sources<R: Read + ?Sized>(reader: &mut R) -> Result<Vec<SourceRecord>, IndexError> {
    let mut records = Vec::new();
    for_each_paragraph(reader, |p, Position { offset, line }| {
        let bad = |reason: String| IndexError::Bad { line, reason };
        let field = |name: &str| {
            p.get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("source package without {name}")))
        };
        let name = field("Package")?;
        let version = field("Version")?;
        let directory = field("Directory")?;
        let mut files = Vec::new();
        for entry in field("Checksums-Sha256")?
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let mut parts = entry.split_whitespace();
            let (Some(sha256), Some(size), Some(file), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!("{name}: bad Checksums-Sha256 line {entry:?}")));
            };
            let sha256 = Sha256::from_hex(sha256)
                .ok_or_else(|| bad(format!("{name}: bad SHA-256 {sha256:?}")))?;
            let size = size
                .parse()
                .map_err(|_| bad(format!("{name}: bad size {size:?}")))?;
            if file.contains('/') {
                return Err(bad(format!("{name}: file name {file:?} has a '/'")));
            }
            let path = format!("{directory}/{file}");
            crate::storage::tree::check_relative_path(&path)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            files.push((path, size, sha256));
        }
        records.push(SourceRecord {
            name: name.to_string(),
            version: version.to_string(),
            files,
            offset,
            length: p.text().len() as u32,
        });
        Ok(())
    })?;
    Ok(records)
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Read(#[from] io::Error),
    #[error("line {line}: {reason}")]
    Bad { line: usize, reason: String },
}

impl Hint for IndexError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            IndexError::Read(_) | IndexError::Bad { .. } => None,
        }
    }
}

const CHUNK: usize = 1 << 20;

/// An index as apt reads it: decompressed by its name's extension (`.xz`, `.gz`; any other
/// name is plain text), every concatenated stream in turn. Bound what is read from it
/// (`Read::take`): a small compressed file can hold far more.
pub fn decompressed<'r>(name: &str, reader: impl Read + 'r) -> Box<dyn Read + 'r> {
    if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader))
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    }
}

/// Where a paragraph starts in a stream: byte offset and 1-based line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub line: usize,
}

/// Calls `each` with every paragraph of `reader` and where it starts, holding only about one
/// chunk of text at a time.
pub fn for_each_paragraph<R: Read + ?Sized>(
    reader: &mut R,
    mut each: impl FnMut(&Paragraph<'_>, Position) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut base: u64 = 0; // stream offset of buffer[0]
    let mut lines_before = 0usize;
    let mut eof = false;
    while !eof {
        let start = buffer.len();
        buffer.resize(start + CHUNK, 0);
        let n = read_full(reader, &mut buffer[start..])?;
        buffer.truncate(start + n);
        eof = n == 0;
        // Parse up to the last paragraph break; the rest waits for more text.
        let cut = if eof {
            buffer.len()
        } else {
            match memchr::memmem::rfind(&buffer, b"\n\n") {
                Some(i) => i + 2,
                None => continue,
            }
        };
        let text = std::str::from_utf8(&buffer[..cut]).map_err(|e| IndexError::Bad {
            line: lines_before + count_lines(&buffer[..e.valid_up_to()]) + 1,
            reason: "not UTF-8".into(),
        })?;
        for paragraph in deb822::paragraphs(text) {
            let paragraph = paragraph.map_err(|e| IndexError::Bad {
                line: lines_before + e.line,
                reason: e.reason,
            })?;
            let offset =
                base + (paragraph.text().as_ptr() as usize - text.as_ptr() as usize) as u64;
            let line = lines_before + paragraph.first_line();
            each(&paragraph, Position { offset, line })?;
        }
        lines_before += count_lines(&buffer[..cut]);
        base += cut as u64;
        buffer.drain(..cut);
    }
    Ok(())
}

/// How many paragraphs `reader` holds, by deb822's rules (blank or whitespace-only lines
/// separate them; `#` lines between them are comments), counted as the text streams past:
/// nothing is parsed or kept. Well-formed input only; [`for_each_paragraph`] finds errors.
pub fn count_paragraphs<R: Read + ?Sized>(reader: &mut R) -> io::Result<u64> {
    count_paragraphs_by(reader, CHUNK)
}

/// [`count_paragraphs`], reading `chunk` bytes at a time.
fn count_paragraphs_by<R: Read + ?Sized>(reader: &mut R, chunk: usize) -> io::Result<u64> {
    let mut buffer = vec![0u8; chunk];
    let (mut count, mut in_paragraph) = (0, false);
    // Where a line starts until its first byte that is not a blank tells what it is.
    let (mut line_start, mut first_byte) = (true, true);
    loop {
        let n = read_full(reader, &mut buffer)?;
        if n == 0 {
            return Ok(count);
        }
        let mut rest = &buffer[..n];
        while let Some((&byte, after)) = rest.split_first() {
            if !line_start {
                match memchr::memchr(b'\n', rest) {
                    Some(i) => (rest, line_start, first_byte) = (&rest[i + 1..], true, true),
                    None => rest = &[],
                }
                continue;
            }
            rest = after;
            match byte {
                b'\n' => (in_paragraph, first_byte) = (false, true),
                b' ' | b'\t' | b'\r' => first_byte = false,
                b'#' if first_byte && !in_paragraph => line_start = false,
                _ => {
                    count += u64::from(!in_paragraph);
                    (in_paragraph, line_start) = (true, false);
                }
            }
        }
    }
}

fn count_lines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

/// Reads every package record of a Packages index.
pub fn read_packages<R: Read + ?Sized>(reader: &mut R) -> Result<Vec<IndexRecord>, IndexError> {
    read_packages_sized(reader, 0)
}

/// [`read_packages`] for an index of a known size: room for its records is reserved at once,
/// so the list never exists twice while it grows (7 MB for Debian's index).
pub fn read_packages_sized<R: Read + ?Sized>(
    reader: &mut R,
    text_size: u64,
) -> Result<Vec<IndexRecord>, IndexError> {
    // Stanzas are 800 bytes on average in Debian and Ubuntu; reserving more than is used
    // costs address space, not memory.
    let mut records = Vec::with_capacity((text_size / 500).min(1 << 22) as usize);
    for_each_paragraph(reader, |p, Position { offset, line }| {
        let bad = |reason: String| IndexError::Bad { line, reason };
        // One pass over the stanza's fields; the first of a repeated field counts, as in
        // `Paragraph::get`.
        let mut fields = [""; FIELDS];
        let mut found = [false; FIELDS];
        for field in p.fields() {
            if let Some(i) = NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(field.name))
                && !found[i]
            {
                found[i] = true;
                fields[i] = field.value;
            }
        }
        for (slot, name) in fields.iter().zip(NAMES).take(4) {
            if slot.is_empty() {
                return Err(bad(format!("package without {name}")));
            }
        }
        let package = fields[0];
        crate::storage::tree::check_relative_path(fields[3])
            .map_err(|e| bad(format!("{package}: {e}")))?;
        let size = p
            .get("Size")
            .ok_or_else(|| bad(format!("{package}: no Size")))?
            .parse()
            .map_err(|_| bad(format!("{package}: bad Size")))?;
        let sha256 = p
            .get("SHA256")
            .and_then(Sha256::from_hex)
            .ok_or_else(|| bad(format!("{package}: no SHA256, or a bad one")))?;
        records.push(IndexRecord::new(
            fields,
            size,
            sha256,
            offset,
            p.text().len() as u32,
        ));
        Ok(())
    })?;
    Ok(records)
}

/// Copies the stanzas at `wanted` (offset, length; sorted by offset) out of an index, joined
/// as a Packages file.
pub fn extract_stanzas(reader: &mut impl Read, wanted: &[(u64, u32)]) -> io::Result<String> {
    let mut out = Vec::with_capacity(wanted.iter().map(|(_, l)| *l as usize + 2).sum());
    let mut position = 0u64;
    for &(offset, length) in wanted {
        io::copy(
            &mut reader.by_ref().take(offset - position),
            &mut io::sink(),
        )?;
        let before = out.len();
        reader
            .by_ref()
            .take(u64::from(length))
            .read_to_end(&mut out)?;
        if out.len() - before != length as usize {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "index shorter than its records",
            ));
        }
        out.extend_from_slice(b"\n\n");
        position = offset + u64::from(length);
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: amd64\n{extra}Filename: pool/main/{name}.deb\nSize: 10\nSHA256: {}\nDescription: x\n more\n",
            Sha256::of(name.as_bytes())
        )
    }

    #[test]
    fn counts_paragraphs_as_the_reader_finds_them() {
        let texts: [(String, u64); 6] = [
            (String::new(), 0),
            ("\n\n".into(), 0),
            (stanza("a", ""), 1),
            (
                format!("# head\n\n{}\n \t\r\n{}", stanza("a", ""), stanza("b", "")),
                2,
            ),
            (
                format!(
                    "{}\r\n\r\n# between\n{}\n\n\n",
                    stanza("a", "Depends: x,\n y\n"),
                    stanza("b", "")
                ),
                2,
            ),
            (
                (0..300)
                    .map(|i| stanza(&i.to_string(), ""))
                    .collect::<Vec<_>>()
                    .join("\n"),
                300,
            ),
        ];
        for (text, expected) in &texts {
            let mut parsed = 0;
            for_each_paragraph(&mut text.as_bytes(), |_, _| {
                parsed += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(parsed, *expected, "{text:?}");
            assert_eq!(count_paragraphs(&mut text.as_bytes()).unwrap(), *expected);
            // Every place a chunk can end: inside a line, at its start, between paragraphs.
            for chunk in [1, 2, 3, 7, 64] {
                let counted = count_paragraphs_by(&mut text.as_bytes(), chunk).unwrap();
                assert_eq!(counted, *expected, "{text:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn decompresses_by_name_every_stream() {
        use std::io::Write;
        let gz = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let xz = |text: &[u8]| {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let read = |name: &str, bytes: Vec<u8>| {
            let mut text = String::new();
            decompressed(name, &bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(
            read("Packages.gz", [gz(b"a\n"), gz(b"b\n")].concat()),
            "a\nb\n"
        );
        assert_eq!(
            read("Packages.xz", [xz(b"a\n"), xz(b"b\n")].concat()),
            "a\nb\n"
        );
        assert_eq!(read("Packages", b"a\n".to_vec()), "a\n");
    }

    #[test]
    fn streams_across_chunk_boundaries_and_extracts_verbatim() {
        // Enough packages to span several 1 MiB chunks.
        let padding = "X-Pad: ".to_string() + &"p".repeat(300) + "\n";
        let text: String = (0..8000)
            .map(|i| stanza(&format!("pkg{i}"), &padding) + "\n")
            .collect();
        let records = read_packages(&mut text.as_bytes()).unwrap();
        assert_eq!(records.len(), 8000);
        assert_eq!(records[7999].name(), "pkg7999");
        assert_eq!(records[7999].depends(), None);
        assert_eq!(records[7999].filename(), "pool/main/pkg7999.deb");
        let wanted: Vec<(u64, u32)> = [10, 4000, 7999]
            .iter()
            .map(|&i| (records[i].offset, records[i].length))
            .collect();
        let extracted = extract_stanzas(&mut text.as_bytes(), &wanted).unwrap();
        let expected: String = [10, 4000, 7999]
            .iter()
            .map(|i| stanza(&format!("pkg{i}"), &padding).trim_end().to_string() + "\n\n")
            .collect();
        assert_eq!(extracted, expected);
    }

    #[test]
    fn sources_and_binary_source_fields() {
        let sha = Sha256::of(b"x");
        let text = format!(
            "Package: hello\nVersion: 2.10-3\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n {sha} 1847 hello_2.10-3.dsc\n {sha} 725946 hello_2.10.orig.tar.gz\n\nPackage: evil\nVersion: 1\nDirectory: pool/../..\nChecksums-Sha256:\n {sha} 1 x.dsc\n"
        );
        let err = read_sources(&mut text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("line 8") && err.contains("evil"), "{err}");
        let text = text.split("\n\n").next().unwrap();
        let records = read_sources(&mut text.as_bytes()).unwrap();
        assert_eq!(records[0].name, "hello");
        assert_eq!(
            records[0].files[1],
            (
                "pool/main/h/hello/hello_2.10.orig.tar.gz".to_string(),
                725946,
                sha
            )
        );

        let binary = |source: &str| {
            let text = stanza("libhello1", source);
            read_packages(&mut text.as_bytes()).unwrap().remove(0)
        };
        assert_eq!(binary("").source(), ("libhello1", "1.0"));
        assert_eq!(binary("Source: hello\n").source(), ("hello", "1.0"));
        assert_eq!(
            binary("Source: hello (0.9-1)\n").source(),
            ("hello", "0.9-1")
        );
    }

    #[test]
    fn errors_carry_the_line() {
        let text = format!("{}\nPackage: broken\nVersion: 1\n", stanza("a", ""));
        let err = read_packages(&mut text.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 10: package without"), "{err}");
        let text = stanza("a", "").replace("pool/main/a.deb", "../../etc/passwd");
        let err = read_packages(&mut text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("forbidden component"), "{err}");
    }
}
