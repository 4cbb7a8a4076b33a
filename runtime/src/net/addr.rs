//! Name resolution for `gort::net`: the [`ToSocketAddrs`] that `bind`, `connect` and `send_to`
//! take. Literal addresses are used as they are, on the calling goroutine; a name is resolved
//! by `getaddrinfo` through [`crate::blocking`], so the goroutine parks and its thread keeps
//! running the goroutines homed to it (on a plain thread, the lookup runs inline, as std's).
//!
//! Why a trait of gort's and not std's `ToSocketAddrs`: whether a std `ToSocketAddrs` value
//! will call `getaddrinfo` cannot be known from a generic `A` without calling it (a `&str` may
//! hold "10.0.0.1:80" or "example.com:80"), and calling it blocks the thread. A trait of our own
//! lets each type say: a `SocketAddr` or `(IpAddr, u16)` is its own answer, a string is parsed
//! first and only a name pays the hop to the pool. tokio and async-std made the same choice.
//! It is implemented for every type std implements its trait for, so call sites
//! (`connect("host:80")`, `connect(addr)`, `connect(("host", 80))`, `connect(&addrs[..])`) read as
//! with std; only code generic over std's trait must name this one instead. It is sealed: the
//! set of types is std's.
//!
//! Invariant: no impl here calls `getaddrinfo` outside [`crate::blocking`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A value that names one or more socket addresses: what `bind`, `connect` and `send_to`
/// take, for the same types as std's `ToSocketAddrs`. A host name is resolved on the blocking
/// pool ([`crate::blocking`]) so the calling goroutine's thread is not blocked; literal
/// addresses (`SocketAddr`, `(IpAddr, u16)`, `"1.2.3.4:80"`, `"[::1]:80"`) are used as they
/// are, without a thread hop. Sealed.
///
/// ```
/// use gort::net::TcpListener;
/// let a = TcpListener::bind("127.0.0.1:0").unwrap(); // literal: no lookup
/// let b = TcpListener::bind(("localhost", 0)).unwrap(); // a name: resolved off-thread
/// assert!(b.local_addr().unwrap().ip().is_loopback());
/// # drop(a);
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

impl<T: sealed::Resolve + ?Sized> ToSocketAddrs for T {}

pub(super) use sealed::Resolve;

mod sealed {
    use super::*;

    /// The addresses a [`ToSocketAddrs`] value names.
    pub trait Resolve {
        /// Resolves, hopping to the blocking pool only for a name.
        fn resolve(&self) -> io::Result<Addrs>;
    }

    /// The result of [`Resolve::resolve`]: one literal, or a lookup's list.
    pub enum Addrs {
        One(Option<SocketAddr>),
        Many(std::vec::IntoIter<SocketAddr>),
    }

    impl Iterator for Addrs {
        type Item = SocketAddr;

        fn next(&mut self) -> Option<SocketAddr> {
            match self {
                Addrs::One(a) => a.take(),
                Addrs::Many(it) => it.next(),
            }
        }
    }
}

use sealed::Addrs;

/// Looks `target` up with std's resolver, on the blocking pool.
fn lookup<A: std::net::ToSocketAddrs + Send>(target: A) -> io::Result<Addrs> {
    let found = crate::blocking(move || target.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
    Ok(Addrs::Many(found.map_err(io::Error::from)??.into_iter()))
}

/// Literal addresses: their own answer.
macro_rules! literal {
    ($($t:ty),*) => {$(
        impl Resolve for $t {
            fn resolve(&self) -> io::Result<Addrs> {
                Ok(Addrs::One(Some(SocketAddr::from(*self))))
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl Resolve for str {
    fn resolve(&self) -> io::Result<Addrs> {
        match self.parse::<SocketAddr>() {
            Ok(a) => Ok(Addrs::One(Some(a))),
            Err(_) => lookup(self),
        }
    }
}

impl Resolve for String {
    fn resolve(&self) -> io::Result<Addrs> {
        self.as_str().resolve()
    }
}

impl Resolve for (&str, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Ok(Addrs::One(Some(SocketAddr::new(ip, self.1)))),
            Err(_) => lookup(*self),
        }
    }
}

impl Resolve for (String, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).resolve()
    }
}

impl Resolve for [SocketAddr] {
    fn resolve(&self) -> io::Result<Addrs> {
        Ok(Addrs::Many(Vec::from(self).into_iter()))
    }
}

impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> io::Result<Addrs> {
        (**self).resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_in_a_goroutine() {
        let got = crate::run(|| {
            let a: Vec<_> = "127.0.0.1:80".resolve().unwrap().collect();
            let b: Vec<_> = ("::1", 80).resolve().unwrap().collect();
            let c: Vec<_> = (IpAddr::from([10, 0, 0, 1]), 5)
                .resolve()
                .unwrap()
                .collect();
            (a, b, c)
        });
        assert_eq!(got.0, ["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        assert_eq!(got.1, ["[::1]:80".parse::<SocketAddr>().unwrap()]);
        assert_eq!(got.2, ["10.0.0.1:5".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn names_resolve_in_a_goroutine() {
        let addrs: Vec<_> = crate::run(|| ("localhost", 7).resolve().map(Iterator::collect))
            .expect("localhost resolves");
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()));
    }
}
