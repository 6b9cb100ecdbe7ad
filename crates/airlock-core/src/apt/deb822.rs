//! deb822 control data (control files, Packages, Release): a zero-copy paragraph reader.
//!
//! Paragraphs borrow from the input, so a 50 MB Packages index is walked without copying it, and
//! a paragraph's exact text is available to be republished byte for byte.

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Deb822Error {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    /// The value: the first line without leading blanks, then any continuation lines as they
    /// are (newlines and leading blanks kept), with trailing whitespace removed.
    pub value: &'a str,
}

/// One paragraph: its text exactly as in the input and its fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    text: &'a str,
    first_line: usize,
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The paragraph's text from its first field to the end of its last line, without the
    /// final newline.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// 1-based line number of the first field in the input.
    pub fn first_line(&self) -> usize {
        self.first_line
    }

    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// The same paragraph without its first `n` fields (bookkeeping lines a file format puts
    /// before a stanza), still borrowing from the input.
    pub fn without_leading(&self, n: usize) -> Option<Paragraph<'a>> {
        let first = self.fields.get(n)?;
        let offset = first.name.as_ptr() as usize - self.text.as_ptr() as usize;
        Some(Paragraph {
            text: &self.text[offset..],
            first_line: self.first_line + self.text[..offset].matches('\n').count(),
            fields: self.fields[n..].to_vec(),
        })
    }

    /// The value of a field; names compare case-insensitively as deb822 requires.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// Iterates over the paragraphs of `text`. Blank (or whitespace-only) lines separate
/// paragraphs; comment lines (`#`) are allowed between paragraphs only.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: 0,
    }
}

pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Paragraphs<'a> {
    /// The next line (without its newline) and the offset just past it.
    fn next_line(&mut self) -> Option<(&'a str, usize)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let (line, advance) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        let start = self.pos;
        self.pos += advance;
        self.line += 1;
        Some((line, start))
    }

    fn error(&self, reason: impl Into<String>) -> Option<Result<Paragraph<'a>, Deb822Error>> {
        Some(Err(Deb822Error {
            line: self.line,
            reason: reason.into(),
        }))
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t' || b == b'\r')
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, Deb822Error>;

    fn next(&mut self) -> Option<Self::Item> {
        // Skip separators and comments before the paragraph.
        let (first, start) = loop {
            let (line, start) = self.next_line()?;
            if is_blank(line) || line.starts_with('#') {
                continue;
            }
            break (line, start);
        };
        let first_line = self.line;
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(24);
        let mut end;
        let mut current: Option<(&'a str, usize, usize)> = None; // name, value start, value end
        let mut line = first;
        let mut line_start = start;
        loop {
            let line_end = line_start + line.len();
            if line.starts_with([' ', '\t']) {
                let Some((_, _, value_end)) = current.as_mut() else {
                    return self.error("continuation line before any field");
                };
                *value_end = line_end;
            } else if line.starts_with('#') {
                return self.error("comment inside a paragraph");
            } else {
                let Some(colon) = memchr::memchr(b':', line.as_bytes()) else {
                    return self.error(format!("expected \"Field: value\", found {line:?}"));
                };
                let name = &line[..colon];
                if name.is_empty()
                    || name.starts_with('-')
                    || name.contains(|c: char| c.is_whitespace() || c.is_control())
                {
                    return self.error(format!("invalid field name {name:?}"));
                }
                if let Some((name, vs, ve)) = current.take() {
                    fields.push(field(self.text, name, vs, ve));
                }
                if fields.iter().any(|f| f.name.eq_ignore_ascii_case(name)) {
                    return self.error(format!("field {name} appears twice"));
                }
                current = Some((name, line_start + colon + 1, line_end));
            }
            end = line_end;
            match self.next_line() {
                Some((next, next_start)) if !is_blank(next) => {
                    line = next;
                    line_start = next_start;
                }
                _ => break,
            }
        }
        if let Some((name, vs, ve)) = current.take() {
            fields.push(field(self.text, name, vs, ve));
        }
        Some(Ok(Paragraph {
            text: self.text[start..end].trim_end_matches('\r'),
            first_line,
            fields,
        }))
    }
}

