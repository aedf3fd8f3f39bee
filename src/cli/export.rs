//! `ipsec-nic sa export --wireshark`: Wireshark `esp_sa` UAT lines.
//!
//! One line per ESP SA, the format of Wireshark's `esp_sa` UAT file (and of
//! `-o "uat:esp_sa:<line>"`, as `scripts/interop-tshark.sh` uses):
//! `"IPv4","<src>","<dst>","0x<spi>","<encryption>","0x<key>","<authentication>","0x<key>"`.
//! Source and destination are the outer addresses as seen on the wire (tunnel endpoints in
//! tunnel mode; a non-host selector prefix becomes `*`). AH SAs and ESP-GMAC SAs have no
//! Wireshark decryption entry: they are skipped with a note.

use ipsec::{Encryption, Integrity, Protocol};

use super::config::{Direction, SaConfig, SaFile};

/// The export: UAT lines (contain key bytes) and notes for stderr (never contain keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Export {
    /// One `esp_sa` line per exported SA.
    pub lines: Vec<String>,
    /// Why some SAs were skipped (or caveats).
    pub notes: Vec<String>,
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return String::new();
    }
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn addr(sa: &SaConfig, local: bool) -> String {
    if let Some(t) = sa.params.tunnel {
        return if local { t.local } else { t.remote }.to_string();
    }
    let p = if local { sa.local } else { sa.remote };
    p.host().map_or_else(|| "*".to_owned(), |a| a.to_string())
}

/// Build the Wireshark export of `file`.
pub fn wireshark(file: &SaFile) -> Export {
    let mut ex = Export::default();
    for sa in &file.sas {
        let p = &sa.params;
        let who = format!("sa[{}] (spi {:#x})", sa.index, p.spi);
        if p.protocol == Protocol::Ah {
            ex.notes.push(format!(
                "{who}: AH skipped (esp_sa entries are for ESP only)"
            ));
            continue;
        }
        if p.integrity.is_gmac() {
            ex.notes.push(format!(
                "{who}: ESP AES-GMAC skipped (Wireshark's esp_sa has no GMAC algorithm)"
            ));
            continue;
        }
        let enc = match p.encryption {
            Encryption::AesGcm128 | Encryption::AesGcm192 | Encryption::AesGcm256 => {
                "AES-GCM with 16 octet ICV [RFC4106]"
            }
            Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256 => {
                "AES-CBC [RFC3602]"
            }
            Encryption::Null | Encryption::None => "NULL",
        };
        let auth = match p.integrity {
            Integrity::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
            Integrity::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
            _ => "NULL",
        };
        if p.esn {
            ex.notes.push(format!(
                "{who}: ESN SA exported without ESN (Wireshark verifies ICVs of the first 2^32 packets only)"
            ));
        }
        let (src, dst) = match sa.direction {
            Direction::Outbound => (addr(sa, true), addr(sa, false)),
            Direction::Inbound => (addr(sa, false), addr(sa, true)),
        };
        let v6 = p
            .tunnel
            .map_or(sa.local.addr.is_ipv6(), |t| t.local.is_ipv6());
        ex.lines.push(format!(
            "\"{}\",\"{src}\",\"{dst}\",\"{:#010x}\",\"{enc}\",\"{}\",\"{auth}\",\"{}\"",
            if v6 { "IPv6" } else { "IPv4" },
            p.spi,
            hex(p.encryption_key.expose()),
            hex(p.integrity_key.expose()),
        ));
    }
    ex
}
