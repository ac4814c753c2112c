//! Archive outputs of a [`super::Sink`]: what `oci-archive:PATH` and `docker-archive:PATH`
//! write to (a regular file replaced at the end, standard output, a FIFO or a character device
//! written into), and the tar of the staged directory written there.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::io;
use crate::error::{Error, Result};
use crate::source::SourceRef;

/// Where an archive is written.
#[derive(Debug)]
pub(super) enum ArchiveOut {
    /// Standard output (`-`).
    Stdout,
    /// A FIFO or a character device (a named pipe, the `/dev/fd/N` of a process substitution
    /// `>(…)`, `/dev/stdout` on a pipe or terminal, a device), opened by [`super::Sink::open`] and
    /// written straight into, as standard output is: never replaced.
    Stream(PathBuf, fs::File),
    /// A regular file, or none yet: the archive is staged beside it and renamed onto it. The
    /// path is where the symlinks of the one given lead (a link stays, its target is written).
    File(PathBuf),
}

impl ArchiveOut {
    /// What `oci-archive:PATH` or `docker-archive:PATH` (`None`: `-`) writes to: see
    /// [`ArchiveOut`]. A FIFO is opened for writing here, so this waits for its reader.
    ///
    /// # Errors
    /// `path` is a directory, a socket, a block device; a FIFO or device cannot be opened for
    /// writing; its symlinks loop.
    pub(super) fn of(dest: &SourceRef, path: Option<&Path>) -> Result<ArchiveOut> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let Some(path) = path else {
            return Ok(ArchiveOut::Stdout);
        };
        let refuse = |what: &str| {
            Err(Error::InvalidReference {
                reference: dest.to_string(),
                reason: format!(
                    "{} is {what}: an archive is written to a regular file (replaced), a FIFO \
                     or a character device",
                    path.display()
                ),
            })
        };
        // A missing path is a new file (a dangling symlink: its target is created).
        if let Ok(m) = fs::metadata(path) {
            let t = m.file_type();
            if t.is_fifo() || t.is_char_device() {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
                    .open(path)
                    .map_err(io(path))?;
                return Ok(ArchiveOut::Stream(path.to_path_buf(), file));
            }
            if t.is_dir() {
                return refuse("a directory");
            }
            if t.is_socket() {
                return refuse("a socket");
            }
            if t.is_block_device() {
                return refuse("a block device");
            }
            if !t.is_file() {
                return refuse("not a regular file");
            }
        }
        Ok(ArchiveOut::File(follow_links(path)?))
    }
}

/// `path` with the symlinks it names followed to the end (which need not exist), so that an
/// archive replaces or creates the file a symlink points to, and the link stays.
///
/// # Errors
/// The symlinks loop (40 of them, as the kernel's limit), or one cannot be read.
fn follow_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p).map_err(io(&p))?;
                // relative to the link's directory (an absolute `to` replaces it all)
                p = p.parent().map_or_else(|| to.clone(), |dir| dir.join(&to));
            }
            _ => return Ok(p),
        }
    }
    Err(io(path)(rustix::io::Errno::LOOP.into()))
}

/// Whether an archive to `dest` goes to this process's standard output: `-`, or a FIFO or
/// device that standard output is (`oci-archive:/dev/stdout`). What the command prints
/// about it must go to standard error then.
pub fn writes_to_stdout(dest: &SourceRef) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = match dest {
        SourceRef::OciArchive { path, .. } | SourceRef::DockerArchive { path, .. } => path,
        _ => return false,
    };
    let Some(path) = path else { return true };
    let (Ok(m), Ok(out)) = (fs::metadata(path), rustix::fs::fstat(std::io::stdout())) else {
        return false;
    };
    let stream = m.file_type().is_fifo() || m.file_type().is_char_device();
    stream && m.dev() == out.st_dev && m.ino() == out.st_ino
}

/// Tars `dir` (all of it, or `names` in that order) to `out`: a file through `staged` (a path
/// in the staging directory) renamed onto it at the end; standard output, a FIFO or a device
/// directly.
///
/// # Errors
/// Writing fails ([`Error::OutputClosed`] when the reader of a pipe went away).
pub(super) fn write(
    dir: &Path,
    staged: &Path,
    out: &ArchiveOut,
    names: Option<&[String]>,
) -> Result<()> {
    let (sink, name): (Box<dyn Write + '_>, String) = match out {
        ArchiveOut::File(p) => (
            Box::new(BufWriter::new(
                fs::File::create(staged).map_err(io(staged))?,
            )),
            p.display().to_string(),
        ),
        ArchiveOut::Stdout => (Box::new(std::io::stdout().lock()), "standard output".into()),
        ArchiveOut::Stream(p, file) => (Box::new(BufWriter::new(file)), p.display().to_string()),
    };
    let err = |e: std::io::Error| match out {
        ArchiveOut::File(p) => io(p)(e),
        _ if e.kind() == std::io::ErrorKind::BrokenPipe => Error::OutputClosed {
            output: name.clone(),
        },
        _ => Error::Io {
            context: format!("writing the archive to {name} (it is incomplete)"),
            cause: e,
        },
    };
    let mut b = tar::Builder::new(sink);
    b.mode(tar::HeaderMode::Deterministic);
    match names {
        Some(names) => {
            for n in names {
                b.append_path_with_name(dir.join(n), n).map_err(err)?;
            }
        }
        None => b.append_dir_all(".", dir).map_err(err)?,
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(err)?;
    if let ArchiveOut::File(p) = out {
        fs::rename(staged, p).map_err(io(p))?;
    }
    Ok(())
}
