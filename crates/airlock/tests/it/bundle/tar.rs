//! Bundle volumes edited by hand, entry by entry, for the bad bundles.

/// One tar entry: its 512-byte header, its data (unpadded), where the data starts in the file.
#[derive(Clone)]
pub struct TarEntry {
    pub header: [u8; 512],
    pub data: Vec<u8>,
    pub offset: u64,
}

impl TarEntry {
    pub fn name(&self) -> String {
        let field = |range: std::ops::Range<usize>| {
            let bytes = &self.header[range];
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        let name = field(0..100);
        let prefix = field(345..500);
        if &self.header[257..263] == b"ustar\0" && !prefix.is_empty() {
            format!("{prefix}/{name}")
        } else {
            name
        }
    }
}

/// Splits a tar file into its entries and what follows them (the end-of-archive blocks).
pub fn read_tar(bytes: &[u8]) -> (Vec<TarEntry>, Vec<u8>) {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header: [u8; 512] = bytes[at..at + 512].try_into().unwrap();
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = if header[124] & 0x80 != 0 {
            header[125..136]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b)) as usize
        } else {
            let text = String::from_utf8_lossy(&header[124..136]);
            usize::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap()
        };
        let start = at + 512;
        entries.push(TarEntry {
            header,
            data: bytes[start..start + size].to_vec(),
            offset: start as u64,
        });
        at = start + size.div_ceil(512) * 512;
    }
    (entries, bytes[at..].to_vec())
}

pub fn write_tar(entries: &[TarEntry], trailer: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&entry.header);
        out.extend_from_slice(&entry.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(trailer);
    out
}

pub fn position(entries: &[TarEntry], name: &str) -> usize {
    entries
        .iter()
        .position(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

pub fn rename(entries: &mut [TarEntry], from: &str, to: &str) {
    let i = position(entries, from);
    let header = &mut entries[i].header;
    header[..100].fill(0);
    header[..to.len()].copy_from_slice(to.as_bytes());
    if &header[257..263] == b"ustar\0" {
        header[345..500].fill(0);
    }
    seal(header);
}

pub fn insert_before(entries: &mut Vec<TarEntry>, name: &str, header: [u8; 512]) {
    let i = position(entries, name);
    entries.insert(
        i,
        TarEntry {
            header,
            data: Vec::new(),
            offset: 0,
        },
    );
}

/// A POSIX ustar header: `kind` is the type flag ('0' file, '1' hard link, '2' symlink,
/// '3' character device).
pub fn ustar(name: &str, kind: u8, link: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o444);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], size);
    octal(&mut header[136..148], 1_700_000_000);
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    seal(&mut header);
    header
}

/// A numeric field: octal digits filling it, then a NUL.
pub fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// The header checksum: the sum of its bytes with the checksum field taken as spaces.
pub fn seal(header: &mut [u8; 512]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}