fn field<'a>(text: &'a str, name: &'a str, start: usize, end: usize) -> Field<'a> {
    Field {
        name,
        value: text[start..end].trim_start_matches([' ', '\t']).trim_end(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Package: hello\nVersion: 2.10-3\nDescription: example\n greets\n .\n more\n\n\n# comment\nPackage: b\nDepends: a (>= 1),\n  c\n";

    #[test]
    fn reads_fields_and_exact_text() {
        let ps: Vec<_> = paragraphs(SAMPLE).collect::<Result<_, _>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("hello"));
        assert_eq!(
            ps[0].get("Description"),
            Some("example\n greets\n .\n more")
        );
        assert_eq!(
            ps[0].text(),
            "Package: hello\nVersion: 2.10-3\nDescription: example\n greets\n .\n more"
        );
        assert_eq!(ps[0].first_line(), 1);
        assert_eq!(ps[1].get("Depends"), Some("a (>= 1),\n  c"));
        assert_eq!(ps[1].first_line(), 10);
        assert_eq!(ps[1].get("Missing"), None);
    }

    #[test]
    fn leading_fields_can_be_dropped() {
        let p = paragraphs("X: 1\nY: 2\n more\nPackage: a\nVersion: 1\n")
            .next()
            .unwrap()
            .unwrap();
        let rest = p.without_leading(2).unwrap();
        assert_eq!(rest.text(), "Package: a\nVersion: 1");
        assert_eq!(rest.first_line(), 4);
        assert_eq!(rest.get("Y"), None);
        assert_eq!(rest.get("Version"), Some("1"));
        assert!(p.without_leading(4).is_none());
    }

    #[test]
    fn whitespace_only_lines_separate_paragraphs() {
        let ps: Vec<_> = paragraphs("A: 1\n \t\nB: 2")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[1].text(), "B: 2");
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("A: 1\nnot a field\n", 2, "expected"),
            (" leading continuation\n", 1, "continuation"),
            ("A: 1\na: 2\n", 2, "twice"),
            ("A: 1\n# c\n", 2, "comment"),
            ("A b: 1\n", 1, "invalid field name"),
        ];
        for (text, line, reason) in cases {
            let err = paragraphs(text).find_map(Result::err).unwrap();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.reason.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn empty_input_has_no_paragraphs() {
        assert_eq!(paragraphs("").count(), 0);
        assert_eq!(paragraphs("\n\n  \n").count(), 0);
    }

    proptest::proptest! {
        /// Any input: no panic, and every paragraph borrows its text and fields from the input.
        #[test]
        fn paragraphs_borrow_from_any_input(
            text in "([A-Za-z-]{1,5}:[ a-z]{0,6}\n| [a-z.]{0,6}\n|\n|\t\n|#c\n|x\n|[^\n]{0,8}\n){0,12}"
        ) {
            for paragraph in paragraphs(&text).flatten() {
                let range = text.as_ptr() as usize..text.as_ptr() as usize + text.len();
                proptest::prop_assert!(range.contains(&(paragraph.text().as_ptr() as usize)));
                for field in paragraph.fields() {
                    proptest::prop_assert!(paragraph.text().contains(field.name));
                    proptest::prop_assert_eq!(paragraph.get(field.name), Some(field.value));
                    proptest::prop_assert!(!field.value.starts_with([' ', '\t']));
                }
            }
        }

        /// Written fields read back as written.
        #[test]
        fn fields_round_trip(fields in proptest::collection::btree_map("[A-Z][a-z0-9-]{0,8}", "[!-~][ -~]{0,15}", 1..8)) {
            let text: String = fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            let ps: Vec<_> = paragraphs(&text).collect::<Result<_, _>>().unwrap();
            proptest::prop_assert_eq!(ps.len(), 1);
            for (k, v) in &fields {
                proptest::prop_assert_eq!(ps[0].get(k), Some(v.trim_end()));
            }
        }
    }
}
