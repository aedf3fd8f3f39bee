//! What one ADD_SA programs: one SA, or ESP then AH; framing (host) and crypto (NIC or
//! software path) as separate calls.

use core::net::IpAddr;
use core::ops::Range;

use crate::crypto::ProviderKind;
use crate::error::{CryptoError, FrameError};
use crate::esn;
use crate::params::{Mode, ParamError, Protocol, SaParams};
use crate::transform::Transform;
use crate::wire::{ah, esp, get_u32, ip_protocol, ipv4, ipv6, udp};

/// Default window for ESN high-bit inference in [`Bundle::unprotect`] /
/// [`Bundle::decapsulate`]: 2^31, i.e. "the candidate nearest to the highest accepted number".
/// See [`Bundle::with_esn_window`].
pub const DEFAULT_ESN_WINDOW: u32 = 1 << 31;

/// Sequence numbers for each SA of a bundle (full 64-bit values; ESP's and AH's counters are
/// separate). Unused members are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BundleSeq {
    /// The ESP SA's sequence number.
    pub esp: u64,
    /// The AH SA's sequence number.
    pub ah: u64,
}

/// ESN high-order 32 bits for each SA of a bundle (ignored for SAs without ESN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BundleSeqHi {
    /// High bits of the ESP SA's sequence number.
    pub esp: u32,
    /// High bits of the AH SA's sequence number.
    pub ah: u32,
}

impl BundleSeq {
    /// The high 32 bits of each member.
    pub fn hi(&self) -> BundleSeqHi {
        BundleSeqHi {
            esp: (self.esp >> 32) as u32,
            ah: (self.ah >> 32) as u32,
        }
    }
}

/// The result of a successful [`Bundle::unprotect`]: the packet is verified and decrypted in
/// place, nothing is stripped yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unprotected {
    /// The full (ESN-inferred) sequence number of each SA, as verified by the ICV.
    pub seq: BundleSeq,
    /// The protected payload's protocol (ESP trailer next header, or AH next header).
    pub next_header: u8,
    /// ESP pad length (0 without ESP).
    pub pad_len: u8,
    /// The protected payload inside the packet (after the IV, before the padding): the
    /// transport-layer segment (transport mode) or the inner IP packet (tunnel mode).
    pub payload: Range<usize>,
    /// The outermost SPI.
    pub spi: u32,
}

/// The result of a successful [`Bundle::decapsulate`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decapsulated {
    /// The cleartext IP packet's range in the buffer.
    pub packet: Range<usize>,
    /// The full sequence number of each SA, for the replay check.
    pub seq: BundleSeq,
    /// The protocol of the payload (transport) or 4 / 41 (tunnel).
    pub next_header: u8,
    /// The outermost SPI (AH's in an AH+ESP bundle).
    pub spi: u32,
}

/// One SA, or two SAs in processing order ESP then AH (same mode; on the wire AH is outside:
/// IP | AH | ESP | ...). `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct Bundle {
    esp: Option<Transform>,
    ah: Option<Transform>,
    mode: Mode,
    esn_window: u32,
}

/// Where the IPsec headers of a framed packet are.
struct Layout {
    ipv6: bool,
    ip_hl: usize,
    /// End of the IP packet (its length field).
    end: usize,
    ah_off: Option<usize>,
    esp_off: Option<usize>,
    /// First byte after AH and the UDP header (the ESP header, or AH's payload).
    after: usize,
}

fn full_seq(esn: bool, hi: u32, lo: u32) -> u64 {
    if esn {
        (u64::from(hi) << 32) | u64::from(lo)
    } else {
        u64::from(lo)
    }
}

/// The fields of the cleartext IP packet `encapsulate` needs.
struct Inner {
    ipv6: bool,
    hl: usize,
    total: usize,
    protocol: u8,
    tos: u8,
    dont_frag: bool,
}

