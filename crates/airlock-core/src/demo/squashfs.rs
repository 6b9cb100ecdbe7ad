//! Small squashfs images written in-process (backhand, xz as snaps and MAAS images use), the
//! same bytes whenever they are made: fixed times, root-owned.

use std::io::Cursor;
use std::path::Path;

use backhand::{FilesystemWriter, NodeHeader};

use super::DemoError;

/// An image of `files` (path, content, permissions); their folders are made 0755.
pub(super) fn write(files: &[(&str, &[u8], u16)]) -> Result<Vec<u8>, DemoError> {
    let error = |e: backhand::BackhandError| DemoError::build("squashfs image", e);
    let mut fs = FilesystemWriter::default();
    fs.set_time(0);
    fs.set_root_mode(0o755);
    for (path, content, mode) in files {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            fs.push_dir_all(parent, NodeHeader::new(0o755, 0, 0, 0))
                .map_err(error)?;
        }
        fs.push_file(Cursor::new(*content), path, NodeHeader::new(*mode, 0, 0, 0))
            .map_err(error)?;
    }
    let mut out = Cursor::new(Vec::new());
    fs.write(&mut out).map_err(error)?;
    Ok(out.into_inner())
}
