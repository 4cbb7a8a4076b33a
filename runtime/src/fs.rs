//! `gort::fs`: the `std::fs` calls programs reach for first, each run through
//! [`crate::blocking`], as tokio::fs wraps them. File I/O cannot be made non-blocking the way
//! sockets are (a regular file is always "ready", and a read may still wait for the disk), so,
//! as Go does for files without a poller and tokio does always, each call runs on a thread of
//! the blocking pool while the calling goroutine parks; its thread keeps running the goroutines
//! homed to it. On a plain thread each call runs inline, exactly as std's.
//!
//! Every function takes the arguments std's does and borrows them into the pool thread (no
//! copies: `blocking` lets the closure borrow). A full pool is an `io::Error` of kind
//! `ResourceBusy` whose message names the cap and how to raise it ([`crate::BlockingError`]).
//! [`File`] wraps `std::fs::File`; each read or write is one trip to the pool, so read and
//! write in large buffers (`read_to_end`, `write_all` and [`read()`]/[`write()`] take one trip for
//! the whole call).
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("gort-fs-mod-{}", std::process::id()));
//! let text = gort::run(move || -> std::io::Result<String> {
//!     gort::fs::create_dir_all(&dir)?;
//!     gort::fs::write(dir.join("greeting"), "hello")?;
//!     let text = gort::fs::read_to_string(dir.join("greeting"))?;
//!     gort::fs::remove_dir_all(&dir)?;
//!     Ok(text)
//! });
//! assert_eq!(text.unwrap(), "hello");
//! ```

use std::fs::{DirEntry, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Runs `f` through the blocking pool; a full pool becomes an `io::Error`.
fn pool<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    crate::blocking(f).map_err(io::Error::from)?
}

/// `std::fs::read` on the blocking pool: the whole file.
///
/// ```
/// gort::run(|| {
///     let path = std::env::temp_dir().join(format!("gort-fs-read-{}", std::process::id()));
///     std::fs::write(&path, b"abc").unwrap();
///     let bytes = gort::fs::read(&path).unwrap();
///     assert_eq!(bytes, b"abc");
/// #     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    pool(|| std::fs::read(path))
}

/// `std::fs::read_to_string` on the blocking pool.
///
/// ```
/// gort::run(|| {
///     let path = std::env::temp_dir().join(format!("gort-fs-rts-{}", std::process::id()));
///     std::fs::write(&path, "text").unwrap();
///     assert_eq!(gort::fs::read_to_string(&path).unwrap(), "text");
/// #     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    pool(|| std::fs::read_to_string(path))
}

/// `std::fs::write` on the blocking pool: creates or truncates the file, writes `contents`.
///
/// ```
/// gort::run(|| {
///     let path = std::env::temp_dir().join(format!("gort-fs-write-{}", std::process::id()));
///     gort::fs::write(&path, [1u8, 2, 3]).unwrap();
///     assert_eq!(std::fs::read(&path).unwrap(), [1, 2, 3]);
/// #     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let (path, contents) = (path.as_ref(), contents.as_ref());
    pool(|| std::fs::write(path, contents))
}

/// `std::fs::create_dir` on the blocking pool.
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir().join(format!("gort-fs-mkdir-{}", std::process::id()));
///     gort::fs::create_dir(&dir).unwrap();
///     assert!(dir.is_dir());
/// #     std::fs::remove_dir(&dir).unwrap();
/// });
/// ```
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    pool(|| std::fs::create_dir(path))
}

/// `std::fs::create_dir_all` on the blocking pool: the directory and its missing parents.
///
/// ```
/// gort::run(|| {
///     let top = std::env::temp_dir().join(format!("gort-fs-mkdirs-{}", std::process::id()));
///     gort::fs::create_dir_all(top.join("a/b")).unwrap();
///     assert!(top.join("a/b").is_dir());
/// #     std::fs::remove_dir_all(&top).unwrap();
/// });
/// ```
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    pool(|| std::fs::create_dir_all(path))
}

/// `std::fs::remove_file` on the blocking pool.
///
/// ```
/// gort::run(|| {
///     let path = std::env::temp_dir().join(format!("gort-fs-rm-{}", std::process::id()));
///     std::fs::write(&path, "x").unwrap();
///     gort::fs::remove_file(&path).unwrap();
///     assert!(!path.exists());
/// });
/// ```
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    pool(|| std::fs::remove_file(path))
}

/// `std::fs::remove_dir` on the blocking pool: an empty directory.
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir().join(format!("gort-fs-rmdir-{}", std::process::id()));
///     std::fs::create_dir(&dir).unwrap();
///     gort::fs::remove_dir(&dir).unwrap();
///     assert!(!dir.exists());
/// });
/// ```
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    pool(|| std::fs::remove_dir(path))
}

/// `std::fs::remove_dir_all` on the blocking pool: a directory and everything in it, in one
/// trip.
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir().join(format!("gort-fs-rmall-{}", std::process::id()));
///     std::fs::create_dir_all(dir.join("sub")).unwrap();
///     gort::fs::remove_dir_all(&dir).unwrap();
///     assert!(!dir.exists());
/// });
/// ```
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    pool(|| std::fs::remove_dir_all(path))
}

/// `std::fs::rename` on the blocking pool.
///
/// ```
/// gort::run(|| {
///     let from = std::env::temp_dir().join(format!("gort-fs-mv1-{}", std::process::id()));
///     let to = from.with_file_name(format!("gort-fs-mv2-{}", std::process::id()));
///     std::fs::write(&from, "x").unwrap();
///     gort::fs::rename(&from, &to).unwrap();
///     assert!(to.exists() && !from.exists());
/// #     std::fs::remove_file(&to).unwrap();
/// });
/// ```
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    pool(|| std::fs::rename(from, to))
}

