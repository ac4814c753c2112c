//! The library's error type.
//!
//! Every message stands alone: it names the image, the layer digest and the entry path where
//! those are known, so that the CLI can print it once with no further context.

use ostree::glib;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ocitree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A source or destination string could not be parsed (`oci:DIR:TAG`, ...).
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The string as given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An option, an argument or an input file that cannot be used as given (a level out of
    /// range, an unknown mode, a key file that holds no key, a path that is not a file).
    #[error("{what}: {reason}")]
    Invalid {
        /// The option, argument or file, as given.
        what: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A platform string is not `os/arch[/variant]`.
    #[error(
        "invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
    )]
    InvalidPlatform(String),
    /// An image name ocitree cannot store or would not show (empty, blank, too long).
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A digest string is not `algorithm:encoded` as the OCI image-spec defines it.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// An image layout, manifest, index or config is malformed.
    #[error("{image}: {reason}")]
    InvalidImage {
        /// The image source.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The index holds several manifests and nothing says which one to take.
    #[error("{image}: {count} manifests match; choose one with @DIGEST{hint}:\n{candidates}")]
    AmbiguousIndex {
        /// The image source.
        image: String,
        /// How many distinct candidates there are.
        count: usize,
        /// One line per candidate (digest, platform, tag and artifact type), the first
        /// [`crate::resolve::MAX_LISTED`] of them, then how many more there are.
        candidates: String,
        /// Another way to choose (`, or by type with --artifact-type TYPE`), or "".
        hint: String,
    },
    /// A signature check asked for did not pass.
    #[error("{what}: signature verification failed: {reason}")]
    Signature {
        /// What was verified (image and commit).
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Nothing of that name (image, tag, digest, path) exists.
    #[error("{0}: not found")]
    NotFound(String),
    /// A layer could not be imported.
    #[error("image {image}: layer {layer}: {cause}")]
    Layer {
        /// The image source.
        image: String,
        /// The layer's blob digest.
        layer: String,
        /// What went wrong in the layer.
        cause: LayerError,
    },
    /// Reading or writing a file outside the repository failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// Standard output, or a FIFO written to, was closed before an archive written to it was
    /// complete (`ocitree export IMAGE oci-archive:- | head`): what the reader got is truncated.
    #[error(
        "{output} was closed before the end of the archive: the reader got a truncated archive"
    )]
    OutputClosed {
        /// `standard output`, or the path of the FIFO.
        output: String,
    },
    /// A registry request failed (after retries), or the registry answered something
    /// unexpected.
    #[error("{url}: {reason}")]
    Registry {
        /// The URL requested (never with credentials).
        url: String,
        /// What went wrong: HTTP status and the registry's error message, or the I/O error.
        reason: String,
    },
    /// The registry refused access: no credentials, wrong credentials, or no permission.
    #[error("{registry}: authentication failed: {reason}")]
    Unauthorized {
        /// `host[:port]` of the registry.
        registry: String,
        /// The registry's answer and what to do about it.
        reason: String,
    },
    /// An image carries an encapsulated commit, but the tree its layers give is not that
    /// commit's tree (or the stored commit got another checksum). Nothing is committed.
    #[error(
        "{image}: layers do not rebuild encapsulated commit {commit}: {what} is {found}, the commit says {expected}"
    )]
    EncapsulatedMismatch {
        /// The image source.
        image: String,
        /// The commit checksum the image carries.
        commit: String,
        /// What differs (`root dirtree`, `root dirmeta`, `commit checksum`).
        what: String,
        /// The checksum the commit names.
        expected: String,
        /// The checksum found.
        found: String,
    },
    /// A commit cannot be encapsulated as an OCI image.
    #[error("cannot encapsulate {rev}: /{path}: {reason}")]
    Unencapsulable {
        /// The revision as given.
        rev: String,
        /// The offending path in the commit's tree.
        path: String,
        /// Why.
        reason: String,
    },
    /// A repository path names something that is not a repository and cannot become one.
    #[error("{path} is not an OSTree repository and none is created there: {reason}")]
    NotARepository {
        /// The path as given.
        path: String,
        /// Why no repository is created there.
        reason: String,
    },
    /// A libostree operation failed.
    #[error("{op}: {cause}")]
    Ostree {
        /// What was being done.
        op: String,
        /// The libostree error.
        cause: glib::Error,
    },
}

