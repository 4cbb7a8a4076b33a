//! `gort::fs` round trips (`runtime/src/fs.rs`): every call, in goroutines at maxprocs 1, 2 and
//! 4 (`common::each_procs`, bounded in time), and on a plain thread, where it runs inline.
//! Each scenario works in a directory of its own under the system's temporary directory and
//! removes it.

mod common;

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gort::fs;

/// A fresh directory for `what` at `procs`, removed first if a failed run left it.
fn scratch(what: &str, procs: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gort-fs-test-{}-{what}-{procs}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Files and directories: write, read back, list, stat, rename, copy, remove.
fn tree_round_trip(dir: &Path) {
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::create_dir(dir.join("c")).unwrap();
    assert_eq!(
        fs::create_dir(dir.join("c")).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    fs::write(dir.join("a/one.txt"), "one").unwrap();
    assert_eq!(fs::read(dir.join("a/one.txt")).unwrap(), b"one");
    assert_eq!(fs::read_to_string(dir.join("a/one.txt")).unwrap(), "one");
    assert_eq!(
        fs::copy(dir.join("a/one.txt"), dir.join("c/two.txt")).unwrap(),
        3
    );
    fs::rename(dir.join("c/two.txt"), dir.join("c/three.txt")).unwrap();
    let mut names: Vec<_> = fs::read_dir(dir.join("c"))
        .unwrap()
        .iter()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["three.txt"]);
    let meta = fs::metadata(dir.join("c/three.txt")).unwrap();
    assert!(meta.is_file() && meta.len() == 3);
    assert!(fs::symlink_metadata(dir.join("a")).unwrap().is_dir());
    let canon = fs::canonicalize(dir.join("a/b/..")).unwrap();
    assert_eq!(canon, std::fs::canonicalize(dir.join("a")).unwrap());
    fs::remove_file(dir.join("c/three.txt")).unwrap();
    fs::remove_dir(dir.join("c")).unwrap();
    assert_eq!(
        fs::read(dir.join("c/three.txt")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    fs::remove_dir_all(dir).unwrap();
    assert!(!dir.exists());
}

/// `File`: create, write, sync, reopen, read, seek, metadata, set_len.
fn file_round_trip(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("file");
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(b"hello, world").unwrap();
    assert_eq!(f.write(b"!").unwrap(), 1);
    f.flush().unwrap();
    f.sync_all().unwrap();
    f.sync_data().unwrap();
    assert_eq!(f.metadata().unwrap().len(), 13);
    f.set_len(5).unwrap();
    drop(f);
    let mut f = fs::File::open(&path).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    f.seek(SeekFrom::Start(1)).unwrap();
    let mut buf = [0u8; 2];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"el");
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"lo");
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true);
    let mut f = fs::File::open_with(&path, &opts).unwrap();
    f.write_all(b"!").unwrap();
    assert_eq!(f.into_std().metadata().unwrap().len(), 6);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tree_in_goroutines() {
    common::each_procs("tree_in_goroutines", |procs| {
        let dir = scratch("tree", procs);
        gort::spawn(move || tree_round_trip(&dir)).join().unwrap();
    });
}

#[test]
fn file_in_goroutines() {
    common::each_procs("file_in_goroutines", |procs| {
        let dir = scratch("file", procs);
        gort::spawn(move || file_round_trip(&dir)).join().unwrap();
    });
}

/// Many goroutines each write and read back a file of their own at once.
#[test]
fn many_goroutines() {
    common::each_procs("many_goroutines", |procs| {
        let dir = scratch("many", procs);
        std::fs::create_dir_all(&dir).unwrap();
        let hs: Vec<_> = (0..32u32)
            .map(|i| {
                let path = dir.join(i.to_string());
                gort::spawn(move || {
                    fs::write(&path, i.to_le_bytes()).unwrap();
                    fs::read(&path).unwrap() == i.to_le_bytes()
                })
            })
            .collect();
        assert!(hs.into_iter().all(|h| h.join().unwrap()));
        assert_eq!(fs::read_dir(&dir).unwrap().len(), 32);
        fs::remove_dir_all(&dir).unwrap();
    });
}

/// On a plain thread the same calls run inline.
#[test]
fn plain_thread() {
    let dir = scratch("plain", 0);
    tree_round_trip(&dir);
    file_round_trip(&dir);
}
