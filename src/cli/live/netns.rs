//! Linux network namespaces and `ip` commands for the live demo and `run` (set-up only: the
//! data path never runs a command).
//!
//! Namespaces created here are named `ipsecnic-<pid>-<tag>`: [`cleanup_stale`] removes those
//! whose process is gone (an earlier run killed with SIGKILL), and a [`Netns`] guard deletes
//! its namespace when dropped (which also removes every interface inside it).

use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Stdio};

/// Prefix of every namespace this tool creates.
pub const PREFIX: &str = "ipsecnic-";

/// Why the environment cannot run the namespace scenario, or a set-up step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The capability is missing (not root / no `CAP_NET_ADMIN`, no `/dev/net/tun`, no `ip`):
    /// the caller may fall back to the in-memory scenario.
    Unavailable(String),
    /// Anything else (a command failed for another reason).
    Failed(String),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Unavailable(m) | SetupError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SetupError {}

/// Whether a failed command's stderr (or an OS error text) says the privilege is missing.
pub fn is_permission_error(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("operation not permitted")
        || s.contains("permission denied")
        || s.contains("eperm")
        || s.contains("eacces")
}

/// Classify a failed `ip` invocation: a missing privilege becomes
/// [`SetupError::Unavailable`], anything else [`SetupError::Failed`].
pub fn classify(what: &str, stderr: &str) -> SetupError {
    let msg = format!("{what}: {}", stderr.trim());
    if is_permission_error(stderr) {
        SetupError::Unavailable(msg)
    } else {
        SetupError::Failed(msg)
    }
}

/// Run `ip ARGS`.
///
/// # Errors
/// [`SetupError::Unavailable`] when `ip` is missing or the kernel refuses for lack of
/// privilege, [`SetupError::Failed`] otherwise.
pub fn ip(args: &[&str]) -> Result<(), SetupError> {
    let what = format!("ip {}", args.join(" "));
    let out = match Command::new("ip").args(args).stdin(Stdio::null()).output() {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(SetupError::Unavailable(
                "iproute2 `ip` is not installed (scripts/install-deps.sh)".into(),
            ));
        }
        Err(e) => return Err(SetupError::Failed(format!("{what}: {e}"))),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(classify(&what, &String::from_utf8_lossy(&out.stderr)))
    }
}

/// Run `ip ARGS`, ignoring the outcome (clean-up and optional niceties).
pub fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Names of the existing network namespaces (`ip netns list`); empty when `ip` fails.
pub fn list() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    parse_list(&String::from_utf8_lossy(&out.stdout))
}

/// Parse `ip netns list` output (`NAME` or `NAME (id: N)` per line).
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The pid encoded in a namespace name `ipsecnic-<pid>-<tag>`.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// The name of namespace `tag` of this process.
pub fn name(tag: &str) -> String {
    format!("{PREFIX}{}-{tag}", std::process::id())
}

/// Delete `ipsecnic-<pid>-*` namespaces whose process no longer exists. Returns the names
/// deleted.
pub fn cleanup_stale() -> Vec<String> {
    let mut gone = Vec::new();
    for ns in list() {
        let Some(pid) = owner_pid(&ns) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            ip_quiet(&["netns", "del", &ns]);
            gone.push(ns);
        }
    }
    gone
}

/// A network namespace, deleted (with every interface in it) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create namespace `name` (`ip netns add`).
    ///
    /// # Errors
    /// As [`ip`].
    pub fn create(name: &str) -> Result<Netns, SetupError> {
        ip(&["netns", "add", name])?;
        Ok(Netns {
            name: name.to_owned(),
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`.
    ///
    /// # Errors
    /// As [`ip`].
    pub fn ip(&self, args: &[&str]) -> Result<(), SetupError> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }

    /// A command running `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.name]);
    }
}

/// Disable IPv6 on interface `dev` in namespace `ns` (a quiet wire: no router or neighbor
/// solicitations, no MLD). Best effort.
pub fn disable_ipv6(ns: &str, dev: &str) {
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Parse `aa:bb:cc:dd:ee:ff` (or `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_unavailable_others_failed() {
        assert!(matches!(
            classify(
                "ip netns add x",
                "mount --make-shared /run/netns failed: Operation not permitted\n"
            ),
            SetupError::Unavailable(_)
        ));
        assert!(matches!(
            classify("ip link", "RTNETLINK answers: Permission denied"),
            SetupError::Unavailable(_)
        ));
        assert!(matches!(
            classify("ip link", "Cannot find device \"x\""),
            SetupError::Failed(_)
        ));
    }

    #[test]
    fn namespace_names_carry_the_pid() {
        let n = name("a");
        assert_eq!(owner_pid(&n), Some(std::process::id()));
        assert_eq!(owner_pid("ipsecnic-123-b"), Some(123));
        assert_eq!(owner_pid("other-123-b"), None);
        assert_eq!(owner_pid("ipsecnic-x-b"), None);
        assert_eq!(
            parse_list("ipsecnic-1-a (id: 3)\nfoo\n\n"),
            vec!["ipsecnic-1-a".to_owned(), "foo".to_owned()]
        );
    }

    #[test]
    fn macs_round_trip_and_bad_ones_are_refused() {
        let m = [0x02, 0, 0, 0, 0x0a, 0xff];
        assert_eq!(parse_mac(&mac_string(m)), Some(m));
        assert_eq!(parse_mac("02-00-00-00-0a-ff"), Some(m));
        assert_eq!(parse_mac("02:00:00:00:0a"), None);
        assert_eq!(parse_mac("02:00:00:00:0a:ff:01"), None);
        assert_eq!(parse_mac("02:00:00:00:0a:fff"), None);
        assert_eq!(parse_mac("zz:00:00:00:0a:ff"), None);
    }
}