/// What went wrong inside one layer; wrapped in [`Error::Layer`] with the image and layer names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// Reading, verifying or decompressing the blob, or parsing the tar stream, failed. (The
    /// tar reader quotes the bytes it could not parse: shown escaped and cut, see
    /// [`printable`].)
    #[error("{}", printable(&.0.to_string()))]
    Read(std::io::Error),
    /// The uncompressed stream does not hash to the config's diff_id.
    #[error("diff_id mismatch: config says {expected}, layer content is {found}")]
    DiffIdMismatch {
        /// The diff_id in the image config.
        expected: String,
        /// The digest of the uncompressed stream.
        found: String,
    },
    /// An entry path (or hardlink target) would leave the root.
    #[error("entry {:?}: path escapes the root", cut(.path))]
    PathEscapesRoot {
        /// The path as written in the tar (lossy if not UTF-8).
        path: String,
    },
    /// A file name or symlink target is not UTF-8, which OSTree cannot store.
    #[error("entry {:?}: {what} is not UTF-8 (bytes {bytes}); OSTree cannot store it", cut(.path))]
    NonUtf8Name {
        /// The path, lossily decoded.
        path: String,
        /// What is not UTF-8.
        what: NonUtf8,
        /// The raw bytes, hex-escaped.
        bytes: String,
    },
    /// An entry OSTree cannot hold, under `--strict`; or a tar entry kind ocitree does not support.
    #[error("entry {:?}: unsupported {kind}", cut(.path))]
    UnsupportedEntry {
        /// The entry path.
        path: String,
        /// What it is (character device, FIFO, sparse file, ...).
        kind: String,
    },
    /// A member whose headers tar readers read differently (GNU tar, Go's archive/tar as
    /// umoci and containerd use it, ...): whichever way ocitree read it, another tool would see
    /// another tree.
    #[error("entry {:?}: ambiguous tar header: {reason}", cut(.path))]
    AmbiguousEntry {
        /// The entry path, as the tar wrote it.
        path: String,
        /// What is ambiguous, and how readers differ.
        reason: String,
    },
    /// Bytes other than zeros follow the end-of-archive marker: GNU tar reads on past a lone
    /// zero block, Go's archive/tar fails on it, and tar-rs stops there, so entries could hide
    /// after it.
    #[error(
        "data after the end-of-archive marker at byte {at}{}: tar readers disagree on whether \
         it belongs to the layer",
        header
            .as_ref()
            .map(|p| format!(" (what looks like the header of entry {:?})", cut(p)))
            .unwrap_or_default()
    )]
    DataAfterEnd {
        /// The stream position (in the uncompressed tar) of the first byte that is not zero.
        at: u64,
        /// The name in the tar header that starts there, if one does.
        header: Option<String>,
    },
    /// The tar stream ends inside a member (its data, a header, an extension record).
    #[error("entry {:?}: truncated layer tar: {reason}", cut(.path))]
    Truncated {
        /// The entry being read, or the last complete one when the cut is after it.
        path: String,
        /// Where the stream ends.
        reason: String,
    },
    /// A name starting with `.wh.` that is not a valid whiteout (image-spec `layer.md`).
    #[error("entry {:?}: invalid whiteout: {reason}", cut(.path))]
    BadWhiteout {
        /// The entry path.
        path: String,
        /// Why it is not a valid whiteout.
        reason: &'static str,
    },
    /// A hardlink points at nothing, or at a directory.
    #[error("entry {:?}: hardlink target {:?} {reason}", cut(.path), cut(.target))]
    BadHardlink {
        /// The link's path.
        path: String,
        /// The target path.
        target: String,
        /// Why it cannot be linked.
        reason: &'static str,
    },
    /// An entry tar extraction refuses or whose result depends on what the layer cannot see:
    /// a parent that is not a directory, a non-directory at the root, a directory replaced
    /// after this layer wrote below it without creating it.
    #[error("entry {:?}: {reason}", cut(.path))]
    EntryConflict {
        /// The entry path.
        path: String,
        /// What conflicts.
        reason: String,
    },
    /// An OSTree object an ostree native container carries in this layer
    /// (`sysroot/ostree/repo/objects/...`) is malformed or does not match its checksum.
    #[error("ostree object {object}: {reason}")]
    OstreeObject {
        /// The object's path in the layer.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A libostree operation failed while writing the layer.
    #[error("entry {:?}: {op}: {cause}", cut(.path))]
    Ostree {
        /// The entry being written ("" for the layer as a whole).
        path: String,
        /// What was being done.
        op: &'static str,
        /// The libostree error.
        cause: glib::Error,
    },
    /// A derived layer of an ostree native container (after `ostree.final-diffid`) holds
    /// what ocitree does not apply the way ostree-ext would (see
    /// `image::ostree_native::derived`).
    #[error("entry {:?}: derived layer: {reason}", cut(.path))]
    Derived {
        /// The entry's path in the layer (or in the base tree).
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// The layer is to be applied as a filesystem tar (its media type in a container image,
    /// `--extract`, or ORAS's unpack annotation say so) but its bytes are no tar. The bytes
    /// are never quoted.
    #[error(
        "media type {media_type:?}: the layer is to be applied as a filesystem tar, but its \
         first 512 bytes (after decompression) are no tar header; to keep the blob as a file, \
         import with --copy {media_type}"
    )]
    NotATar {
        /// The layer's media type.
        media_type: String,
    },
    /// A layer stored by an earlier import as one kind (a tree, or a file) is wanted here as
    /// the other.
    #[error(
        "the repository holds this layer as {stored} (from an earlier import), and this import \
         wants it as {wanted}: {hint}"
    )]
    KindConflict {
        /// What the stored layer commit is.
        stored: &'static str,
        /// What the import wants.
        wanted: &'static str,
        /// How to get it.
        hint: &'static str,
    },
}

