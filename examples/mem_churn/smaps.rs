//! `mem_churn --smaps`: where the process's resident memory is, by kind of mapping, from
//! `/proc/self/smaps` (Linux), with glibc's own count of the bytes its `malloc` has in use.
//!
//! The kinds are recognised from what each mapping looks like, not from the runtime's
//! bookkeeping, so the same reading works on any build:
//! - *gort stacks*: anonymous, `MAP_NORESERVE` and `MADV_NOHUGEPAGE` (VmFlags `nr` and `nh`),
//!   which is how `sched`'s stack slabs are mapped and nothing else here is.
//! - *mimalloc (cells)*: anonymous, in the 2-32 TiB range where mimalloc places its arenas
//!   (its address hint); the runtime allocates goroutine cells and join packets there.
//! - *glibc main arena*: `[heap]`. *glibc thread arenas*: anonymous `MAP_NORESERVE` mappings
//!   inside a 64 MiB-aligned block whose first mapping starts at the block (glibc's per-thread
//!   heaps are 64 MiB reservations aligned to their size). *glibc large chunks*: the remaining
//!   anonymous read-write mappings flagged `ac` (accounted: `mmap` without `MAP_NORESERVE`),
//!   which is how glibc maps a request above its mmap threshold; the program's and Rust's
//!   other such mappings land here too.
//! - *thread stacks*: anonymous read-write mappings right above a one-page `PROT_NONE` guard
//!   (pthread stacks and the signal stacks Rust gives each thread), and `[stack]`.
//! - *binary*: mappings of this executable; *libraries*: other files; *other*: the rest
//!   (`[vdso]`, the binary's `.bss`, ...).
//!
//! Invariant: every mapping is counted in exactly one kind, so the kinds add up to the total.

/// Kinds, in the order they are printed.
const KINDS: [&str; 9] = [
    "gort stacks",
    "mimalloc (cells)",
    "glibc main arena",
    "glibc thread arenas",
    "glibc large chunks",
    "thread stacks",
    "binary",
    "libraries",
    "other",
];

/// glibc's per-thread heaps are reservations of this size, aligned to it (64-bit).
const GLIBC_HEAP_MAX: u64 = 64 << 20;

/// mimalloc's arenas sit between these addresses (its `mmap` hint range on 64-bit Linux).
const MIMALLOC_HINT: std::ops::Range<u64> = (2 << 40)..(32 << 40);

struct Mapping {
    lo: u64,
    hi: u64,
    perms: String,
    name: String,
    rss_kib: u64,
    flags: Vec<String>,
}

impl Mapping {
    fn anonymous(&self) -> bool {
        self.name.is_empty()
    }

    fn flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

/// Prints one line per kind of mapping (resident KiB), the total, and glibc's bytes in use,
/// each line starting `mem_churn: smaps <when>`.
pub fn print(when: &str) {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        println!("mem_churn: smaps {when} unavailable (no /proc/self/smaps)");
        return;
    };
    let maps = parse(&text);
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut kib = [0u64; KINDS.len()];
    for (i, m) in maps.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| &maps[j]);
        kib[kind_of(m, prev, &maps, &exe)] += m.rss_kib;
    }
    let total: u64 = kib.iter().sum();
    let parts: Vec<String> = KINDS
        .iter()
        .zip(kib)
        .map(|(k, v)| format!("{}={v}", k.replace(' ', "_")))
        .collect();
    println!(
        "mem_churn: smaps {when} rss_kib={total} {}{}",
        parts.join(" "),
        malloc_in_use()
    );
}

fn kind_of(m: &Mapping, prev: Option<&Mapping>, all: &[Mapping], exe: &str) -> usize {
    let kind = |name: &str| KINDS.iter().position(|k| *k == name).expect("a kind");
    if m.anonymous() {
        if m.flag("nr") && m.flag("nh") {
            return kind("gort stacks");
        }
        if MIMALLOC_HINT.contains(&m.lo) {
            return kind("mimalloc (cells)");
        }
        if m.flag("nr") && in_glibc_heap(m, all) {
            return kind("glibc thread arenas");
        }
        let guarded = prev.is_some_and(|p| {
            p.anonymous() && p.perms.starts_with("---") && p.hi == m.lo && p.hi - p.lo == 4096
        });
        if guarded && m.perms.starts_with("rw") {
            return kind("thread stacks");
        }
        if m.perms.starts_with("rw") && m.flag("ac") {
            return kind("glibc large chunks");
        }
        return kind("other");
    }
    match m.name.as_str() {
        "[heap]" => kind("glibc main arena"),
        "[stack]" => kind("thread stacks"),
        name if name == exe => kind("binary"),
        name if name.starts_with('/') => kind("libraries"),
        _ => kind("other"),
    }
}

/// Whether `m` lies in a 64 MiB-aligned block that a `MAP_NORESERVE` mapping starts exactly
/// at: a glibc thread heap (its read-write part or its reserved tail).
fn in_glibc_heap(m: &Mapping, all: &[Mapping]) -> bool {
    let block = m.lo & !(GLIBC_HEAP_MAX - 1);
    m.hi <= block + GLIBC_HEAP_MAX
        && all
            .iter()
            .any(|h| h.lo == block && h.anonymous() && h.flag("nr") && !h.flag("nh"))
}

fn parse(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) {
                let perms = words.next().unwrap_or("").to_string();
                // offset, device, inode, then the name (which may contain spaces).
                let name = words.skip(3).collect::<Vec<_>>().join(" ");
                maps.push(Mapping {
                    lo,
                    hi,
                    perms,
                    name,
                    rss_kib: 0,
                    flags: Vec::new(),
                });
                continue;
            }
        }
        let Some(m) = maps.last_mut() else { continue };
        match first {
            "Rss:" => m.rss_kib = words.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "VmFlags:" => m.flags = words.map(str::to_string).collect(),
            _ => {}
        }
    }
    maps
}

/// glibc's `mallinfo2`: bytes in use in its arenas and in its mmapped chunks.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_in_use() -> String {
    // SAFETY: `mallinfo2` has no preconditions; it takes each arena's lock itself.
    let info = unsafe { libc::mallinfo2() };
    format!(
        " malloc_arena_kib={} malloc_in_use_kib={} malloc_mmapped_kib={}",
        info.arena / 1024,
        info.uordblks / 1024,
        info.hblkhd / 1024
    )
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_in_use() -> String {
    String::new()
}