impl Inner {
    fn parse(pkt: &[u8], mode: Mode) -> Result<Inner, FrameError> {
        match pkt.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = ipv4::Packet::new_checked(pkt)?;
                if ip.is_fragment() {
                    return Err(FrameError::Unsupported);
                }
                Ok(Inner {
                    ipv6: false,
                    hl: ip.header_len(),
                    total: usize::from(ip.total_len()),
                    protocol: ip.protocol(),
                    tos: ip.tos(),
                    dont_frag: ip.dont_frag(),
                })
            }
            Some(6) => {
                let ip = ipv6::Packet::new_checked(pkt)?;
                // Transport mode inserts ESP/AH right after the fixed header; with extension
                // headers it would have to go after some of them: not handled.
                if mode == Mode::Transport && ip_protocol::is_ipv6_extension(ip.next_header()) {
                    return Err(FrameError::Unsupported);
                }
                Ok(Inner {
                    ipv6: true,
                    hl: ipv6::HEADER_LEN,
                    total: ip.total_len(),
                    protocol: ip.next_header(),
                    tos: ip.traffic_class(),
                    dont_frag: false,
                })
            }
            Some(_) => Err(FrameError::Malformed),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Bundle {
    /// Build the transforms of one SA, or of ESP then AH.
    ///
    /// # Errors
    /// [`ParamError::InvalidBundle`] for another count or order, different modes or tunnel
    /// endpoints; [`ParamError::UdpEncapOnAh`] for a UDP-encapsulated ESP SA under AH; any
    /// [`Transform::new`] error.
    pub fn new(sas: &[SaParams], provider: ProviderKind) -> Result<Bundle, ParamError> {
        let (esp, ah) = match sas {
            [one] => {
                let t = Transform::new(one, provider)?;
                match t.protocol() {
                    Protocol::Esp => (Some(t), None),
                    Protocol::Ah => (None, Some(t)),
                }
            }
            [e, a] => {
                if e.protocol != Protocol::Esp
                    || a.protocol != Protocol::Ah
                    || e.mode != a.mode
                    || e.tunnel != a.tunnel
                {
                    return Err(ParamError::InvalidBundle);
                }
                if e.udp_encap.is_some() {
                    return Err(ParamError::UdpEncapOnAh);
                }
                (
                    Some(Transform::new(e, provider)?),
                    Some(Transform::new(a, provider)?),
                )
            }
            _ => return Err(ParamError::InvalidBundle),
        };
        let mode = esp
            .as_ref()
            .or(ah.as_ref())
            .map(Transform::mode)
            .ok_or(ParamError::InvalidBundle)?;
        Ok(Bundle {
            esp,
            ah,
            mode,
            esn_window: DEFAULT_ESN_WINDOW,
        })
    }

    /// Use `window` (normally the inbound SA's replay window size) for ESN high-bit inference
    /// (RFC 4303 Appendix A2.1) instead of [`DEFAULT_ESN_WINDOW`].
    #[must_use]
    pub fn with_esn_window(mut self, window: u32) -> Bundle {
        self.esn_window = window;
        self
    }

    /// The ESP SA, if any.
    pub fn esp(&self) -> Option<&Transform> {
        self.esp.as_ref()
    }

    /// The AH SA, if any.
    pub fn ah(&self) -> Option<&Transform> {
        self.ah.as_ref()
    }

    /// Transport or tunnel.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn first(&self) -> Option<&Transform> {
        self.ah.as_ref().or(self.esp.as_ref())
    }

    fn tunnel_v6(&self) -> Option<bool> {
        self.first()
            .and_then(Transform::tunnel)
            .map(|t| t.local.is_ipv6())
    }