impl Error {
    /// Wraps a libostree error with what was being done.
    pub(crate) fn ostree(op: impl Into<String>) -> impl FnOnce(glib::Error) -> Error {
        let op = op.into();
        move |cause| Error::Ostree { op, cause }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |cause| Error::Io { context, cause }
    }
}

/// Most characters of a message quoted from input (a tar reader's error quotes header bytes).
pub const QUOTE_MAX: usize = 300;

/// `text` fit for a terminal: control characters escaped (`\u{1b}`, `\n`), cut after
/// [`QUOTE_MAX`] characters. Input bytes never reach a terminal as they are.
///
/// # Examples
/// ```
/// assert_eq!(ocitree::error::printable("a\x1b[31mb"), "a\\u{1b}[31mb");
/// ```
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `raw` (a name read from input: a path, a link target, an archive member) as much of it
/// as a message shows: its first [`QUOTE_MAX`] bytes, cut at a UTF-8 character boundary,
/// and whether anything was cut. A PAX or GNU long-name record may hold a megabyte of name;
/// a message quoting it whole would be as long.
pub fn quote_head(raw: &[u8]) -> (&[u8], bool) {
    if raw.len() <= QUOTE_MAX {
        return (raw, false);
    }
    let mut end = QUOTE_MAX;
    // back off over UTF-8 continuation bytes, so that no character is split
    while end > QUOTE_MAX - 3 && raw[end] & 0xc0 == 0x80 {
        end -= 1;
    }
    (&raw[..end], true)
}

/// What a message adds after a name [`quote_head`] cut: `… (N bytes)`, else nothing.
pub fn quote_tail(raw: &[u8]) -> String {
    if quote_head(raw).1 {
        format!("… ({} bytes)", raw.len())
    } else {
        String::new()
    }
}

/// `text` (a name read from input) as much of it as a message shows: its first
/// [`QUOTE_MAX`] bytes and, when cut, how long it was.
///
/// # Examples
/// ```
/// let long = "a/".repeat(1000);
/// assert_eq!(ocitree::error::cut(&long), format!("{}… (2000 bytes)", &long[..300]));
/// assert_eq!(ocitree::error::cut("etc/passwd"), "etc/passwd");
/// ```
pub fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    match quote_head(text.as_bytes()) {
        (_, false) => text.into(),
        (head, true) => format!(
            "{}{}",
            String::from_utf8_lossy(head),
            quote_tail(text.as_bytes())
        )
        .into(),
    }
}

/// What [`LayerError::NonUtf8Name`] found not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonUtf8 {
    /// A path component.
    FileName,
    /// A symlink's target.
    SymlinkTarget,
}

impl std::fmt::Display for NonUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NonUtf8::FileName => "file name",
            NonUtf8::SymlinkTarget => "symlink target",
        })
    }
}