/// `std::fs::copy` on the blocking pool: copies contents and permissions; returns the bytes
/// copied.
///
/// ```
/// gort::run(|| {
///     let from = std::env::temp_dir().join(format!("gort-fs-cp1-{}", std::process::id()));
///     let to = from.with_file_name(format!("gort-fs-cp2-{}", std::process::id()));
///     std::fs::write(&from, "four").unwrap();
///     assert_eq!(gort::fs::copy(&from, &to).unwrap(), 4);
/// #     std::fs::remove_file(&from).unwrap();
/// #     std::fs::remove_file(&to).unwrap();
/// });
/// ```
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    pool(|| std::fs::copy(from, to))
}

/// `std::fs::metadata` on the blocking pool (follows symbolic links).
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir();
///     assert!(gort::fs::metadata(&dir).unwrap().is_dir());
/// });
/// ```
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    pool(|| std::fs::metadata(path))
}

/// `std::fs::symlink_metadata` on the blocking pool (does not follow a final symbolic link).
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir();
///     assert!(gort::fs::symlink_metadata(&dir).is_ok());
/// });
/// ```
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    pool(|| std::fs::symlink_metadata(path))
}

/// `std::fs::read_dir`, the entries collected on the blocking pool in one trip (std's iterator
/// would block at each step). An entry's `metadata()` is a further system call on the caller's
/// thread; its `file_name()`, `path()` and, on most Linux file systems, `file_type()` are not.
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir().join(format!("gort-fs-ls-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     std::fs::write(dir.join("one"), "").unwrap();
///     let entries = gort::fs::read_dir(&dir).unwrap();
///     assert_eq!(entries.len(), 1);
///     assert_eq!(entries[0].file_name(), "one");
/// #     std::fs::remove_dir_all(&dir).unwrap();
/// });
/// ```
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<DirEntry>> {
    let path = path.as_ref();
    pool(|| std::fs::read_dir(path)?.collect())
}

/// `std::fs::canonicalize` on the blocking pool: the absolute path, links resolved.
///
/// ```
/// gort::run(|| {
///     let dir = std::env::temp_dir();
///     let abs = gort::fs::canonicalize(&dir).unwrap();
///     assert!(abs.is_absolute());
/// });
/// ```
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref();
    pool(|| std::fs::canonicalize(path))
}

/// A `std::fs::File` whose opening, reads, writes and syncs run on the blocking pool. Seeking
/// runs inline (`lseek` does not wait for the device). Each `read` or `write` call is one trip
/// to the pool; `read_to_end`, `read_to_string` and `write_all` are one trip each.
///
/// ```
/// use std::io::{Read, Write};
/// let path = std::env::temp_dir().join(format!("gort-fs-file-{}", std::process::id()));
/// let p = path.clone();
/// let back = gort::run(move || -> std::io::Result<String> {
///     let path = p;
///     let mut f = gort::fs::File::create(&path)?;
///     f.write_all(b"written")?;
///     f.sync_all()?;
///     let mut f = gort::fs::File::open(&path)?;
///     let mut s = String::new();
///     f.read_to_string(&mut s)?;
///     assert_eq!(f.metadata()?.len(), 7);
///     Ok(s)
/// });
/// assert_eq!(back.unwrap(), "written");
/// # std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug)]
pub struct File {
    std: std::fs::File,
}

impl File {
    /// Opens `path` for reading (`std::fs::File::open`).
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        pool(|| std::fs::File::open(path)).map(File::from_std)
    }

    /// Creates `path` for writing, truncating it if it exists (`std::fs::File::create`).
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        pool(|| std::fs::File::create(path)).map(File::from_std)
    }

    /// Opens `path` with `options` (`OpenOptions::open`).
    ///
    /// ```
    /// gort::run(|| {
    ///     let path = std::env::temp_dir().join(format!("gort-fs-opts-{}", std::process::id()));
    ///     let mut opts = std::fs::OpenOptions::new();
    ///     opts.append(true).create(true);
    ///     let f = gort::fs::File::open_with(&path, &opts).unwrap();
    /// #     drop(f);
    /// #     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<File> {
        let path = path.as_ref();
        pool(|| options.open(path)).map(File::from_std)
    }

    /// Wraps an open std file.
    pub fn from_std(std: std::fs::File) -> File {
        File { std }
    }

    /// The std file underneath.
    pub fn into_std(self) -> std::fs::File {
        self.std
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub fn sync_all(&self) -> io::Result<()> {
        pool(|| self.std.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        pool(|| self.std.sync_data())
    }

    /// The file's metadata (`fstat`).
    pub fn metadata(&self) -> io::Result<Metadata> {
        pool(|| self.std.metadata())
    }

    /// Truncates or extends the file to `size` bytes.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        pool(|| self.std.set_len(size))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let std = &mut self.std;
        pool(|| std.read(buf))
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let std = &mut self.std;
        pool(|| std.read_to_end(buf))
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let std = &mut self.std;
        pool(|| std.read_to_string(buf))
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let std = &mut self.std;
        pool(|| std.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let std = &mut self.std;
        pool(|| std.write_all(buf))
    }

    /// A std file has no user-space buffer: nothing to do (use [`File::sync_all`] for the
    /// device).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.std.seek(pos)
    }
}

impl std::os::fd::AsRawFd for File {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.std.as_raw_fd()
    }
}