    /// Worst-case bytes `encapsulate` adds before the packet (headroom) and after it
    /// (tailroom).
    pub fn overhead(&self) -> (usize, usize) {
        let outer = match self.tunnel_v6() {
            Some(true) => ipv6::HEADER_LEN,
            Some(false) => ipv4::HEADER_LEN,
            None => 0,
        };
        let udp = match self.esp.as_ref().and_then(Transform::udp_encap) {
            Some(_) => udp::HEADER_LEN,
            None => 0,
        };
        let ah = self
            .ah
            .as_ref()
            .map_or(0, |a| ah::FIXED_LEN + a.ah_icv_field_len(true));
        let (esp_head, tail) = self.esp.as_ref().map_or((0, 0), |e| {
            (
                esp::HEADER_LEN + e.iv_len(),
                e.block_size() - 1 + esp::TRAILER_LEN + e.icv_len(),
            )
        });
        (outer + udp + ah + esp_head, tail)
    }

    /// HOST framing, no crypto. `buf[packet]` is a cleartext IP packet (v4 or v6); turn it in
    /// place, using headroom before `packet.start` and tailroom after `packet.end`, into the
    /// framed IPsec packet with zeroed IV and ICV space. Returns the framed packet's range.
    ///
    /// Tunnel mode writes a new outer header (RFC 4301 §5.1.2): addresses from the SA's
    /// tunnel endpoints, TTL / hop limit 64, DSCP and ECN copied from the inner header, IPv4
    /// DF copied when the inner packet is IPv4 (else clear), IPv4 identification = the low 16
    /// bits of the outermost SA's sequence number (deterministic, so NIC and software frames are
    /// identical; unique over 65536 consecutive packets), IPv6 flow label 0. Transport mode
    /// moves the IP header forward and fixes its length, protocol and IPv4 checksum; IPv4
    /// options are kept.
    ///
    /// # Errors
    /// [`FrameError::NoRoom`] without enough headroom/tailroom, [`FrameError::TooLarge`] past
    /// 65535 bytes, [`FrameError::SeqOverflow`] for a sequence number above 2^32 - 1 on a
    /// non-ESN SA, [`FrameError::Unsupported`] for IPv4 fragments and (transport mode) IPv6
    /// extension headers, parse errors of the inner packet.
    pub fn encapsulate(
        &self,
        seq: BundleSeq,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Result<Range<usize>, FrameError> {
        let pkt = buf.get(packet.clone()).ok_or(FrameError::Truncated)?;
        let inner = Inner::parse(pkt, self.mode)?;
        for (t, s) in [(&self.esp, seq.esp), (&self.ah, seq.ah)] {
            if let Some(t) = t
                && !t.esn()
                && s > u64::from(u32::MAX)
            {
                return Err(FrameError::SeqOverflow);
            }
        }
        let outer_v6 = self.tunnel_v6().unwrap_or(inner.ipv6);
        let outer_hl = match self.mode {
            Mode::Transport => inner.hl,
            Mode::Tunnel if outer_v6 => ipv6::HEADER_LEN,
            Mode::Tunnel => ipv4::HEADER_LEN,
        };
        let udp_encap = self.esp.as_ref().and_then(Transform::udp_encap);
        let udp_len = if udp_encap.is_some() {
            udp::HEADER_LEN
        } else {
            0
        };
        let ah_icv = self.ah.as_ref().map_or(0, |a| a.ah_icv_field_len(outer_v6));
        let ah_len = if self.ah.is_some() {
            ah::FIXED_LEN + ah_icv
        } else {
            0
        };
        let esp_hdr = self
            .esp
            .as_ref()
            .map_or(0, |e| esp::HEADER_LEN + e.iv_len());
        let (p0, payload_len) = match self.mode {
            Mode::Transport => (packet.start + inner.hl, inner.total - inner.hl),
            Mode::Tunnel => (packet.start, inner.total),
        };
        let pad = self.esp.as_ref().map_or(0, |e| {
            esp::TrailerRepr::padding_for(payload_len, e.block_size())
        });
        let trailer = self
            .esp
            .as_ref()
            .map_or(0, |e| usize::from(pad) + esp::TRAILER_LEN + e.icv_len());
        let start = p0
            .checked_sub(outer_hl + udp_len + ah_len + esp_hdr)
            .ok_or(FrameError::NoRoom)?;
        let payload_end = p0 + payload_len;
        let end = payload_end + trailer;
        if end > buf.len() {
            return Err(FrameError::NoRoom);
        }
        let total = end - start;
        let limit = if outer_v6 {
            65535 + ipv6::HEADER_LEN
        } else {
            65535
        };
        if total > limit {
            return Err(FrameError::TooLarge);
        }
        let inner_proto = match (self.mode, inner.ipv6) {
            (Mode::Transport, _) => inner.protocol,
            (Mode::Tunnel, false) => ip_protocol::IPV4,
            (Mode::Tunnel, true) => ip_protocol::IPV6,
        };
        let first_proto = if self.ah.is_some() {
            ip_protocol::AH
        } else if udp_encap.is_some() {
            ip_protocol::UDP
        } else {
            ip_protocol::ESP
        };

        // Outer IP header.
        match self.mode {
            Mode::Transport => buf.copy_within(packet.start..packet.start + inner.hl, start),
            Mode::Tunnel => {
                let t = self
                    .first()
                    .and_then(Transform::tunnel)
                    .ok_or(FrameError::Malformed)?;
                let hdr = buf
                    .get_mut(start..start + outer_hl)
                    .ok_or(FrameError::NoRoom)?;
                hdr.fill(0);
                let ident_seq = if self.ah.is_some() { seq.ah } else { seq.esp };
                match (t.local, t.remote) {
                    (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
                        src_addr: src,
                        dst_addr: dst,
                        protocol: first_proto,
                        payload_len: total - ipv4::HEADER_LEN,
                        ttl: 64,
                        tos: inner.tos,
                        ident: ident_seq as u16,
                        dont_frag: !inner.ipv6 && inner.dont_frag,
                    }
                    .emit(&mut ipv4::Packet::new_unchecked(hdr))?,
                    (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6::Repr {
                        src_addr: src,
                        dst_addr: dst,
                        next_header: first_proto,
                        payload_len: total - ipv6::HEADER_LEN,
                        hop_limit: 64,
                        traffic_class: inner.tos,
                        flow_label: 0,
                    }
                    .emit(&mut ipv6::Packet::new_unchecked(hdr))?,
                    _ => return Err(FrameError::Malformed),
                }
            }
        }
        {
            let out = buf.get_mut(start..end).ok_or(FrameError::NoRoom)?;
            if outer_v6 {
                let mut ip = ipv6::Packet::new_unchecked(out);
                ip.set_payload_len((total - ipv6::HEADER_LEN) as u16);
                ip.set_next_header(first_proto);
            } else {
                let mut ip = ipv4::Packet::new_unchecked(out);
                ip.set_total_len(total as u16);
                ip.set_protocol(first_proto);
                ip.fill_checksum();
            }
        }
        let mut off = start + outer_hl;
        if let Some(a) = &self.ah {
            let repr = ah::Repr {
                next_header: if self.esp.is_some() {
                    ip_protocol::ESP
                } else {
                    inner_proto
                },
                spi: a.spi(),
                seq_number: seq.ah as u32,
                icv_len: ah_icv,
            };
            let h = buf.get_mut(off..off + ah_len).ok_or(FrameError::NoRoom)?;
            repr.emit(&mut ah::Packet::new_unchecked(h))?;
            off += ah_len;
        }
        if let Some(u) = udp_encap {
            // RFC 3948 §2.1: source = this host's port, checksum 0.
            let repr = udp::Repr {
                src_port: u.local_port,
                dst_port: u.remote_port,
                payload_len: end - off - udp::HEADER_LEN,
            };
            let h = buf
                .get_mut(off..off + udp::HEADER_LEN)
                .ok_or(FrameError::NoRoom)?;
            repr.emit(&mut udp::Packet::new_unchecked(h))?;
            off += udp::HEADER_LEN;
        }
        if let Some(e) = &self.esp {
            let h = buf.get_mut(off..p0).ok_or(FrameError::NoRoom)?;
            h.fill(0); // zeroed IV space
            esp::Repr {
                spi: e.spi(),
                seq_number: seq.esp as u32,
            }
            .emit(&mut esp::Packet::new_unchecked(h));
            let t = esp::TrailerRepr {
                pad_len: pad,
                next_header: inner_proto,
            };
            let tail = buf
                .get_mut(payload_end..payload_end + t.buffer_len())
                .ok_or(FrameError::NoRoom)?;
            t.emit(tail)?;
            buf.get_mut(payload_end + t.buffer_len()..end)
                .ok_or(FrameError::NoRoom)?
                .fill(0);
        }
        Ok(start..end)
    }

    /// Find the IPsec headers of a framed packet and check protocols and SPIs.
    fn locate(&self, packet: &[u8]) -> Result<Layout, FrameError> {
        let (ipv6, ip_hl, end, mut proto) = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = ipv4::Packet::new_checked(packet)?;
                if ip.is_fragment() {
                    return Err(FrameError::Unsupported);
                }
                (
                    false,
                    ip.header_len(),
                    usize::from(ip.total_len()),
                    ip.protocol(),
                )
            }
            Some(6) => {
                let ip = ipv6::Packet::new_checked(packet)?;
                if ip_protocol::is_ipv6_extension(ip.next_header()) {
                    return Err(FrameError::Unsupported);
                }
                (true, ipv6::HEADER_LEN, ip.total_len(), ip.next_header())
            }
            Some(_) => return Err(FrameError::Malformed),
            None => return Err(FrameError::Truncated),
        };
        let mut off = ip_hl;
        let mut ah_off = None;
        if let Some(a) = &self.ah {
            if proto != ip_protocol::AH {
                return Err(FrameError::ProtocolMismatch);
            }
            let view = ah::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
            if view.spi() != a.spi() {
                return Err(FrameError::SpiMismatch);
            }
            if view.header_len() != ah::FIXED_LEN + a.ah_icv_field_len(ipv6) {
                return Err(FrameError::Malformed);
            }
            ah_off = Some(off);
            off += view.header_len();
            proto = view.next_header();
        }
        let mut esp_off = None;
        if let Some(e) = &self.esp {
            if e.udp_encap().is_some() {
                if proto != ip_protocol::UDP {
                    return Err(FrameError::ProtocolMismatch);
                }
                let u =
                    udp::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
                if usize::from(u.len()) != end - off {
                    return Err(FrameError::Malformed);
                }
                off += udp::HEADER_LEN;
            } else if proto != ip_protocol::ESP {
                return Err(FrameError::ProtocolMismatch);
            }
            let view =
                esp::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
            if view.spi() != e.spi() {
                return Err(FrameError::SpiMismatch);
            }
            esp_off = Some(off);
        }
        Ok(Layout {
            ipv6,
            ip_hl,
            end,
            ah_off,
            esp_off,
            after: off,
        })
    }

    /// CRYPTO step (NIC or software path) on a packet framed by [`Bundle::encapsulate`]
    /// (exactly one IP packet, starting at the outer IP header): write the IV (see
    /// [`Transform::derive_iv`]), encrypt, compute the ICVs: ESP first, then AH over the
    /// result. `seq_hi` gives the ESN high bits of each SA; the low bits come from the headers.
    ///
    /// # Errors
    /// [`CryptoError::InvalidSyntax`], [`CryptoError::ProtocolMismatch`],
    /// [`CryptoError::SpiMismatch`], [`CryptoError::Unsupported`].
    pub fn protect(&self, packet: &mut [u8], seq_hi: BundleSeqHi) -> Result<(), CryptoError> {
        let l = self.locate(packet)?;
        let packet = packet.get_mut(..l.end).ok_or(CryptoError::InvalidSyntax)?;
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let seq = full_seq(e.esn(), seq_hi.esp, get_u32(packet, off + 4));
            let mut iv = [0u8; 16];
            let n = e.derive_iv(seq, &mut iv);
            let esp = packet.get_mut(off..).ok_or(CryptoError::InvalidSyntax)?;
            e.seal_esp(esp, seq, iv.get(..n).ok_or(CryptoError::InvalidSyntax)?)?;
        }
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let seq = full_seq(a.esn(), seq_hi.ah, get_u32(packet, off + 8));
            a.seal_ah(packet, off, seq)?;
        }
        Ok(())
    }

    /// CRYPTO step on receive: verify AH (if any), then verify and decrypt ESP in place and
    /// check its padding. Strips nothing. `highest` is the highest sequence number accepted
    /// so far on each SA (0 for a new SA), for ESN inference (RFC 4303 Appendix A2.1, with the
    /// bundle's ESN window).
    ///
    /// The caller checks the replay window with the inferred number before calling this, and
    /// must check again with the returned [`Unprotected::seq`] before updating the window
    /// (see [`crate::replay`]).
    ///
    /// # Errors
    /// [`CryptoError::AuthFailed`], [`CryptoError::BadPadding`], [`CryptoError::InvalidSyntax`],
    /// [`CryptoError::ProtocolMismatch`], [`CryptoError::SpiMismatch`],
    /// [`CryptoError::Unsupported`].
    pub fn unprotect(
        &self,
        packet: &mut [u8],
        highest: BundleSeq,
    ) -> Result<Unprotected, CryptoError> {
        let l = self.locate(packet)?;
        let packet = packet.get_mut(..l.end).ok_or(CryptoError::InvalidSyntax)?;
        let mut out = Unprotected {
            seq: BundleSeq::default(),
            next_header: 0,
            pad_len: 0,
            payload: l.after..l.end,
            spi: 0,
        };
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let lo = get_u32(packet, off + 8);
            let seq = if a.esn() {
                esn::infer(lo, highest.ah, self.esn_window)
            } else {
                u64::from(lo)
            };
            a.open_ah(packet, off, seq)?;
            out.seq.ah = seq;
            out.spi = a.spi();
            out.next_header = packet.get(off).copied().unwrap_or(0);
        }
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let lo = get_u32(packet, off + 4);
            let seq = if e.esn() {
                esn::infer(lo, highest.esp, self.esn_window)
            } else {
                u64::from(lo)
            };
            let esp = packet.get_mut(off..).ok_or(CryptoError::InvalidSyntax)?;
            let opened = e.open_esp(esp, seq)?;
            out.seq.esp = seq;
            if self.ah.is_none() {
                out.spi = e.spi();
            }
            out.next_header = opened.next_header;
            out.pad_len = opened.pad_len;
            out.payload = off + opened.payload.start..off + opened.payload.end;
        }
        Ok(out)
    }

    /// The protected payload and its protocol in an unprotected (decrypted) packet.
    fn payload_of(&self, packet: &[u8], l: &Layout) -> Result<(Range<usize>, u8), FrameError> {
        match (&self.esp, l.esp_off) {
            (Some(e), Some(off)) => {
                let body_start = off + esp::HEADER_LEN + e.iv_len();
                let body_end = l
                    .end
                    .checked_sub(e.icv_len())
                    .ok_or(FrameError::Truncated)?;
                let body = packet
                    .get(body_start..body_end)
                    .ok_or(FrameError::Truncated)?;
                let t = esp::TrailerRepr::parse(body)?;
                Ok((body_start..body_end - t.buffer_len(), t.next_header))
            }
            _ => {
                let off = l.ah_off.ok_or(FrameError::Malformed)?;
                Ok((l.after..l.end, packet.get(off).copied().unwrap_or(0)))
            }
        }
    }

    /// The length of the inner IP packet at the start of `payload` (tunnel mode).
    fn inner_len(payload: &[u8], next_header: u8) -> Result<usize, FrameError> {
        let len = match next_header {
            ip_protocol::IPV4 => usize::from(ipv4::Packet::new_checked(payload)?.total_len()),
            ip_protocol::IPV6 => ipv6::Packet::new_checked(payload)?.total_len(),
            _ => return Err(FrameError::Malformed),
        };
        Ok(len)
    }

    /// HOST strip, after [`Bundle::unprotect`]: remove the IPsec headers, IV, padding,
    /// trailer and ICV. Transport mode restores the IP header in place (protocol = next
    /// header, lengths, IPv4 checksum); tunnel mode returns the inner packet. Does no crypto.
    ///
    /// # Errors
    /// [`FrameError`] for malformed input (including bad padding), protocol or SPI mismatch.
    pub fn decapsulate(
        &self,
        buf: &mut [u8],
        packet: Range<usize>,
        highest: BundleSeq,
    ) -> Result<Decapsulated, FrameError> {
        let base = packet.start;
        let pkt = buf.get_mut(packet).ok_or(FrameError::Truncated)?;
        let l = self.locate(pkt)?;
        let mut seq = BundleSeq::default();
        let mut spi = 0;
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let lo = get_u32(pkt, off + 4);
            seq.esp = if e.esn() {
                esn::infer(lo, highest.esp, self.esn_window)
            } else {
                u64::from(lo)
            };
            spi = e.spi();
        }
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let lo = get_u32(pkt, off + 8);
            seq.ah = if a.esn() {
                esn::infer(lo, highest.ah, self.esn_window)
            } else {
                u64::from(lo)
            };
            spi = a.spi();
        }
        let (payload, next_header) = self.payload_of(pkt, &l)?;
        let range = match self.mode {
            Mode::Transport => {
                let new_start = payload
                    .start
                    .checked_sub(l.ip_hl)
                    .ok_or(FrameError::Malformed)?;
                pkt.copy_within(0..l.ip_hl, new_start);
                let ip = pkt
                    .get_mut(new_start..payload.end)
                    .ok_or(FrameError::Truncated)?;
                let total = ip.len();
                if l.ipv6 {
                    let mut v = ipv6::Packet::new_unchecked(ip);
                    v.set_payload_len(
                        u16::try_from(total - ipv6::HEADER_LEN)
                            .map_err(|_| FrameError::TooLarge)?,
                    );
                    v.set_next_header(next_header);
                } else {
                    let mut v = ipv4::Packet::new_unchecked(ip);
                    v.set_total_len(u16::try_from(total).map_err(|_| FrameError::TooLarge)?);
                    v.set_protocol(next_header);
                    v.fill_checksum();
                }
                base + new_start..base + payload.end
            }
            Mode::Tunnel => {
                let body = pkt.get(payload.clone()).ok_or(FrameError::Truncated)?;
                let len = Self::inner_len(body, next_header)?;
                base + payload.start..base + payload.start + len
            }
        };
        Ok(Decapsulated {
            packet: range,
            seq,
            next_header,
            spi,
        })
    }

    /// Tunnel-mode bundles: where the inner IP packet sits inside an unprotected (decrypted)
    /// `packet` (for nested transport-in-tunnel processing by the NIC).
    ///
    /// # Errors
    /// [`FrameError::Unsupported`] in transport mode; parse errors.
    pub fn inner_packet(&self, packet: &[u8]) -> Result<Range<usize>, FrameError> {
        if self.mode != Mode::Tunnel {
            return Err(FrameError::Unsupported);
        }
        let l = self.locate(packet)?;
        let (payload, nh) = self.payload_of(packet, &l)?;
        let body = packet.get(payload.clone()).ok_or(FrameError::Truncated)?;
        let len = Self::inner_len(body, nh)?;
        Ok(payload.start..payload.start + len)
    }
}
